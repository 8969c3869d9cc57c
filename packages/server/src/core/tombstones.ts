// How many removals a dataset remembers. A removal keeps a tombstone (the key, no value, the removal's SyncCount) so
// that devices which synced before it learn of it. Tombstones count toward no limit of the dataset (it shows 0 bytes
// and 0 records once everything is removed), so without a bound a caller that writes keys and removes them again, over
// and over, grew one dataset without end (QA: 381 MB in 60 requests from one guest, with 1,024-character keys).
//
// So each dataset counts its tombstones and the UTF-8 bytes of their keys (the datasets row, kept by every write), and
// when a write takes either past its bound (Limits.tombstonesPerDataset, 4,096 by default, four times the records a
// dataset may hold; Limits.tombstoneBytesPerDataset, 1 MiB, what its records may weigh), the oldest tombstones are
// dropped until both are within three quarters of it (so that dropping, which reads the tombstones it drops, comes
// once in a quarter of the bound, not at every removal). They go whole SyncCounts at a time, never the removing
// write's own, and the dataset remembers the last count dropped, `droppedThrough`. History through it is incomplete,
// and only for devices that last synced before it: such a device may hold a key whose removal it can no longer be
// told. It is told as after a restore (core/restore.ts): ListRecords from its count answers
// DatasetDeletedAfterRequestedSyncCount, so that it pulls the dataset again, and an UpdateRecords whose
// SyncSessionToken predates the drop is a conflict that sends it there. A listing that a drop overtook between two
// pages (the mark at or past its position, first pulls from 0 included) is refused, so that it starts over
// (operations/sync/list-records.ts). Devices that synced at or after the mark are not disturbed. AWS does not document
// what it does; decisions.md, "Tombstones are bounded".

import type { Limits } from '../limits.js';

export type TombstoneLimits = Pick<Limits, 'tombstonesPerDataset' | 'tombstoneBytesPerDataset'>;

/** What a store must drop, at least, of a dataset's oldest tombstones: so many of them, and so many bytes of keys. */
export interface TombstoneDrop {
  count: number;
  bytes: number;
}

/** Whether a device whose last SyncCount is `lastSyncCount` may have missed removals the dataset no longer holds. */
export function missedDroppedRemovals(lastSyncCount: number, droppedThrough: number): boolean {
  return lastSyncCount > 0 && lastSyncCount < droppedThrough;
}

/** For a dataset left with `count` tombstones of `bytes` key bytes, what to drop (undefined: nothing, within bounds). */
export function tombstonesToDrop(count: number, bytes: number, limits: TombstoneLimits): TombstoneDrop | undefined {
  if (count <= limits.tombstonesPerDataset && bytes <= limits.tombstoneBytesPerDataset) return undefined;
  const keep = (bound: number) => Math.floor((bound * 3) / 4);
  return { count: Math.max(0, count - keep(limits.tombstonesPerDataset)), bytes: Math.max(0, bytes - keep(limits.tombstoneBytesPerDataset)) };
}

/**
 * Where to cut, walking a dataset's tombstones from the oldest (each its SyncCount and key bytes, in SyncCount order):
 * the SyncCount through which dropping them all drops at least `drop`. The whole of the cut's SyncCount goes, but
 * never the tombstones of the write that asked (at `written`): when they alone pass the bound, every older one goes
 * and they stay, so the devices that synced just before that write are not told their copy is gone. Undefined when
 * there is nothing older to drop.
 */
export function tombstoneCut(oldestFirst: Iterable<readonly [syncCount: number, keyBytes: number]>, drop: TombstoneDrop, written: number): number | undefined {
  let count = 0;
  let bytes = 0;
  let through: number | undefined;
  for (const [syncCount, keyBytes] of oldestFirst) {
    if (syncCount >= written || (count >= drop.count && bytes >= drop.bytes && syncCount !== through)) break;
    count++;
    bytes += keyBytes;
    through = syncCount;
  }
  return through;
}
