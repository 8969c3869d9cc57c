// amazon-cognito-js 1.1.0 after a dataset is reported deleted (another device's DeleteDataset, or a restore marked
// with `cognisync mark-restored`): what the library does by itself, and the app-side workaround the README shows.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import AWS from 'aws-sdk';
import { DeleteDatasetCommand } from '@aws-sdk/client-cognito-sync';
import { call, MemoryStorage, type Acjs, signInAnonymously } from '../../server/test/support/amazon-cognito-js.ts';
import { createPool, serverValues, startServer, syncClient, type ServerProcess } from './support.ts';

const bin = new URL('../../server/bin/cognisync.js', import.meta.url).pathname;

/** A port free now: the server restarts on the same one, since the library keeps its endpoint. */
async function freePort(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return String(port);
}
const PORT = await freePort();

/**
 * The app code the README shows: dataset.synchronize(callbacks), but a dataset reported deleted is dropped locally
 * and pulled again.
 */
function synchronizeDroppingDeleted(manager: Acjs, dataset: Acjs, callbacks: Acjs): void {
  let deleted = false;
  dataset.synchronize({
    ...callbacks,
    onDatasetDeleted(_ds: Acjs, _name: string, callback: (go: boolean) => void) {
      deleted = true;
      callback(false); // true purges, then throws "_synchronizeInternal is not a function"
    },
    onFailure(error: Error) {
      if (!deleted) return callbacks.onFailure(error);
      manager.local.purgeDataset(manager.getIdentityId(), dataset.datasetName, (error: Error | null) => {
        if (error) return callbacks.onFailure(error);
        manager.openOrCreateDataset(dataset.datasetName, (error: Error | null) => {
          if (error) return callbacks.onFailure(error);
          dataset.synchronize(callbacks);
        });
      });
    },
  });
}
/** One synchronize, plainly or through the workaround: the callbacks it ended with. */
function sync(manager: Acjs, dataset: Acjs, how: 'plain' | 'workaround' = 'workaround'): Promise<string[]> {
  const events: string[] = [];
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`synchronize hung after ${events.join(' → ')}`)), 15_000);
    const callbacks = {
      onSuccess: () => (clearTimeout(timer), done([...events, 'onSuccess'])),
      onFailure: (error: Error) => (clearTimeout(timer), done([...events, `onFailure: ${error.message}`])),
      onConflict: (ds: Acjs, conflicts: Acjs[], cb: (go: boolean) => void) => ds.resolve(conflicts.map((c) => c.resolveWithRemoteRecord()), () => cb(true)),
      onDatasetDeleted: (_ds: Acjs, name: string, cb: (go: boolean) => void) => (events.push(`onDatasetDeleted(${name})`), cb(false)),
      onDatasetsMerged: (_ds: Acjs, _names: string[], cb: (go: boolean) => void) => cb(false),
    };
    if (how === 'plain') dataset.synchronize(callbacks);
    else synchronizeDroppingDeleted(manager, dataset, callbacks);
  });
}
/** A device: its own local storage, the identity's credentials (AWS.config). */
async function device(name: string): Promise<{ manager: Acjs; dataset: Acjs }> {
  const storage = new MemoryStorage();
  class Store extends (AWS as Acjs).CognitoSyncManager.StoreLocalStorage {
    constructor() {
      super();
      this.store = storage;
    }
  }
  const manager = new (AWS as Acjs).CognitoSyncManager({ DataStore: Store });
  return { manager, dataset: await call('openOrCreateDataset', (cb) => manager.openOrCreateDataset(name, cb)) };
}
const getAll = (dataset: Acjs) => call<Record<string, string>>('getAll', (cb) => dataset.getAll(cb));
const put = (dataset: Acjs, key: string, value: string) => call('put', (cb) => dataset.put(key, value, cb));

