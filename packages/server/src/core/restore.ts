// A restore from a backup takes a dataset's SyncCount back in time, and the counts handed out since the backup would
// be handed out a second time: a device that synced after the backup would skip the changes written under them and
// keep, as synced, records the server lost. So a restored database is marked: each dataset's counter jumps ahead by
// RESTORE_SYNC_COUNT_GAP, and the counts it had passed out between the backup and the restore, (restoredFrom,
// restoredFrom + gap], identify a device that synced in that time. ListRecords tells such a device its copy is gone
// (DatasetDeletedAfterRequestedSyncCount) and UpdateRecords refuses its SyncSessionToken; devices that last synced
// before the backup carry on as before.

/** More writes than any dataset takes between a backup and its restore; a JavaScript number stays exact far beyond. */
export const RESTORE_SYNC_COUNT_GAP = 1_000_000;

/** Whether a device at `syncCount` synced after the backup a dataset was restored from (`restoredFrom`, 0: never restored). */
export function syncedAfterRestoredBackup(syncCount: number, restoredFrom: number): boolean {
  return restoredFrom > 0 && syncCount > restoredFrom && syncCount <= restoredFrom + RESTORE_SYNC_COUNT_GAP;
}
