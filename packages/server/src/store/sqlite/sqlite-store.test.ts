// Runs the Store contract against the SQLite store, plus what only a file-backed database can show:
// idempotent migrations and durability across close and reopen.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultLimits } from '../../limits.js';
import { runStoreContract } from '../store.contract.js';
import { SqliteStore } from './sqlite-store.js';

runStoreContract('SqliteStore (:memory:)', async () => {
  const store = new SqliteStore({ filename: ':memory:' });
  await store.migrate();
  return store;
});

describe('SqliteStore on a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cognisync-sqlite-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const POOL = 'us-east-1:00000000-0000-4000-8000-000000000001';
  const key = { identityPoolId: POOL, identityId: 'us-east-1:11111111-1111-4111-8111-111111111111', datasetName: 'settings' };

  test('migrate() twice is a no-op and data survives close and reopen', async () => {
    const filename = join(dir, 'nested', 'cognisync.db');
    const first = new SqliteStore({ filename, synchronous: 'FULL' });
    await first.migrate();
    await first.createIdentityPool({ identityPoolId: POOL, identityPoolName: 'pool', description: { IdentityPoolName: 'pool' }, creationDate: 1, lastModifiedDate: 1 }, 10);
    await first.updateRecords({ ...key, patches: [{ op: 'replace', key: 'k', value: 'v', syncCount: 0 }], now: 1000, modifiedBy: 'test', limits: { ...defaultLimits } });
    assert.equal(await first.getOrCreateSetting('secret', 'kept'), 'kept');
    // A second migrate on a migrated database changes nothing and loses nothing.
    await first.migrate();
    assert.equal((await first.describeDataset(key))?.syncCount, 1);
    await first.close();
    assert.equal(await first.ping(), false);

    const reopened = new SqliteStore({ filename });
    await reopened.migrate();
    await reopened.migrate();
    assert.equal((await reopened.getIdentityPool(POOL))?.identityPoolName, 'pool');
    assert.equal(await reopened.getOrCreateSetting('secret', 'replaced'), 'kept');
    const page = await reopened.listRecords(key, 0, undefined, 10);
    assert.equal(page.dataset?.syncCount, 1);
    assert.deepEqual(page.records.map((r) => [r.key, r.value, r.syncCount]), [['k', 'v', 1]]);
    // Numbering continues where the first process stopped.
    const next = await reopened.updateRecords({ ...key, patches: [{ op: 'replace', key: 'k', value: 'w', syncCount: 1 }], now: 2000, modifiedBy: 'test', limits: { ...defaultLimits } });
    assert.equal(next.dataset.syncCount, 2);
    await reopened.close();
  });

  test('a store used before migrate() fails loudly rather than silently', async () => {
    const store = new SqliteStore({ filename: join(dir, 'unmigrated.db') });
    try {
      await assert.rejects(store.describeDataset(key), /before migrate/);
    } finally {
      await store.close();
    }
  });
});
