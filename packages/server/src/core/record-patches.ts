// The heart of UpdateRecords as a pure function: the optimistic-concurrency rule, dataset SyncCount
// numbering and the per-dataset limits. Both stores call it inside their write transaction.
import { InvalidParameterException, LimitExceededException, ResourceConflictException } from '../errors.js';
import type { Limits } from '../limits.js';
import { syncedAfterRestoredBackup } from './restore.js';
import { missedDroppedRemovals, tombstonesToDrop, type TombstoneDrop, type TombstoneLimits } from './tombstones.js';
import type { RestoredSpan, StoredRecord } from '../store/store.js';

export interface RecordPatch {
  op: 'replace' | 'remove';
  key: string;
  value?: string;
  /** The SyncCount the client last saw for this record; 0 when it believes the record does not exist. */
  syncCount: number;
  deviceLastModifiedDate?: number;
}

export interface DatasetState {
  /** Whether the dataset exists now (it does not before its first write or after DeleteDataset). */
  live: boolean;
  syncCount: number;
  dataStorage: number;
  numRecords: number;
  /** The SyncCount its last deletion took (0: never deleted). */
  deletedAtSyncCount?: number;
  /** The SyncCounts it skipped when its database was marked restored (core/restore.ts). */
  restored?: RestoredSpan;
  /** Its tombstones (removed records it remembers) and the UTF-8 bytes of their keys (core/tombstones.ts). */
  tombstones?: number;
  tombstoneBytes?: number;
  /** The SyncCount through which its oldest tombstones were dropped (0: none). */
  tombstonesDroppedThrough?: number;
}

export interface ApplyPatchesInput {
  dataset: DatasetState;
  /** Live datasets of the identity other than this one. */
  otherLiveDatasets: number;
  /** Current stored versions of (at least) the patched keys. */
  current: ReadonlyMap<string, StoredRecord>;
  /** The dataset SyncCount the ListRecords that issued the request's SyncSessionToken answered (unknown for older tokens). */
  sessionSyncCount?: number;
  patches: readonly RecordPatch[];
  now: number;
  modifiedBy: string;
  limits: Pick<Limits, 'datasetsPerIdentity' | 'datasetBytes' | 'recordsPerDataset'> & TombstoneLimits;
}

export interface ApplyPatchesResult {
  /** The dataset after the write, its tombstones counted. */
  dataset: DatasetState & Required<Pick<DatasetState, 'tombstones' | 'tombstoneBytes'>>;
  /** The new versions of the patched records, to store. */
  records: StoredRecord[];
  /** The answer: a record for every patch, in the request's order (see `applyRecordPatches`). */
  answer: StoredRecord[];
  /** Of the dataset's oldest tombstones, what the store must drop after this write (core/tombstones.ts). */
  dropTombstones: TombstoneDrop | undefined;
}

/** Bytes a record counts against the dataset limit: UTF-8 key + value; a tombstone counts nothing. */
export function recordBytes(key: string, value: string | null): number {
  return value === null ? 0 : Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
}

/**
 * Characters of keys and values in patches or records: what a store weighs when it groups writes into one
 * statement or transaction (a cheap measure of their size; not the UTF-8 bytes the dataset limit counts).
 */
export function textLength(items: ReadonlyArray<{ key: string; value?: string | null }>): number {
  let length = 0;
  for (const item of items) length += item.key.length + (item.value?.length ?? 0);
  return length;
}

/**
 * The SyncCount a DeleteDataset takes: the next one, as a write would.
 * A deletion that left the count where it was would be invisible in the count's sequence: a device that pulled at
 * that count and then pushed only new keys would re-create the dataset at the very next count, take it for its own
 * write alone, and never learn of the deletion. At the next count, such a push lands one further on, the device
 * pulls the gap, and ListRecords reports DatasetDeletedAfterRequestedSyncCount.
 */
export function deletedSyncCount(syncCount: number): number {
  return syncCount + 1;
}

/** Whether `syncCount` is one the dataset could have answered for a key it did not store (see applyRecordPatches). */
function answeredUnstored(syncCount: number, dataset: DatasetState): boolean {
  return dataset.live && syncCount > (dataset.deletedAtSyncCount ?? 0) && syncCount <= dataset.syncCount;
}

/**
 * Whether `syncCount`, for a key stored at `storedSyncCount`, is a version the last restore lost over the stored one
 * (see applyRecordPatches): the count lies in the span the restore skipped, and the record has not changed since the
 * backup.
 */
function lostInRestore(syncCount: number, storedSyncCount: number, dataset: DatasetState): boolean {
  return dataset.restored !== undefined && storedSyncCount <= dataset.restored.from && syncedAfterRestoredBackup(syncCount, dataset.restored);
}

