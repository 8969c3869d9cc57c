// The BulkPublish walk against a store whose datasets keep changing: each lost race makes the next read smaller,
// so a step still gets through, and the job reaches its end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultLimits } from '../limits.js';
import type { ClaimedOutboxEntry, DatasetKey } from '../store/store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { BulkPublishJob } from './bulk-publish-job.js';
import type { BulkPublishPayload } from './entries.js';

const POOL = 'us-east-1:00000000-0000-4000-8000-000000000001';
const T0 = 1_700_000_000_000;
const key = (n: number): DatasetKey => ({ identityPoolId: POOL, identityId: `us-east-1:00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, datasetName: 'd' });

test('a bulk publish gets through a pool whose busy dataset changes while every larger step reads the datasets after it', async () => {
  const store = new SqliteStore({ filename: ':memory:' });
  await store.migrate();
  await store.createIdentityPool({ identityPoolId: POOL, identityPoolName: 'pool', description: { IdentityPoolName: 'pool' }, creationDate: T0, lastModifiedDate: T0 }, 10);
  try {
    const write = (k: DatasetKey, value: string, syncCount: number) =>
      store.updateRecords({ ...k, patches: [{ op: 'replace', key: 'k', value, syncCount }], now: T0, modifiedBy: 'test', limits: { ...defaultLimits } });
    for (let n = 0; n < 30; n++) await write(key(n), 'v0', 0);
    // The third dataset is busy: a device writes it whenever the walk reads a dataset after it, so every step that
    // reads it and anything after it loses the race; only a step that ends at it can queue its snapshot.
    const busy = key(2);
    let busyCount = 1;
    const listRecords = store.listRecords.bind(store);
    store.listRecords = async (k, ...rest) => {
      const page = await listRecords(k, ...rest);
      if (k.identityId > busy.identityId) {
        await write(busy, `v${busyCount}`, busyCount);
        busyCount++;
      }
      return page;
    };

    await store.enqueueOutbox([{ kind: 'bulk-publish', partitionKey: `bulk:${POOL}`, payload: { identityPoolId: POOL, streamName: 's' } satisfies BulkPublishPayload, bulkPoolId: POOL }], T0);
    const job = new BulkPublishJob(store);
    let steps = 0;
    let finished = false;
    while (!finished) {
      const claimed: ClaimedOutboxEntry[] = await store.claimOutbox('test', T0, 30_000, 1000);
      const step = claimed.find((e) => e.kind === 'bulk-publish');
      finished = claimed.some((e) => e.kind === 'bulk-finish');
      if (step) {
        await job.step(step, T0);
        steps++;
      }
      assert.ok(step || finished, 'the walk goes on');
      assert.ok(steps < 40, 'the walk ends');
    }
    // Every dataset's snapshot was queued, the busy one's at least as new as when its step read it.
    assert.equal(await store.countBulkOutbox(POOL, 'stream'), 30);
    assert.ok(busyCount > 1, 'the busy dataset did change during the walk');
  } finally {
    await store.close();
  }
});
