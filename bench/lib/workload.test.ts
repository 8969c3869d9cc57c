// The allocator of new-key writes: every write gets fresh keys in a dataset with room, datasets stay within each
// allocator's budget per identity, concurrent writes spread over identities, and reserve() adds identities when a
// run needs more room than there is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WriteSlots, type BenchIdentity } from './workload.ts';

const identity = (n: number): BenchIdentity => ({ identityId: `us-east-1:${n}`, credentials: { accessKeyId: `AK${n}`, secretAccessKey: 's', sessionToken: 't' } });

test('writes fill datasets in turn across identities, each within its budget, keys never repeated', async () => {
  const slots = new WriteSlots([identity(1), identity(2)], 'w-', 2, undefined, 10);
  await slots.reserve(8, 5); // 2 identities × 2 datasets × 2 writes of 5 keys
  const taken = Array.from({ length: 8 }, () => slots.take(5));
  assert.deepEqual(
    taken.map((t) => `${t.identity.identityId} ${t.datasetName}`),
    ['us-east-1:1 w-0', 'us-east-1:2 w-0', 'us-east-1:1 w-0', 'us-east-1:2 w-0', 'us-east-1:1 w-1', 'us-east-1:2 w-1', 'us-east-1:1 w-1', 'us-east-1:2 w-1'],
  );
  const keys = taken.flatMap((t) => t.keys);
  assert.equal(new Set(keys).size, 40);
  assert.throws(() => slots.take(5), /out of room/);
  await assert.rejects(slots.reserve(1, 5), /no room for 1 more writes/);
});

test('reserve() creates just enough identities, and the full ones are passed over', async () => {
  const created: number[] = [];
  let next = 100;
  const slots = new WriteSlots([identity(1)], 'w-', 2, async (count) => {
    created.push(count);
    return Array.from({ length: count }, () => identity(next++));
  }, 10);
  await slots.reserve(4, 5); // fits the one identity: nothing created
  assert.deepEqual(created, []);
  await slots.reserve(4 + 9, 5); // 9 more writes at 4 per new identity: 3 identities
  assert.deepEqual(created, [3]);
  const owners = Array.from({ length: 13 }, () => slots.take(5).identity.identityId);
  assert.equal(owners.filter((id) => id === 'us-east-1:1').length, 4);
  assert.deepEqual(new Set(owners), new Set(['us-east-1:1', 'us-east-1:100', 'us-east-1:101', 'us-east-1:102']));
});
