// A restore from a backup takes a dataset's SyncCount back in time, and the counts handed out since the backup would
// be handed out a second time: a device that synced after the backup would skip the changes written under them and
// keep, as synced, records the server lost. So a restored database is marked (Store.markRestored): each dataset's
// counter jumps to restoredSyncCount() and remembers the span it skipped, (from, to): the counts it may have passed
// out between the backup and the restore. A device whose last SyncCount lies in that span synced after the backup:
// ListRecords tells it its copy is gone (DatasetDeletedAfterRequestedSyncCount) and UpdateRecords refuses its
// SyncSessionToken. Devices that last synced before the backup (at `from` or below) carry on, and so does every
// device once it has synced with the restored database (at `to` or above). A dataset created after the restore
// starts at the database's mark (RESTORED_SETTING), with the span (0, mark): one created after the backup is not in
// it, and devices may hold it from the lost time.

/** More writes than any dataset takes between a backup and its restore. */
export const RESTORE_SYNC_COUNT_GAP = 1_000_000;

/** The settings entry holding the SyncCount datasets created after the last restore start from. */
export const RESTORED_SETTING = 'restored-to-sync-count';

/**
 * Where a dataset at `syncCount` jumps to when its database is marked restored at `now` (epoch ms): past the gap,
 * and past the clock, so that the counts a restore hands out always exceed those of an earlier restore from the
 * same backup (a dataset takes far fewer than one write per millisecond) while a number stays exact (ms < 2^53).
 */
export function restoredSyncCount(syncCount: number, now: number): number {
  return Math.max(syncCount + RESTORE_SYNC_COUNT_GAP, now);
}

/** Whether a device at `syncCount` synced in the span a restore skipped, (from, to); `to` 0: never restored. */
export function syncedAfterRestoredBackup(syncCount: number, restored: { from: number; to: number }): boolean {
  return restored.to > 0 && syncCount > restored.from && syncCount < restored.to;
}
