// Unit tests of the UpdateRecords rule: optimistic concurrency, SyncCount numbering, limits and accounting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StoredRecord } from '../store/store.js';
import { applyRecordPatches, recordBytes, type ApplyPatchesInput, type RecordPatch } from './record-patches.js';

const NOW = 1_700_000_000_000;
const limits = { datasetsPerIdentity: 20, datasetBytes: 1024 * 1024, recordsPerDataset: 1024, tombstonesPerDataset: 4096, tombstoneBytesPerDataset: 1024 * 1024 };

const stored = (key: string, value: string | null, syncCount: number): StoredRecord => ({
  key,
  value,
  syncCount,
  lastModifiedDate: NOW - 1000,
  lastModifiedBy: 'earlier',
  deviceLastModifiedDate: NOW - 1000,
});

/** A live dataset at SyncCount 7 holding the given records (accounting derived from them). */
function input(records: StoredRecord[], patches: RecordPatch[], overrides: Partial<ApplyPatchesInput> = {}): ApplyPatchesInput {
  return {
    dataset: {
      live: true,
      syncCount: 7,
      dataStorage: records.reduce((sum, r) => sum + recordBytes(r.key, r.value), 0),
      numRecords: records.filter((r) => r.value !== null).length,
    },
    otherLiveDatasets: 0,
    current: new Map(records.map((r) => [r.key, r])),
    patches,
    now: NOW,
    modifiedBy: 'device-a',
    limits,
    ...overrides,
  };
}

const put = (key: string, value: string, syncCount = 0): RecordPatch => ({ op: 'replace', key, value, syncCount });
const remove = (key: string, syncCount: number): RecordPatch => ({ op: 'remove', key, syncCount });
const error = (name: string, message?: string | RegExp) => (message === undefined ? { name } : { name, message });

