// Interop: a dataset written by amazon-cognito-js 1.1.0 (the archived browser sync manager, unmodified, with
// aws-sdk v2's CognitoIdentityCredentials) syncs into @cognisync/client and back, conflicts included.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import AWS from 'aws-sdk';
import { call, type Acjs, signInAnonymously } from '../../server/test/support/amazon-cognito-js.ts';
import { createPool, device, serverValues, startServer, type ServerProcess } from './support.ts';

/** amazon-cognito-js synchronize(); conflicts are resolved with `resolve(conflict)` (default: remote record). */
function acjsSynchronize(dataset: Acjs, resolve: (conflict: Acjs) => Acjs = (c) => c.resolveWithRemoteRecord()): Promise<string[]> {
  const events: string[] = [];
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`synchronize hung after ${events.join(' → ')}`)), 15_000);
    dataset.synchronize({
      onSuccess() {
        clearTimeout(timer);
        done([...events, 'onSuccess']);
      },
      onFailure(error: Error) {
        clearTimeout(timer);
        fail(error);
      },
      onConflict(ds: Acjs, conflicts: Acjs[], callback: (go: boolean) => void) {
        events.push(`onConflict(${conflicts.map((c) => c.getKey()).join(',')})`);
        ds.resolve(conflicts.map(resolve), () => callback(true));
      },
      onDatasetDeleted(_ds: Acjs, _name: string, callback: (go: boolean) => void) {
        callback(false);
      },
      onDatasetsMerged(_ds: Acjs, _names: string[], callback: (go: boolean) => void) {
        callback(false);
      },
    });
  });
}

let server: ServerProcess;
let poolId: string;
let identityId: string;
let acjs: Acjs;

before(async () => {
  server = await startServer();
  poolId = await createPool(server);
  identityId = await signInAnonymously(server.endpoint, poolId);
  const manager = new (AWS as any).CognitoSyncManager();
  acjs = await call('openOrCreateDataset', (cb) => manager.openOrCreateDataset('settings', cb));
});
after(async () => {
  AWS.config.credentials = null;
  assert.equal(await server.stop(), 0);
});

describe('amazon-cognito-js ⇄ @cognisync/client on one identity', () => {
  test('a dataset written by amazon-cognito-js syncs into the client and the client’s changes sync back', async () => {
    await call('put', (cb) => acjs.put('theme', 'dark', cb));
    await call('put', (cb) => acjs.put('lang', 'fr', cb));
    assert.deepEqual(await acjsSynchronize(acjs), ['onSuccess']);

    // The same identity on another device, with this library (its own GetCredentialsForIdentity).
    const client = device(server, poolId, { identityId });
    const ds = await client.openOrCreateDataset('settings');
    const pulled = await ds.synchronize();
    assert.deepEqual(pulled.changedKeys, ['lang', 'theme']);
    assert.deepEqual(await ds.getAll(), { lang: 'fr', theme: 'dark' });

    await ds.put('theme', 'light');
    await ds.remove('lang');
    await ds.put('volume', '11');
    const pushed = await ds.synchronize();
    assert.equal(pushed.pushed, 3);

    assert.deepEqual(await acjsSynchronize(acjs), ['onSuccess']);
    const values = await call<Record<string, string>>('getAll', (cb) => acjs.getAll(cb));
    assert.equal(values.theme, 'light');
    assert.equal(values.volume, '11');
    // amazon-cognito-js keeps a pulled tombstone as '' (its Record does `data.Value || ''`): removed either way.
    assert.ok(!values.lang, `lang was removed, amazon-cognito-js holds ${JSON.stringify(values.lang)}`);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'settings'), { theme: 'light', volume: '11' });
  });

  test('a conflict between the two libraries is seen by both sides and they converge', async () => {
    const client = device(server, poolId, { identityId });
    const ds = await client.openOrCreateDataset('settings');
    await ds.synchronize();

    // amazon-cognito-js changes theme and pushes; the client changed it offline too.
    await call('put', (cb) => acjs.put('theme', 'acjs-blue', cb));
    await ds.put('theme', 'client-red');
    assert.deepEqual(await acjsSynchronize(acjs), ['onSuccess']);
    const seen: string[] = [];
    await ds.synchronize({ onConflict: (cs) => cs.map((c) => (seen.push(`${c.key}:${c.localValue}/${c.remoteValue}`), c.resolveWithLocal())) });
    assert.deepEqual(seen, ['theme:client-red/acjs-blue']);

    // Now the other way round: amazon-cognito-js meets the client's write as a conflict and takes the remote.
    await call('put', (cb) => acjs.put('volume', 'acjs-3', cb));
    await ds.put('volume', 'client-5');
    await ds.synchronize();
    assert.deepEqual(await acjsSynchronize(acjs), ['onConflict(volume)', 'onSuccess']);

    const expected = { theme: 'client-red', volume: 'client-5' };
    assert.deepEqual(await serverValues(server, poolId, identityId, 'settings'), expected);
    assert.equal(await call('get', (cb) => acjs.get('theme', cb)), 'client-red');
    assert.equal(await call('get', (cb) => acjs.get('volume', cb)), 'client-5');
    await ds.synchronize();
    assert.deepEqual(await ds.getAll(), expected);
  });
});
