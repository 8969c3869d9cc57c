// How many removals a dataset remembers. A removal keeps a tombstone (the key, no value, the removal's SyncCount) so
// that devices which synced before it learn of it. Tombstones count toward no limit of the dataset (it shows 0 bytes
// and 0 records once everything is removed), so without a bound a caller that writes keys and removes them again, over
// and over, grew one dataset without end (QA: 381 MB in 60 requests from one guest).
//
// So a dataset keeps the tombstones of its newest removals, `Limits.tombstonesPerDataset` of them (4,096 by default,
// four times the records it may hold), and drops older ones whole SyncCounts at a time: after a write that added
// tombstones, those at or below the SyncCount of the first one over the bound go, and the dataset remembers that
// count as `droppedThrough`. History through it is incomplete, and only for devices that last synced before it: such a
// device may hold a key whose removal it can no longer be told. It is told as after a restore (core/restore.ts):
// ListRecords from its count answers DatasetDeletedAfterRequestedSyncCount, so that it pulls the dataset again, and
// an UpdateRecords whose SyncSessionToken predates the drop is a conflict that sends it there. Devices that synced
// at or after it, and first pulls (from 0), are not disturbed. AWS does not say what it does; decisions.md, "Removal".

/** Whether a device whose last SyncCount is `lastSyncCount` may have missed removals the dataset no longer holds. */
export function missedDroppedRemovals(lastSyncCount: number, droppedThrough: number): boolean {
  return lastSyncCount > 0 && lastSyncCount < droppedThrough;
}