describe('applyRecordPatches: the conflict rule', () => {
  test('a patch naming the record\'s current SyncCount applies and gets the dataset\'s next SyncCount', () => {
    const result = applyRecordPatches(input([stored('a', 'old', 5), stored('b', 'keep', 3)], [put('a', 'new', 5)]));
    assert.deepEqual(result.dataset, { live: true, syncCount: 8, dataStorage: recordBytes('a', 'new') + recordBytes('b', 'keep'), numRecords: 2, tombstones: 0, tombstoneBytes: 0 });
    assert.deepEqual(result.records, [{ key: 'a', value: 'new', syncCount: 8, lastModifiedDate: NOW, lastModifiedBy: 'device-a', deviceLastModifiedDate: NOW }]);
  });

  test('a stale or future SyncCount is a ResourceConflictException naming key and counts', () => {
    const records = [stored('a', 'old', 5)];
    assert.throws(() => applyRecordPatches(input(records, [put('a', 'new', 4)])), error('ResourceConflictException', 'Current SyncCount for: a is: 5 not: 4'));
    assert.throws(() => applyRecordPatches(input(records, [put('a', 'new', 6)])), error('ResourceConflictException'));
    assert.throws(() => applyRecordPatches(input(records, [put('a', 'new', 0)])), error('ResourceConflictException', 'Current SyncCount for: a is: 5 not: 0'));
    assert.throws(() => applyRecordPatches(input(records, [remove('a', 1)])), error('ResourceConflictException'));
  });

  test('a record that never existed is patched with SyncCount 0 (see below for the counts it was answered at)', () => {
    assert.equal(applyRecordPatches(input([], [put('fresh', 'v', 0)])).records[0]?.syncCount, 8);
    assert.throws(() => applyRecordPatches(input([], [put('fresh', 'v', 9)])), error('ResourceConflictException', 'Current SyncCount for: fresh is: 0 not: 9'));
    // Removing a record that never existed is allowed with 0; it stores nothing, and is answered removed at the new count.
    const removed = applyRecordPatches(input([], [remove('fresh', 0), put('kept', 'v', 0)]));
    assert.deepEqual(removed.records.map((r) => [r.key, r.value, r.syncCount]), [['kept', 'v', 8]]);
    assert.deepEqual(removed.answer.map((r) => [r.key, r.value, r.syncCount]), [['fresh', null, 8], ['kept', 'v', 8]]);
    assert.equal(removed.dataset.syncCount, 8);
    assert.equal(removed.dataset.numRecords, 1);
    assert.equal(removed.dataset.dataStorage, 5);
  });

  test('a key without a stored version takes 0, or a count the dataset reached since its last deletion (one it answered unstored)', () => {
    const dataset = { live: true, syncCount: 7, dataStorage: 0, numRecords: 0, deletedAtSyncCount: 3 };
    for (const syncCount of [0, 4, 7]) assert.equal(applyRecordPatches(input([], [put('k', 'v', syncCount)], { dataset })).dataset.syncCount, 8, String(syncCount));
    // From before the deletion (the device must learn of it), or beyond anything handed out: a conflict.
    for (const syncCount of [3, 1, 8]) assert.throws(() => applyRecordPatches(input([], [put('k', 'v', syncCount)], { dataset })), error('ResourceConflictException', `Current SyncCount for: k is: 0 not: ${syncCount}`));
    // A deleted dataset has no such counts.
    assert.throws(() => applyRecordPatches(input([], [put('k', 'v', 3)], { dataset: { ...dataset, live: false, syncCount: 3 } })), error('ResourceConflictException'));
  });

  test('after a restore, a stored key unchanged since the backup takes a count the restore lost (a device kept it from a conflict)', () => {
    // Backed up at 5, marked at 1,000,005: counts 6 to 1,000,004 were lost.
    const dataset = { live: true, syncCount: 1_000_007, dataStorage: 2, numRecords: 2, restored: { from: 5, to: 1_000_005 } };
    const records = [stored('old', '1', 4), stored('rewritten', '2', 1_000_006)];
    assert.equal(applyRecordPatches(input(records, [put('old', 'mine', 6)], { dataset })).records[0]!.syncCount, 1_000_008);
    assert.equal(applyRecordPatches(input(records, [put('old', 'mine', 1_000_004)], { dataset })).dataset.syncCount, 1_000_008);
    // Outside the span, or a record written since the restore: the usual conflict.
    for (const syncCount of [3, 5, 1_000_005]) assert.throws(() => applyRecordPatches(input(records, [put('old', 'mine', syncCount)], { dataset })), error('ResourceConflictException', `Current SyncCount for: old is: 4 not: ${syncCount}`));
    assert.throws(() => applyRecordPatches(input(records, [put('rewritten', 'mine', 6)], { dataset })), error('ResourceConflictException'));
    // Never restored: no such counts.
    assert.throws(() => applyRecordPatches(input(records, [put('old', 'mine', 6)], { dataset: { ...dataset, restored: { from: 0, to: 0 } } })), error('ResourceConflictException'));
  });

  test('a deletion after the SyncSessionToken\'s ListRecords is a conflict, even for new keys', () => {
    const deleted = { live: false, syncCount: 9, dataStorage: 0, numRecords: 0, deletedAtSyncCount: 9 };
    assert.throws(() => applyRecordPatches(input([], [put('new', 'v', 0)], { dataset: deleted, sessionSyncCount: 7 })), error('ResourceConflictException', /deleted after this SyncSessionToken/));
    // Listed after the deletion, or with a token that does not say: the dataset is re-created.
    assert.equal(applyRecordPatches(input([], [put('new', 'v', 0)], { dataset: deleted, sessionSyncCount: 9 })).dataset.syncCount, 10);
    assert.equal(applyRecordPatches(input([], [put('new', 'v', 0)], { dataset: deleted })).dataset.syncCount, 10);
    // Re-created since by another device: still a conflict for a token from before the deletion.
    const recreated = { live: true, syncCount: 11, dataStorage: 0, numRecords: 0, deletedAtSyncCount: 9 };
    assert.throws(() => applyRecordPatches(input([], [put('new', 'v', 0)], { dataset: recreated, sessionSyncCount: 8 })), error('ResourceConflictException'));
  });

  test('a SyncSessionToken from before removals the dataset dropped (core/tombstones.ts) is a conflict, from the drop\'s count on it is not', () => {
    const dataset = { live: true, syncCount: 12, dataStorage: 0, numRecords: 0, tombstonesDroppedThrough: 9 };
    assert.throws(() => applyRecordPatches(input([], [put('k', 'v', 4)], { dataset, sessionSyncCount: 8 })), error('ResourceConflictException', /no longer remembered/));
    assert.equal(applyRecordPatches(input([], [put('k', 'v', 4)], { dataset, sessionSyncCount: 9 })).dataset.syncCount, 13);
    // A token from a pull of nothing (count 0) and one that does not say are not refused.
    assert.equal(applyRecordPatches(input([], [put('k', 'v', 0)], { dataset, sessionSyncCount: 0 })).dataset.syncCount, 13);
    assert.equal(applyRecordPatches(input([], [put('k', 'v', 0)], { dataset })).dataset.syncCount, 13);
  });

  test('a tombstone must be patched with the tombstone\'s SyncCount, not 0', () => {
    const records = [stored('gone', null, 6)];
    assert.throws(() => applyRecordPatches(input(records, [put('gone', 'back', 0)])), error('ResourceConflictException', 'Current SyncCount for: gone is: 6 not: 0'));
    const result = applyRecordPatches(input(records, [put('gone', 'back', 6)]));
    assert.equal(result.records[0]?.value, 'back');
    assert.equal(result.dataset.numRecords, 1);
    assert.equal(result.dataset.dataStorage, recordBytes('gone', 'back'));
  });

  test('one conflicting patch refuses the whole request, wherever it is', () => {
    const records = [stored('a', '1', 2), stored('b', '2', 3)];
    assert.throws(() => applyRecordPatches(input(records, [put('new', 'x'), put('a', 'y', 2), put('b', 'z', 2)])), error('ResourceConflictException', /for: b /));
    assert.throws(() => applyRecordPatches(input(records, [put('b', 'z', 2), put('a', 'y', 2)])), error('ResourceConflictException', /for: b /));
  });

  test('an empty request still takes the next SyncCount and changes no record', () => {
    const result = applyRecordPatches(input([stored('a', 'v', 1)], []));
    assert.deepEqual(result.dataset, { live: true, syncCount: 8, dataStorage: 2, numRecords: 1, tombstones: 0, tombstoneBytes: 0 });
    assert.deepEqual(result.records, []);
  });

  test('the device\'s own modification date is kept when given', () => {
    const result = applyRecordPatches(input([], [{ ...put('a', 'v'), deviceLastModifiedDate: NOW - 5 }]));
    assert.equal(result.records[0]?.deviceLastModifiedDate, NOW - 5);
    assert.equal(result.records[0]?.lastModifiedDate, NOW);
  });

  test('a deleted dataset continues its SyncCount and starts from zero storage and records', () => {
    const result = applyRecordPatches({
      ...input([], [put('a', 'v')]),
      dataset: { live: false, syncCount: 12, dataStorage: 999, numRecords: 9 },
    });
    assert.deepEqual(result.dataset, { live: true, syncCount: 13, dataStorage: 2, numRecords: 1, tombstones: 0, tombstoneBytes: 0 });
  });
});

