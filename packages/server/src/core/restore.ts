// A restore from a backup takes a dataset's SyncCount back in time, and the counts handed out since the backup would
// be handed out a second time: a device that synced after the backup would skip the changes written under them and
// keep, as synced, records the server lost. So a restored database is marked (Store.markRestored, in SQL in each
// store): each dataset's counter jumps to max(count + RESTORE_SYNC_COUNT_GAP, the clock in ms) and remembers the
// span it skipped, (from, to): the counts it may have passed out between the backup and the restore. The jump is
// past the clock too (exact far below 2^53) so that a second restore of the same backup hands out counts past the
// first one's (a dataset takes far fewer than one write per millisecond). A device whose last SyncCount lies in the
// span synced after the backup: ListRecords tells it its copy is gone (DatasetDeletedAfterRequestedSyncCount) and
// UpdateRecords refuses its SyncSessionToken. Devices that last synced before the backup (at `from` or below) carry
// on, and so does every device once it has synced with the restored database (at `to` or above). A dataset created
// after the restore starts at the database's mark (RESTORED_SETTING), with the span (0, mark): one created after the
// backup is not in the backup, and devices may hold it from the lost time.

import type { RestoredSpan } from '../store/store.js';

/** More writes than any dataset takes between a backup and its restore. */
export const RESTORE_SYNC_COUNT_GAP = 1_000_000;

/** The settings entry holding the SyncCount datasets created after the last restore start from. */
export const RESTORED_SETTING = 'restored-to-sync-count';

/** Whether a device at `syncCount` synced in the span a restore skipped, (from, to); `to` 0: never restored. */
export function syncedAfterRestoredBackup(syncCount: number, restored: RestoredSpan): boolean {
  return restored.to > 0 && syncCount > restored.from && syncCount < restored.to;
}