let server: ServerProcess;
let dataDir: string;
let poolId: string;
let identityId: string;
before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'acjs-deleted-'));
  server = await startServer({ dataDir, args: ['--port', PORT] });
  poolId = await createPool(server);
  identityId = await signInAnonymously(server.endpoint, poolId);
});
after(async () => {
  AWS.config.credentials = null;
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('another device deletes the dataset: plain sync is cancelled every time; the workaround drops and pulls', async () => {
  const a = await device('deleted'), b = await device('deleted');
  await put(a.dataset, 'theme', 'dark');
  assert.deepEqual(await sync(a.manager, a.dataset), ['onSuccess']);
  assert.deepEqual(await sync(b.manager, b.dataset), ['onSuccess']);
  await syncClient(server.endpoint).send(new DeleteDatasetCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'deleted' }));
  assert.deepEqual(await sync(b.manager, b.dataset), ['onSuccess']); // b drops its copy (the workaround) ...
  assert.deepEqual(await getAll(b.dataset), {});
  await put(b.dataset, 'fresh', 'yes'); // ... and re-creates the dataset with a new key
  assert.deepEqual(await sync(b.manager, b.dataset), ['onSuccess']);

  const cancelled = ['onDatasetDeleted(deleted)', 'onFailure: Cancelled due to .onDatasetDeleted result.'];
  assert.deepEqual(await sync(a.manager, a.dataset, 'plain'), cancelled);
  assert.deepEqual(await sync(a.manager, a.dataset, 'plain'), cancelled);
  await put(a.dataset, 'offline', 'edit'); // dropped along with the local copy
  assert.deepEqual(await sync(a.manager, a.dataset), ['onSuccess']);
  assert.deepEqual(await getAll(a.dataset), { fresh: 'yes' });
  assert.deepEqual(await serverValues(server, poolId, identityId, 'deleted'), { fresh: 'yes' });
  assert.deepEqual(await sync(a.manager, a.dataset), ['onSuccess']);
});

test('a restore marked with mark-restored: devices that synced after the backup drop and pull, the others carry on', async () => {
  const a = await device('settings'), c = await device('settings');
  await put(a.dataset, 'theme', 'dark');
  await put(a.dataset, 'lang', 'fr');
  assert.deepEqual(await sync(a.manager, a.dataset), ['onSuccess']);
  assert.deepEqual(await sync(c.manager, c.dataset), ['onSuccess']);

  await server.stop(); // the backup: a copy of the file while the server is stopped
  copyFileSync(join(dataDir, 'cognisync.db'), join(dataDir, 'backup.db'));
  server = await startServer({ dataDir, args: ['--port', PORT] });
  await put(a.dataset, 'theme', 'light'); // lost with the restore
  assert.deepEqual(await sync(a.manager, a.dataset), ['onSuccess']);
  await put(c.dataset, 'lang', 'it'); // c: offline edit, last synced before the backup

  await server.stop(); // the restore
  copyFileSync(join(dataDir, 'backup.db'), join(dataDir, 'cognisync.db'));
  rmSync(join(dataDir, 'cognisync.db-wal'), { force: true });
  rmSync(join(dataDir, 'cognisync.db-shm'), { force: true });
  execFileSync(process.execPath, [bin, 'mark-restored', '--data-dir', dataDir]);
  server = await startServer({ dataDir, args: ['--port', PORT] });

  assert.deepEqual(await sync(c.manager, c.dataset, 'plain'), ['onSuccess']); // not disturbed, its edit goes up
  assert.deepEqual(await sync(a.manager, a.dataset, 'plain'), ['onDatasetDeleted(settings)', 'onFailure: Cancelled due to .onDatasetDeleted result.']);
  assert.deepEqual(await sync(a.manager, a.dataset), ['onSuccess']);
  const expected = { lang: 'it', theme: 'dark' };
  assert.deepEqual(await serverValues(server, poolId, identityId, 'settings'), expected);
  assert.deepEqual(await getAll(a.dataset), expected);
  assert.deepEqual(await getAll(c.dataset), expected);

  await put(a.dataset, 'theme', 'blue'); // and both carry on
  assert.deepEqual(await sync(a.manager, a.dataset), ['onSuccess']);
  assert.deepEqual(await sync(c.manager, c.dataset), ['onSuccess']);
  assert.deepEqual(await getAll(c.dataset), { lang: 'it', theme: 'blue' });
});
