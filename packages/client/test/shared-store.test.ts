// Several managers on one SQLite file (as two processes or app instances would be): one sync at a time per
// dataset, nothing pushed twice, and every manager sees the others' committed local writes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.ts';
import { createPool, device, serverValues, spyFetch, startServer, type ServerProcess } from './support.ts';

let server: ServerProcess;
let poolId: string;
const dir = mkdtempSync(join(tmpdir(), 'cognisync-client-shared-'));

before(async () => {
  server = await startServer();
  poolId = await createPool(server);
});
after(async () => {
  assert.equal(await server.stop(), 0);
  rmSync(dir, { recursive: true, force: true });
});

test('two managers on one SQLite file syncing one dataset at once take turns and push each change once', async () => {
  const path = join(dir, 'shared.db');
  const spy = spyFetch();
  const first = device(server, poolId, { store: new SqliteStore(path), fetch: spy.fetch });
  const identityId = await first.identityId();
  const second = device(server, poolId, { store: new SqliteStore(path), fetch: spy.fetch });
  assert.equal(await second.identityId(), identityId, 'the identity id is shared through the store');

  const a = await first.openOrCreateDataset('shared');
  const b = await second.openOrCreateDataset('shared');
  await a.put('from-first', '1');
  await b.put('from-second', '2');
  assert.deepEqual(await a.getAll(), { 'from-first': '1', 'from-second': '2' }, 'one store: each sees the other’s writes');

  const [x, y] = await Promise.all([a.synchronize(), b.synchronize()]);
  assert.equal(x.pushed + y.pushed, 2, 'each record pushed exactly once');
  assert.equal(spy.calls.filter((c) => c === 'UpdateRecords').length, 1, 'one UpdateRecords: the second sync found nothing left to push');
  assert.equal(x.attempts + y.attempts, 2, 'no 409: the syncs never overlapped');
  assert.deepEqual(await serverValues(server, poolId, identityId, 'shared'), { 'from-first': '1', 'from-second': '2' });
  assert.equal(await b.hasPendingChanges(), false);
});