describe('applyRecordPatches: malformed requests', () => {
  test('the same key twice is an InvalidParameterException, even with a conflict elsewhere', () => {
    assert.throws(() => applyRecordPatches(input([], [put('a', '1'), put('b', '2'), remove('a', 0)])), error('InvalidParameterException', 'Duplicate key in RecordPatches: a'));
    assert.throws(() => applyRecordPatches(input([stored('z', 'v', 3)], [put('z', 'x', 1), put('a', '1'), put('a', '2')])), error('InvalidParameterException'));
  });

  test('replace without a Value is an InvalidParameterException; an empty string is a value', () => {
    assert.throws(() => applyRecordPatches(input([], [{ op: 'replace', key: 'a', syncCount: 0 }])), error('InvalidParameterException', 'RecordPatch for key a has Op replace but no Value'));
    const result = applyRecordPatches(input([], [put('a', '')]));
    assert.equal(result.records[0]?.value, '');
    assert.equal(result.dataset.numRecords, 1);
    assert.equal(result.dataset.dataStorage, 1);
  });
});

describe('applyRecordPatches: limits', () => {
  test('dataset bytes: exactly the limit is allowed, one byte over is LimitExceededException', () => {
    const tight = { ...limits, datasetBytes: 100 };
    // 'k' + 99 bytes = 100; 'é' is two bytes in UTF-8.
    const exactly = applyRecordPatches(input([], [put('k', 'é'.repeat(49) + 'x')], { limits: tight }));
    assert.equal(exactly.dataset.dataStorage, 100);
    assert.throws(() => applyRecordPatches(input([], [put('k', 'é'.repeat(49) + 'xy')], { limits: tight })), error('LimitExceededException'));
    assert.throws(() => applyRecordPatches(input([], [put('k', 'é'.repeat(50))], { limits: tight })), error('LimitExceededException'));
  });

  test('dataset bytes count what the dataset already holds', () => {
    const tight = { ...limits, datasetBytes: 100 };
    const records = [stored('a', 'x'.repeat(89), 1)]; // 90 bytes
    assert.equal(applyRecordPatches(input(records, [put('b', 'y'.repeat(9))], { limits: tight })).dataset.dataStorage, 100);
    assert.throws(() => applyRecordPatches(input(records, [put('b', 'y'.repeat(10))], { limits: tight })), error('LimitExceededException'));
    // Shrinking a record makes room in the same request.
    const shrunk = applyRecordPatches(input(records, [put('a', 'x', 1), put('b', 'y'.repeat(50))], { limits: tight }));
    assert.equal(shrunk.dataset.dataStorage, 2 + 51);
  });

  test('records per dataset: exactly the limit is allowed, one over is LimitExceededException', () => {
    const tight = { ...limits, recordsPerDataset: 3 };
    const two = [stored('a', '1', 1), stored('b', '1', 1)];
    assert.equal(applyRecordPatches(input(two, [put('c', '1')], { limits: tight })).dataset.numRecords, 3);
    assert.throws(() => applyRecordPatches(input(two, [put('c', '1'), put('d', '1')], { limits: tight })), error('LimitExceededException'));
    // A tombstone holds no place; removing one record makes room for another in the same request.
    const full = [...two, stored('c', '1', 1), stored('t', null, 2)];
    assert.throws(() => applyRecordPatches(input(full, [put('t', 'back', 2)], { limits: tight })), error('LimitExceededException'));
    assert.equal(applyRecordPatches(input(full, [remove('a', 1), put('t', 'back', 2)], { limits: tight })).dataset.numRecords, 3);
  });

  test('datasets per identity: a new dataset is refused when the identity already has the maximum; an existing one is not', () => {
    const tight = { ...limits, datasetsPerIdentity: 2 };
    const fresh = { live: false, syncCount: 0, dataStorage: 0, numRecords: 0 };
    assert.equal(applyRecordPatches({ ...input([], [put('a', '1')], { limits: tight }), dataset: fresh, otherLiveDatasets: 1 }).dataset.syncCount, 1);
    assert.throws(() => applyRecordPatches({ ...input([], [put('a', '1')], { limits: tight }), dataset: fresh, otherLiveDatasets: 2 }), error('LimitExceededException'));
    assert.equal(applyRecordPatches(input([], [put('a', '1')], { limits: tight, otherLiveDatasets: 2 })).dataset.syncCount, 8);
  });

  test('a conflict is reported before a limit', () => {
    const tight = { ...limits, datasetBytes: 1 };
    assert.throws(() => applyRecordPatches(input([stored('a', '1', 1)], [put('a', 'too long', 0)], { limits: tight })), error('ResourceConflictException'));
  });
});

