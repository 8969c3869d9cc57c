// Unit tests of the bound on a dataset's tombstones: when to drop, and where to cut.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { missedDroppedRemovals, tombstoneCut, tombstonesToDrop } from './tombstones.js';

const limits = { tombstonesPerDataset: 8, tombstoneBytesPerDataset: 100 };

describe('tombstonesToDrop', () => {
  test('nothing within both bounds; past either, down to three quarters of both', () => {
    assert.equal(tombstonesToDrop(8, 100, limits), undefined);
    assert.deepEqual(tombstonesToDrop(9, 10, limits), { count: 3, bytes: 0 });
    assert.deepEqual(tombstonesToDrop(2, 101, limits), { count: 0, bytes: 26 });
    assert.deepEqual(tombstonesToDrop(12, 140, limits), { count: 6, bytes: 65 });
  });
});

describe('tombstoneCut', () => {
  const rows = (...pairs: Array<[number, number]>) => pairs;
  test('drops the oldest until enough, then the rest of that SyncCount', () => {
    const oldest = rows([2, 5], [2, 5], [3, 5], [3, 5], [3, 5], [6, 5]);
    assert.equal(tombstoneCut(oldest, { count: 1, bytes: 0 }, 9), 2);
    assert.equal(tombstoneCut(oldest, { count: 2, bytes: 0 }, 9), 2);
    assert.equal(tombstoneCut(oldest, { count: 3, bytes: 0 }, 9), 3);
    assert.equal(tombstoneCut(oldest, { count: 1, bytes: 11 }, 9), 3, 'the byte bound alone');
  });

  test('never the removing write\'s own: when they alone pass the bound, every older one goes', () => {
    assert.equal(tombstoneCut(rows([2, 5], [4, 5], [9, 50], [9, 50]), { count: 3, bytes: 0 }, 9), 4);
    assert.equal(tombstoneCut(rows([9, 50], [9, 50]), { count: 1, bytes: 0 }, 9), undefined);
    assert.equal(tombstoneCut([], { count: 1, bytes: 0 }, 9), undefined);
  });
});

describe('missedDroppedRemovals', () => {
  test('only a device that synced, and before the drop', () => {
    assert.equal(missedDroppedRemovals(0, 5), false, 'a first pull holds nothing');
    assert.equal(missedDroppedRemovals(4, 5), true);
    assert.equal(missedDroppedRemovals(5, 5), false, 'it saw every removal dropped');
    assert.equal(missedDroppedRemovals(4, 0), false, 'nothing dropped');
  });
});