/**
 * Applies a request's patches all-or-nothing. Every patch must carry the record's current SyncCount
 * (0 for a record never written); one stale patch fails the whole request with ResourceConflictException.
 * A successful request moves the dataset SyncCount up by exactly one and stamps every record it stores with it.
 *
 * Removing a key the dataset has never held stores nothing: there is no value for another device to drop, and a
 * tombstone per such key (which counts toward no limit) let any caller grow a dataset without bound, thousands of
 * made-up keys per request. Its answer is the key removed at the request's SyncCount, as if stored, because
 * amazon-cognito-js takes its last SyncCount from the highest count in the answer (a 0 there sent it back to 0,
 * where no deletion is ever reported). So a key without a stored version takes, besides 0, any SyncCount the
 * dataset has reached since its last deletion: such a count can only come from that answer (a record written since
 * the deletion would be stored), and there is no version to conflict with. A count from before the deletion still
 * conflicts, so the deletion is still learned. A tombstone that exists is stamped anew as before.
 *
 * After a restore (core/restore.ts), a stored key also takes a count the restore lost, if the record has not changed
 * since the backup. A device that last synced before the backup can hold such a count for one key: it resolved a
 * conflict with a write made after the backup and kept that write's count. Its last SyncCount is outside the span,
 * so it is never told of the restore, and with a conflict every sync of it failed for good.
 */
export function applyRecordPatches(input: ApplyPatchesInput): ApplyPatchesResult {
  const { dataset, current, patches, limits } = input;
  const seen = new Set<string>();
  for (const patch of patches) {
    if (seen.has(patch.key)) throw new InvalidParameterException(`Duplicate key in RecordPatches: ${patch.key}`);
    seen.add(patch.key);
    if (patch.op === 'replace' && patch.value === undefined) throw new InvalidParameterException(`RecordPatch for key ${patch.key} has Op replace but no Value`);
  }
  for (const patch of patches) {
    const stored = current.get(patch.key);
    const currentSyncCount = stored?.syncCount ?? 0;
    if (patch.syncCount !== currentSyncCount && !(stored ? lostInRestore(patch.syncCount, currentSyncCount, dataset) : answeredUnstored(patch.syncCount, dataset))) {
      throw new ResourceConflictException(`Current SyncCount for: ${patch.key} is: ${currentSyncCount} not: ${patch.syncCount}`);
    }
  }
  // A deletion after the ListRecords this write is based on: the client has not seen it, and a push that goes on to
  // re-create the dataset (new keys need no current SyncCount) would hide it from clients that move their last
  // SyncCount up to the push's, as amazon-cognito-js does. A conflict sends it back to ListRecords, which reports it.
  if (input.sessionSyncCount !== undefined && (dataset.deletedAtSyncCount ?? 0) > input.sessionSyncCount) {
    throw new ResourceConflictException('The dataset was deleted after this SyncSessionToken was issued; call ListRecords again.');
  }
  // Likewise a token from a ListRecords the server no longer remembers (restored from a backup since).
  if (input.sessionSyncCount !== undefined && dataset.restored && syncedAfterRestoredBackup(input.sessionSyncCount, dataset.restored)) {
    throw new ResourceConflictException('The dataset was restored from a backup after this SyncSessionToken was issued; call ListRecords again.');
  }
  // Or one from before removals the dataset no longer remembers (core/tombstones.ts): a patch of a key removed since,
  // its tombstone dropped, would find no version to conflict with and silently bring the key back.
  if (input.sessionSyncCount !== undefined && missedDroppedRemovals(input.sessionSyncCount, dataset.tombstonesDroppedThrough ?? 0)) {
    throw new ResourceConflictException('Removals made after this SyncSessionToken was issued are no longer remembered; call ListRecords again.');
  }
  if (!dataset.live && input.otherLiveDatasets >= limits.datasetsPerIdentity) {
    throw new LimitExceededException(`Identity already has the maximum of ${limits.datasetsPerIdentity} datasets`);
  }

  const syncCount = dataset.syncCount + 1;
  let dataStorage = dataset.live ? dataset.dataStorage : 0;
  let numRecords = dataset.live ? dataset.numRecords : 0;
  const records: StoredRecord[] = [];
  const answer: StoredRecord[] = [];
  let tombstones = dataset.live ? (dataset.tombstones ?? 0) : 0;
  let tombstoneBytes = dataset.live ? (dataset.tombstoneBytes ?? 0) : 0;
  for (const patch of patches) {
    const before = current.get(patch.key);
    const value = patch.op === 'remove' ? null : (patch.value as string);
    dataStorage += recordBytes(patch.key, value) - (before ? recordBytes(before.key, before.value) : 0);
    numRecords += (value === null ? 0 : 1) - (before && before.value !== null ? 1 : 0);
    // A removal of a live record leaves a tombstone; a value written over one takes it away.
    if (before && (value === null) !== (before.value === null)) {
      const change = value === null ? 1 : -1;
      tombstones += change;
      tombstoneBytes += change * Buffer.byteLength(patch.key, 'utf8');
    }
    const record: StoredRecord = {
      key: patch.key,
      value,
      syncCount,
      lastModifiedDate: input.now,
      lastModifiedBy: input.modifiedBy,
      deviceLastModifiedDate: patch.deviceLastModifiedDate ?? input.now,
    };
    // A removal of a key never held is answered, not stored.
    if (value !== null || before) records.push(record);
    answer.push(record);
  }
  if (dataStorage > limits.datasetBytes) {
    throw new LimitExceededException(`Dataset would hold ${dataStorage} bytes; the limit is ${limits.datasetBytes} bytes`);
  }
  if (numRecords > limits.recordsPerDataset) {
    throw new LimitExceededException(`Dataset would hold ${numRecords} records; the limit is ${limits.recordsPerDataset} records`);
  }
  return { dataset: { live: true, syncCount, dataStorage, numRecords, tombstones, tombstoneBytes }, records, answer, dropTombstones: tombstonesToDrop(tombstones, tombstoneBytes, limits) };
}