describe('applyRecordPatches: accounting', () => {
  test('replacing an existing record counts only the change in bytes and no new record', () => {
    const records = [stored('name', 'short', 2), stored('ключ', 'значение', 3)];
    const before = recordBytes('name', 'short') + recordBytes('ключ', 'значение');
    assert.equal(before, 9 + 8 + 16);
    const result = applyRecordPatches(input(records, [put('ключ', '値', 3)]));
    assert.equal(result.dataset.dataStorage, 9 + 8 + 3);
    assert.equal(result.dataset.numRecords, 2);
  });

  test('removing a record gives back its bytes and its place; its tombstone counts toward neither', () => {
    const records = [stored('a', 'value', 2), stored('b', 'other', 3)];
    const result = applyRecordPatches(input(records, [remove('a', 2)]));
    assert.deepEqual(result.dataset, { live: true, syncCount: 8, dataStorage: recordBytes('b', 'other'), numRecords: 1, tombstones: 1, tombstoneBytes: 1 });
    assert.deepEqual(result.records, [{ key: 'a', value: null, syncCount: 8, lastModifiedDate: NOW, lastModifiedBy: 'device-a', deviceLastModifiedDate: NOW }]);
    // Removing a tombstone again changes nothing but its SyncCount.
    const again = applyRecordPatches(input([stored('a', null, 8), stored('b', 'other', 3)], [remove('a', 8)]));
    assert.equal(again.dataset.numRecords, 1);
    assert.equal(again.dataset.dataStorage, recordBytes('b', 'other'));
  });

  test('tombstones are counted with their keys\' UTF-8 bytes: a removal adds one, a value written over one takes it away', () => {
    const dataset = (tombstones: number, tombstoneBytes: number) => ({ live: true, syncCount: 7, dataStorage: 10, numRecords: 2, tombstones, tombstoneBytes });
    const records = [stored('live', 'v', 2), stored('ключ', 'v', 3), stored('gone', null, 4)];
    const removed = applyRecordPatches(input(records, [remove('live', 2), remove('ключ', 3), remove('gone', 4), remove('never', 0)], { dataset: dataset(1, 4) }));
    assert.equal(removed.dataset.tombstones, 3, 'two removals of live records; a tombstone removed again and a key never held add none');
    assert.equal(removed.dataset.tombstoneBytes, 4 + 4 + 8);
    const revived = applyRecordPatches(input(records, [put('gone', 'back', 4), put('live', 'w', 2)], { dataset: dataset(1, 4) }));
    assert.deepEqual([revived.dataset.tombstones, revived.dataset.tombstoneBytes], [0, 0]);
    // A deleted dataset starts again from none.
    assert.equal(applyRecordPatches(input([], [put('a', 'v')], { dataset: { ...dataset(5, 50), live: false } })).dataset.tombstones, 0);
  });

  test('past either bound, the write asks for its oldest tombstones to be dropped to three quarters of both', () => {
    const bounds = { ...limits, tombstonesPerDataset: 8, tombstoneBytesPerDataset: 100 };
    const at = (tombstones: number, tombstoneBytes: number, patches: RecordPatch[], records: StoredRecord[]) =>
      applyRecordPatches(input(records, patches, { dataset: { live: true, syncCount: 7, dataStorage: 0, numRecords: records.length, tombstones, tombstoneBytes }, limits: bounds })).dropTombstones;
    assert.equal(at(7, 50, [remove('k', 1)], [stored('k', 'v', 1)]), undefined, 'at the bounds: nothing');
    assert.deepEqual(at(8, 50, [remove('k', 1)], [stored('k', 'v', 1)]), { count: 3, bytes: 0 }, 'one tombstone over: down to 6');
    assert.deepEqual(at(2, 99, [remove('kk', 1)], [stored('kk', 'v', 1)]), { count: 0, bytes: 26 }, 'one byte over: down to 75 bytes');
  });

  test('recordBytes counts UTF-8 bytes of key and value, and nothing for a tombstone', () => {
    assert.equal(recordBytes('a', 'b'), 2);
    assert.equal(recordBytes('ключ', '😀'), 8 + 4);
    assert.equal(recordBytes('ключ', null), 0);
  });
});
