import assert from 'node:assert/strict';
import { test } from 'node:test';
import { putRecordsBatches } from './kinesis-delivery.js';

const MiB = 1024 * 1024;

test('PutRecords batches stay within 5 MiB and 500 records, in order', () => {
  // Seven changes of 900 KB: five fit one call (4.4 MiB), the other two the next.
  const sizes = Array(7).fill(900 * 1024);
  assert.deepEqual(putRecordsBatches(sizes.map((size, i) => ({ i, size })), (r) => r.size).map((b) => b.map((r) => r.i)), [[0, 1, 2, 3, 4], [5, 6]]);
  // Exactly 5 MiB is one call; a byte more is two.
  assert.equal(putRecordsBatches([MiB, MiB, MiB, MiB, MiB], (n) => n).length, 1);
  assert.equal(putRecordsBatches([MiB, MiB, MiB, MiB, MiB, 1], (n) => n).length, 2);
  // 1,001 small records: 500, 500, 1.
  assert.deepEqual(putRecordsBatches(Array(1001).fill(10), (n) => n).map((b) => b.length), [500, 500, 1]);
  // A record larger than a call's limit goes alone (Kinesis refuses it, and only it).
  assert.deepEqual(putRecordsBatches([10, 6 * MiB, 10], (n) => n).map((b) => b.length), [1, 1, 1]);
  assert.deepEqual(putRecordsBatches([], (n: number) => n), []);
});
