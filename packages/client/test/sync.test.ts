// Devices against the real server: offline edits, sync, conflicts resolved each way, deletion and merge hooks,
// bounded retries on 409, and lastSyncCount never skipping another device's change.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetOpenIdTokenForDeveloperIdentityCommand, MergeDeveloperIdentitiesCommand } from '@aws-sdk/client-cognito-identity';
import { DeleteDatasetCommand } from '@aws-sdk/client-cognito-sync';
import type { SyncConflict } from '../src/conflicts.ts';
import { ServiceError, SyncCancelledError, SyncRetriesExhaustedError, ValidationError } from '../src/errors.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { SyncManager } from '../src/sync-manager.ts';
import { createPool, developerCredentials, developerWrite, device, identityClient, serverValues, spyFetch, startServer, syncClient, type ServerProcess } from './support.ts';

let server: ServerProcess;
let poolId: string;

before(async () => {
  server = await startServer();
  poolId = await createPool(server);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

/** Two devices of one new anonymous identity: A gets it with GetId, B is given its id. */
async function twoDevices() {
  const a = device(server, poolId);
  const identityId = await a.identityId();
  const b = device(server, poolId, { identityId });
  return { a, b, identityId };
}

/** A spied fetch that lets another writer act once, just before this device's first UpdateRecords goes out. */
function writeBeforeFirstPush(write: () => Promise<void>) {
  let written = false;
  return spyFetch({
    async before(operation) {
      if (operation === 'UpdateRecords' && !written) {
        written = true;
        await write();
      }
    },
  });
}

describe('two devices of one identity', () => {
  test('edits made offline on both devices sync and converge', async () => {
    const { a, b, identityId } = await twoDevices();
    const da = await a.openOrCreateDataset('settings');
    const db = await b.openOrCreateDataset('settings');
    await da.put('theme', 'dark');
    await da.put('lang', 'fr');
    await db.put('volume', '7');
    await db.put('empty', '');

    const first = await da.synchronize();
    assert.deepEqual([first.pushed, first.pulled, first.conflicts, first.lastSyncCount], [2, 0, 0, 1]);
    const second = await db.synchronize();
    assert.deepEqual([second.pushed, second.pulled, second.conflicts, second.lastSyncCount], [2, 2, 0, 2]);
    assert.deepEqual(second.changedKeys, ['lang', 'theme']);
    const third = await da.synchronize();
    assert.deepEqual([third.pushed, third.pulled, third.lastSyncCount], [0, 2, 2]);

    const expected = { empty: '', lang: 'fr', theme: 'dark', volume: '7' };
    assert.deepEqual(await da.getAll(), expected);
    assert.deepEqual(await db.getAll(), expected);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'settings'), expected, "'' is a value on the server, not a removal");
    assert.equal(await da.size(), 4);
    assert.equal(await da.hasPendingChanges(), false);
    assert.equal((await da.getRecord('volume'))?.syncCount, 2);
  });

  test('a removal travels as a tombstone and the key disappears on the other device', async () => {
    const { a, b, identityId } = await twoDevices();
    const da = await a.openOrCreateDataset('prefs');
    await da.putAll({ x: '1', y: '2' });
    await da.synchronize();
    const db = await b.openOrCreateDataset('prefs');
    await db.synchronize();
    await db.remove('x');
    assert.equal(await db.get('x'), undefined);
    assert.deepEqual((await db.getRecord('x'))?.value, null, 'kept locally as a tombstone until pushed');
    await db.synchronize();
    const pulled = await da.synchronize();
    assert.deepEqual(pulled.changedKeys, ['x']);
    assert.deepEqual(await da.getAll(), { y: '2' });
    assert.deepEqual(await serverValues(server, poolId, identityId, 'prefs'), { y: '2' });
  });

  test('a key created and removed before any sync never reaches the server', async () => {
    const { a } = await twoDevices();
    const { calls, fetch } = spyFetch();
    const manager = new SyncManager({ identityPoolId: poolId, endpoint: server.endpoint, store: new MemoryStore(), identityId: await a.identityId(), fetch });
    const ds = await manager.openOrCreateDataset('scratch');
    await ds.put('temp', 'x');
    await ds.remove('temp');
    const summary = await ds.synchronize();
    assert.equal(summary.pushed, 0);
    assert.deepEqual(calls, ['GetCredentialsForIdentity', 'ListRecords'], 'no UpdateRecords for nothing');
    assert.equal(await ds.getRecord('temp'), undefined);
  });

  for (const [resolution, expected] of [
    ['remote', 'green'],
    ['local', 'blue'],
    ['value', 'blue+green'],
  ] as const) {
    test(`a key changed on both devices goes to onConflict; resolved with the ${resolution} value, both converge`, async () => {
      const { a, b, identityId } = await twoDevices();
      const da = await a.openOrCreateDataset('colors');
      const db = await b.openOrCreateDataset('colors');
      await da.put('color', 'red');
      await da.synchronize();
      await db.synchronize();
      // Both go offline and edit the same key; A syncs first.
      await da.put('color', 'green');
      await db.put('color', 'blue');
      await db.put('size', 'L');
      await da.synchronize();

      const seen: Array<{ key: string; local: string | null; remote: string | null }> = [];
      const summary = await db.synchronize({
        onConflict(conflicts) {
          for (const c of conflicts) seen.push({ key: c.key, local: c.localValue, remote: c.remoteValue });
          return conflicts.map((c) =>
            resolution === 'remote' ? c.resolveWithRemote() : resolution === 'local' ? c.resolveWithLocal() : c.resolveWithValue(`${c.localValue}+${c.remoteValue}`),
          );
        },
      });
      assert.deepEqual(seen, [{ key: 'color', local: 'blue', remote: 'green' }]);
      assert.equal(summary.conflicts, 1);
      await da.synchronize();
      const values = { color: expected, size: 'L' };
      assert.deepEqual(await da.getAll(), values);
      assert.deepEqual(await db.getAll(), values);
      assert.deepEqual(await serverValues(server, poolId, identityId, 'colors'), values);
    });
  }

  test('without onConflict the remote value wins; onConflict returning false stops the sync and keeps the local change', async () => {
    const { a, b } = await twoDevices();
    const da = await a.openOrCreateDataset('d');
    const db = await b.openOrCreateDataset('d');
    await da.put('k', 'from-a');
    await db.put('k', 'from-b');
    await da.synchronize();
    await assert.rejects(db.synchronize({ onConflict: () => false }), SyncCancelledError);
    assert.equal(await db.get('k'), 'from-b', 'cancelled: the local value is untouched');
    assert.equal((await db.getRecord('k'))?.modified, true);
    const summary = await db.synchronize();
    assert.equal(summary.conflicts, 1);
    assert.equal(await db.get('k'), 'from-a');
    assert.equal(await db.hasPendingChanges(), false);
  });

  test('a removal on one side against an edit on the other is a conflict too (null is the removed side)', async () => {
    const { a, b } = await twoDevices();
    const da = await a.openOrCreateDataset('d');
    const db = await b.openOrCreateDataset('d');
    await da.put('k', 'v1');
    await da.synchronize();
    await db.synchronize();
    await da.remove('k');
    await db.put('k', 'v2');
    await da.synchronize();
    let remote: string | null | undefined;
    await db.synchronize({ onConflict: (cs) => cs.map((c) => ((remote = c.remoteValue), c.resolveWithLocal())) });
    assert.equal(remote, null);
    await da.synchronize();
    assert.equal(await da.get('k'), 'v2');
  });

  test('force: true pulls everything again and repairs a local copy that lost records', async () => {
    const { a, identityId } = await twoDevices();
    const store = new MemoryStore();
    const ds = await device(server, poolId, { identityId, store }).openOrCreateDataset('full');
    await ds.putAll({ a: '1', b: '2' });
    await ds.synchronize();
    // Simulate a damaged local copy: records gone but lastSyncCount kept.
    await store.commit({ datasets: [{ identityId, datasetName: 'full', purge: true }] });
    assert.deepEqual(await ds.getAll(), {});
    assert.equal((await ds.synchronize()).pulled, 0, 'an incremental sync has nothing new');
    const forced = await ds.synchronize({ force: true });
    assert.equal(forced.pulled, 2);
    assert.deepEqual(await ds.getAll(), { a: '1', b: '2' });
    void a;
  });
});

describe('retries and lastSyncCount', () => {
  test('a 409 caused by a concurrent writer is retried after a fresh pull and succeeds; attempts are reported', async () => {
    const { a, identityId } = await twoDevices();
    const { fetch, calls } = writeBeforeFirstPush(() => developerWrite(server, poolId, identityId, 'race', 'k', 'other-device'));
    const manager = device(server, poolId, { identityId, fetch });
    const ds = await manager.openOrCreateDataset('race');
    await ds.put('k', 'mine');
    const summary = await ds.synchronize({ onConflict: (cs) => cs.map((c) => c.resolveWithLocal()) });
    assert.equal(summary.attempts, 2);
    assert.equal(summary.conflicts, 1);
    assert.deepEqual(calls.filter((c) => c !== 'GetCredentialsForIdentity'), ['ListRecords', 'UpdateRecords', 'ListRecords', 'UpdateRecords']);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'race'), { k: 'mine' });
    void a;
  });

  test('retries are bounded: a server that always answers 409 ends in SyncRetriesExhaustedError and nothing is lost', async () => {
    const { identityId } = await twoDevices();
    const { fetch, calls } = spyFetch({
      instead(operation) {
        if (operation !== 'UpdateRecords') return undefined;
        return new Response(JSON.stringify({ __type: 'ResourceConflictException', message: 'Current SyncCount for: k is: 9 not: 0' }), {
          status: 409,
          headers: { 'x-amzn-ErrorType': 'ResourceConflictException:http://internal.amazon.com/coral/com.amazonaws.cognito.sync.model/' },
        });
      },
    });
    const manager = device(server, poolId, { identityId, fetch, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
    const ds = await manager.openOrCreateDataset('stuck');
    await ds.put('k', 'keep me');
    const error = await ds.synchronize().then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof SyncRetriesExhaustedError, String(error));
    assert.ok((error as Error).cause instanceof ServiceError && ((error as Error).cause as ServiceError).name === 'ResourceConflictException');
    assert.equal(calls.filter((c) => c === 'UpdateRecords').length, 3);
    assert.equal(await ds.get('k'), 'keep me');
    assert.equal(await ds.hasPendingChanges(), true);
  });

  test('a throttled pull (429 TooManyRequestsException) is retried after a pause', async () => {
    const { identityId } = await twoDevices();
    const { fetch, calls } = spyFetch({
      instead: (operation, n) =>
        operation === 'ListRecords' && n === 1
          ? new Response(JSON.stringify({ __type: 'TooManyRequestsException', message: 'Rate exceeded' }), { status: 429, headers: { 'x-amzn-ErrorType': 'TooManyRequestsException' } })
          : undefined,
    });
    const ds = await device(server, poolId, { identityId, fetch }).openOrCreateDataset('throttled');
    await ds.put('k', 'v');
    const summary = await ds.synchronize();
    assert.deepEqual([summary.attempts, summary.pushed], [2, 1]);
    assert.deepEqual(calls.filter((c) => c !== 'GetCredentialsForIdentity'), ['ListRecords', 'ListRecords', 'UpdateRecords']);
  });

  test('a push that lands after another device’s write does not fast-forward past it (the amazon-cognito-js skip)', async () => {
    const { a, identityId } = await twoDevices();
    const da = await a.openOrCreateDataset('gap');
    await da.put('seed', '0');
    await da.synchronize();
    // Between this device's pull and its push, another device writes a different key.
    const { fetch, calls } = writeBeforeFirstPush(() => developerWrite(server, poolId, identityId, 'gap', 'theirs', 'from-elsewhere'));
    const b = device(server, poolId, { identityId, fetch });
    const db = await b.openOrCreateDataset('gap');
    await db.synchronize();
    await db.put('mine', '1');
    const summary = await db.synchronize();
    assert.equal(summary.pushed, 1);
    assert.deepEqual(calls.filter((c) => c !== 'GetCredentialsForIdentity'), ['ListRecords', 'ListRecords', 'UpdateRecords', 'ListRecords']);
    assert.deepEqual(await db.getAll(), { mine: '1', seed: '0', theirs: 'from-elsewhere' }, 'the other device’s write was pulled, not skipped');
    assert.equal(summary.lastSyncCount, 3, 'seed 1, theirs 2, mine 3');
  });
});

describe('deletion and merges', () => {
  test('delete() removes the dataset on the server at the next sync; the other device’s onDatasetDeleted fires', async () => {
    const { a, b, identityId } = await twoDevices();
    const da = await a.openOrCreateDataset('doomed');
    await da.putAll({ a: '1', b: '2' });
    await da.synchronize();
    const db = await b.openOrCreateDataset('doomed');
    await db.synchronize();

    await da.delete();
    assert.deepEqual(await da.getAll(), {});
    await assert.rejects(da.put('a', 'again'), (e: unknown) => e instanceof ValidationError && e.code === 'DatasetDeleted');
    const deleted = await da.synchronize();
    assert.equal(deleted.datasetDeleted, true);
    assert.equal(await a.store.getDataset(identityId, 'doomed'), undefined, 'gone locally after the sync');
    assert.deepEqual(await serverValues(server, poolId, identityId, 'doomed'), {});
    await da.synchronize();
    assert.equal(await a.store.getDataset(identityId, 'doomed'), undefined, 'another sync of the old handle does not bring it back');

    const hook: string[] = [];
    const summary = await db.synchronize({ onDatasetDeleted: (name) => (hook.push(name), true) });
    assert.deepEqual(hook, ['doomed']);
    assert.equal(summary.datasetDeleted, true);
    assert.deepEqual(await db.getAll(), {});
    assert.deepEqual((await b.listDatasets()).map((d) => d.datasetName), [], 'gone from the device that learned of the deletion too');
    assert.equal((await db.synchronize({ onDatasetDeleted: () => assert.fail('reported twice') })).datasetDeleted, false);
  });

  test('onDatasetDeleted answering false keeps the local data and re-creates the dataset from it', async () => {
    const { a, b, identityId } = await twoDevices();
    const da = await a.openOrCreateDataset('phoenix');
    await da.put('a', '1');
    await da.synchronize();
    const db = await b.openOrCreateDataset('phoenix');
    await db.synchronize();
    await db.put('b', 'offline edit');
    await da.delete();
    await da.synchronize();
    await db.synchronize({ onDatasetDeleted: () => false });
    assert.deepEqual(await serverValues(server, poolId, identityId, 'phoenix'), { a: '1', b: 'offline edit' });
    const again = await (await a.openOrCreateDataset('phoenix')).synchronize();
    assert.equal(again.pulled, 2);
  });

  test('after MergeDeveloperIdentities the destination’s sync reports the merged dataset; the app merges and deletes it', async () => {
    const pool = await createPool(server, { DeveloperProviderName: 'login.example' });
    const developer = identityClient(server.endpoint);
    const source = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 'phone' } }));
    const destination = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 'web' } }));
    // Developer-authenticated devices bring their own credentials (here the developer's) and identity id.
    const phone = device(server, pool, { credentials: developerCredentials, identityId: source.IdentityId! });
    const web = device(server, pool, { credentials: developerCredentials, identityId: destination.IdentityId! });
    const phoneSettings = await phone.openOrCreateDataset('settings');
    await phoneSettings.putAll({ color: 'blue', shared: 'phone' });
    await phoneSettings.synchronize();
    const webSettings = await web.openOrCreateDataset('settings');
    await webSettings.putAll({ size: 'L', shared: 'web' });
    await webSettings.synchronize();

    await developer.send(new MergeDeveloperIdentitiesCommand({ IdentityPoolId: pool, DeveloperProviderName: 'login.example', SourceUserIdentifier: 'phone', DestinationUserIdentifier: 'web' }));

    const mergedName = `settings.${source.IdentityId}`;
    const reported: string[][] = [];
    const summary = await webSettings.synchronize({
      async onDatasetsMerged(names) {
        reported.push(names);
        for (const name of names) {
          const merged = await web.openOrCreateDataset(name);
          await merged.synchronize();
          for (const [key, value] of Object.entries(await merged.getAll())) if ((await webSettings.get(key)) === undefined) await webSettings.put(key, value);
          await merged.delete();
          await merged.synchronize();
        }
        return true;
      },
    });
    assert.deepEqual(reported, [[mergedName]]);
    assert.deepEqual(summary.mergedDatasetNames, [mergedName]);
    assert.deepEqual(await webSettings.getAll(), { color: 'blue', shared: 'web', size: 'L' });
    assert.deepEqual(await serverValues(server, pool, destination.IdentityId!, 'settings'), { color: 'blue', shared: 'web', size: 'L' });
    const next = await webSettings.synchronize({ onDatasetsMerged: () => assert.fail('the merged dataset was deleted') });
    assert.deepEqual(next.mergedDatasetNames, []);
  });

  test('a merged dataset can be opened, copied and deleted when the destination already has 20 datasets', async () => {
    const pool = await createPool(server, { DeveloperProviderName: 'login.example' });
    const developer = identityClient(server.endpoint);
    const source = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 'old' } }));
    const destination = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 'new' } }));
    const old = await (device(server, pool, { credentials: developerCredentials, identityId: source.IdentityId! })).openOrCreateDataset('settings');
    await old.put('color', 'blue');
    await old.synchronize();
    const web = device(server, pool, { credentials: developerCredentials, identityId: destination.IdentityId! });
    const settings = await web.openOrCreateDataset('settings');
    await settings.put('size', 'L');
    await settings.synchronize();
    for (let i = 1; i < 20; i++) await web.openOrCreateDataset(`other${i}`);
    await assert.rejects(web.openOrCreateDataset('one-too-many'), { name: 'ValidationError', code: 'TooManyDatasets' });
    await developer.send(new MergeDeveloperIdentitiesCommand({ IdentityPoolId: pool, DeveloperProviderName: 'login.example', SourceUserIdentifier: 'old', DestinationUserIdentifier: 'new' }));

    await settings.synchronize({
      async onDatasetsMerged(names) {
        for (const name of names) {
          const merged = await web.openOrCreateDataset(name);
          await merged.synchronize();
          for (const [key, value] of Object.entries(await merged.getAll())) await settings.put(key, value);
          await merged.delete();
          await merged.synchronize();
        }
        return true;
      },
    });
    assert.deepEqual(await serverValues(server, pool, destination.IdentityId!, 'settings'), { color: 'blue', size: 'L' });
    assert.deepEqual((await settings.synchronize()).mergedDatasetNames, []);
  });

  test('onDatasetsMerged answering false stops the sync with SyncCancelledError', async () => {
    const pool = await createPool(server, { DeveloperProviderName: 'login.example' });
    const developer = identityClient(server.endpoint);
    const source = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 's' } }));
    const destination = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 'd' } }));
    const phone = device(server, pool, { credentials: developerCredentials, identityId: source.IdentityId! });
    const ds = await phone.openOrCreateDataset('settings');
    await ds.put('k', 'v');
    await ds.synchronize();
    await developer.send(new MergeDeveloperIdentitiesCommand({ IdentityPoolId: pool, DeveloperProviderName: 'login.example', SourceUserIdentifier: 's', DestinationUserIdentifier: 'd' }));
    const web = device(server, pool, { credentials: developerCredentials, identityId: destination.IdentityId! });
    const webDs = await web.openOrCreateDataset('settings');
    await webDs.put('mine', 'x');
    await assert.rejects(webDs.synchronize({ onDatasetsMerged: () => false }), SyncCancelledError);
    assert.equal((await webDs.getRecord('mine'))?.modified, true, 'nothing was pushed');
  });
});

describe('a dataset a pull took over the limit', () => {
  test('can still shrink: removes are allowed, and once under the limit it syncs', async () => {
    // Only B has the small limit; A (and the server) take more.
    const a = device(server, poolId);
    const identityId = await a.identityId();
    const b = device(server, poolId, { identityId, limits: { maxRecordsPerDataset: 4 } });
    const da = await a.openOrCreateDataset('full');
    await da.putAll({ r1: '1', r2: '2', r3: '3' });
    await da.synchronize();
    const db = await b.openOrCreateDataset('full');
    await db.synchronize();
    await da.putAll({ fromA: 'a', alsoA: 'a' });
    await da.synchronize();
    await db.put('fromB', 'b');
    // B's pull brings A's two records: six here, two over the limit, so B's push is refused before it is sent.
    await assert.rejects(db.synchronize(), { name: 'ValidationError', code: 'TooManyRecords', message: /remove records/ });
    assert.equal(await db.size(), 6);
    await assert.rejects(db.put('more', 'x'), { name: 'ValidationError', code: 'TooManyRecords' }, 'growing is still refused');
    await db.remove('r1');
    await db.put('r3', 'changed');
    await db.remove('alsoA');
    await db.synchronize();
    assert.deepEqual(await serverValues(server, poolId, identityId, 'full'), { fromA: 'a', fromB: 'b', r2: '2', r3: 'changed' });
  });
});

describe('deletion racing a sync', () => {
  test('a dataset deleted between this sync\'s pull and its push of new keys is reported, and both sides converge', async () => {
    const { a, identityId } = await twoDevices();
    const seed = await a.openOrCreateDataset('race-delete');
    await seed.put('old', '1');
    await seed.synchronize();
    const { fetch } = writeBeforeFirstPush(async () => {
      await syncClient(server.endpoint).send(new DeleteDatasetCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'race-delete' }));
    });
    const ds = await device(server, poolId, { identityId, fetch }).openOrCreateDataset('race-delete');
    await ds.synchronize();
    await ds.put('fresh', 'new');
    const reported: string[] = [];
    // The push's SyncSessionToken is from before the deletion: the server refuses it (409), the pull that follows
    // shows the deletion, and dropping the local copy (onDatasetDeleted: true) leaves nothing on either side.
    await ds.synchronize({ onDatasetDeleted: (name) => (reported.push(name), true) });
    assert.deepEqual(reported, ['race-delete']);
    assert.deepEqual(await ds.getAll(), await serverValues(server, poolId, identityId, 'race-delete'));
    assert.deepEqual(await ds.getAll(), {});
  });
});

describe('paging', () => {
  test('a pull spans every ListRecords page, and a write landing between pages is neither lost nor skipped', async () => {
    const paged = await startServer({ env: { COGNISYNC_LIMIT_LIST_RECORDS_MAX_PAGE: '3', COGNISYNC_LIMIT_LIST_RECORDS_DEFAULT_PAGE: '3' } });
    try {
      const pool = await createPool(paged);
      const writer = device(paged, pool);
      const identityId = await writer.identityId();
      const source = await writer.openOrCreateDataset('big');
      await source.putAll(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${String(i).padStart(2, '0')}`, `v${i}`])));
      await source.synchronize();
      await source.put('k05', 'v5-second');
      await source.synchronize();

      let injected = false;
      const { fetch, calls } = spyFetch({
        async before(operation, n) {
          // Another device changes an already-paged key and adds one while this device is between pages.
          if (operation === 'ListRecords' && n === 3 && !injected) {
            injected = true;
            await developerWrite(paged, pool, identityId, 'big', 'k00', 'changed-mid-pull');
            await developerWrite(paged, pool, identityId, 'big', 'zz', 'added-mid-pull');
          }
        },
      });
      const reader = await device(paged, pool, { identityId, fetch }).openOrCreateDataset('big');
      const summary = await reader.synchronize();
      assert.ok(calls.filter((c) => c === 'ListRecords').length >= 4, `paged: ${calls.join(',')}`);
      const expected = await serverValues(paged, pool, identityId, 'big');
      assert.equal(expected.k00, 'changed-mid-pull');
      assert.equal(expected.zz, 'added-mid-pull');
      assert.deepEqual(await reader.getAll(), expected);
      assert.equal(summary.lastSyncCount, 4, 'two pushes, then two writes during the pull');
      assert.equal((await reader.synchronize()).pulled, 0, 'nothing was skipped, so nothing is left');
    } finally {
      assert.equal(await paged.stop(), 0);
    }
  });
});


describe('round trips', () => {
  test('a first sync is one ListRecords; a change to a synced key is one UpdateRecords (push first); a new key is ListRecords + UpdateRecords; pulling one is one ListRecords', async () => {
    const { a, b, identityId } = await twoDevices();
    const seed = await a.openOrCreateDataset('trips');
    await seed.putAll(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, `v${i}`])));
    await seed.synchronize();

    const { calls, fetch } = spyFetch();
    const manager = new SyncManager({ identityPoolId: poolId, endpoint: server.endpoint, store: new MemoryStore(), identityId, fetch });
    await manager.credentials();
    const ds = await manager.openOrCreateDataset('trips');
    const trips = async (run: () => Promise<unknown>) => {
      calls.length = 0;
      await run();
      return [...calls];
    };
    assert.deepEqual(await trips(() => ds.synchronize()), ['ListRecords']);
    assert.equal(await ds.size(), 50);
    assert.deepEqual(await trips(async () => assert.equal((await ds.synchronize({})).pulled, 0)), ['ListRecords'], 'nothing to do');
    await ds.put('k1', 'changed here');
    assert.deepEqual(await trips(async () => assert.equal((await ds.synchronize()).pushed, 1)), ['UpdateRecords'], 'pushed first, no pull and no re-read after the push');
    await ds.put('new', 'key');
    assert.deepEqual(await trips(async () => assert.equal((await ds.synchronize()).pushed, 1)), ['ListRecords', 'UpdateRecords'], 'only new keys: pulled first');
    const other = await b.openOrCreateDataset('trips');
    await other.synchronize();
    await other.put('k2', 'changed there');
    await other.synchronize();
    assert.deepEqual(await trips(async () => assert.equal((await ds.synchronize()).pulled, 1)), ['ListRecords']);
    assert.equal(await ds.get('k2'), 'changed there');
  });

  test('in Node, without `fetch` the API calls go over node:http; with `fetch` every call uses it', async () => {
    const original = globalThis.fetch;
    let fetched = 0;
    globalThis.fetch = (input, init) => {
      fetched++;
      return original(input, init);
    };
    try {
      const ds = await device(server, poolId).openOrCreateDataset('transport');
      await ds.put('k', 'v');
      assert.equal((await ds.synchronize()).pushed, 1);
      assert.equal(fetched, 0, 'GetId, GetCredentialsForIdentity, ListRecords and UpdateRecords went over node:http');
      const viaFetch = await device(server, poolId, { fetch: globalThis.fetch }).openOrCreateDataset('transport');
      await viaFetch.put('k', 'v');
      await viaFetch.synchronize();
      assert.equal(fetched, 4, 'GetId, GetCredentialsForIdentity, ListRecords, UpdateRecords');
    } finally {
      globalThis.fetch = original;
    }
  });
});

describe('push first (a change to a synced key, within 5 min of this manager\'s last pull)', () => {
  /** Device A (spied) and device B of one identity, both holding `keys` as synced records of `name`. */
  async function syncedPair(name: string, keys: Record<string, string>, options: { now?: () => number; pushFirstWithinMs?: number } = {}) {
    const { a: seeder, identityId } = await twoDevices();
    const seed = await seeder.openOrCreateDataset(name);
    await seed.putAll(keys);
    await seed.synchronize();
    const spy = spyFetch();
    const a = device(server, poolId, { identityId, fetch: spy.fetch, ...options });
    const da = await a.openOrCreateDataset(name);
    await da.synchronize();
    const b = device(server, poolId, { identityId });
    const db = await b.openOrCreateDataset(name);
    await db.synchronize();
    const trips = async (run: () => Promise<unknown>) => {
      spy.calls.length = 0;
      await run();
      return spy.calls.filter((c) => c !== 'GetCredentialsForIdentity');
    };
    return { identityId, da, db, trips };
  }

  test('another device changed the same key: the 409 leads to the pull it skipped, onConflict, and a push; one attempt', async () => {
    const { identityId, da, db, trips } = await syncedPair('pf-conflict', { k: 'base', other: 'x' });
    await db.put('k', 'theirs');
    await db.synchronize();
    await da.put('k', 'mine');
    const seen: string[] = [];
    let summary: Awaited<ReturnType<typeof da.synchronize>> | undefined;
    const calls = await trips(async () => {
      summary = await da.synchronize({ onConflict: (cs) => cs.map((c) => (seen.push(`${c.localValue}/${c.remoteValue}`), c.resolveWithLocal())) });
    });
    assert.deepEqual(calls, ['UpdateRecords', 'ListRecords', 'UpdateRecords']);
    assert.deepEqual(seen, ['mine/theirs']);
    assert.deepEqual([summary!.attempts, summary!.conflicts, summary!.pushed], [1, 1, 1]);
    await db.synchronize();
    const values = { k: 'mine', other: 'x' };
    assert.deepEqual(await serverValues(server, poolId, identityId, 'pf-conflict'), values);
    assert.deepEqual(await da.getAll(), values);
    assert.deepEqual(await db.getAll(), values);
  });

  test('another device wrote a different key since the pull: the push lands at S > last + 1, so the sync pulls that write too', async () => {
    const { identityId, da, trips } = await syncedPair('pf-gap', { k: '1' });
    await developerWrite(server, poolId, identityId, 'pf-gap', 'theirs', 'elsewhere');
    await da.put('k', '2');
    let summary: Awaited<ReturnType<typeof da.synchronize>> | undefined;
    assert.deepEqual(await trips(async () => (summary = await da.synchronize())), ['UpdateRecords', 'ListRecords']);
    assert.deepEqual([summary!.pushed, summary!.pulled, summary!.lastSyncCount], [1, 1, 3]);
    assert.deepEqual(summary!.changedKeys, ['theirs']);
    assert.deepEqual(await da.getAll(), { k: '2', theirs: 'elsewhere' });
  });

  for (const keep of [true, false]) {
    for (const edit of [true, false]) {
      test(`a dataset deleted elsewhere is reported, not re-created behind the hook's back (${edit ? 'an edit and a new key' : 'only a new key'}; onDatasetDeleted → ${!keep})`, async () => {
        const name = `pf-deleted-${keep}-${edit}`;
        const { identityId, da, db, trips } = await syncedPair(name, { k: 'v', j: 'w' });
        await db.delete();
        await db.synchronize();
        // An edit's patch is refused: its record went with the dataset. Only new keys would be accepted and re-create
        // it, so they are never pushed first (on a server whose deletion kept the count, that would hide the deletion).
        if (edit) await da.put('k', 'edited');
        await da.put('fresh', 'new');
        const reported: string[] = [];
        const calls = await trips(() => da.synchronize({ onDatasetDeleted: (deleted) => (reported.push(deleted), !keep) }));
        assert.deepEqual(reported, [name]);
        assert.deepEqual(calls.slice(0, 2), edit ? ['UpdateRecords', 'ListRecords'] : ['ListRecords', 'ListRecords'], 'the deletion is seen by a pull (and the next pull is from 0)');
        const expected = keep ? { fresh: 'new', j: 'w', k: edit ? 'edited' : 'v' } : {};
        assert.deepEqual(await da.getAll(), expected);
        assert.deepEqual(await serverValues(server, poolId, identityId, name), expected);
      });
    }
  }

  test('a token the server refuses (400) is not an error: the sync pulls and pushes with a fresh one', async () => {
    const { identityId } = await twoDevices();
    let refused = 0;
    const { fetch, calls } = spyFetch({
      instead: (operation, n) =>
        operation === 'UpdateRecords' && n === 2
          ? (refused++, new Response(JSON.stringify({ __type: 'InvalidParameterException', message: 'Invalid SyncSessionToken' }), { status: 400, headers: { 'x-amzn-ErrorType': 'InvalidParameterException' } }))
          : undefined,
    });
    const ds = await device(server, poolId, { identityId, fetch }).openOrCreateDataset('pf-token');
    await ds.put('k', '1');
    await ds.synchronize();
    await ds.put('k', '2');
    calls.length = 0;
    const summary = await ds.synchronize();
    assert.equal(refused, 1);
    assert.deepEqual(calls.filter((c) => c !== 'GetCredentialsForIdentity'), ['UpdateRecords', 'ListRecords', 'UpdateRecords']);
    assert.deepEqual([summary.attempts, summary.pushed], [1, 1]);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'pf-token'), { k: '2' });
  });

  test('a token older than 5 minutes (or than pushFirstWithinMs) is not used; pushFirstWithinMs: 0 always pulls first', async () => {
    let clock = Date.now();
    const { da, trips } = await syncedPair('pf-old', { k: '1' }, { now: () => clock });
    clock += 5 * 60_000;
    await da.put('k', '2');
    assert.deepEqual(await trips(() => da.synchronize()), ['ListRecords', 'UpdateRecords']);
    await da.put('k', '3');
    assert.deepEqual(await trips(() => da.synchronize()), ['UpdateRecords'], 'the pull just made is fresh');

    const longer = await syncedPair('pf-within', { k: '1' }, { now: () => clock, pushFirstWithinMs: 3_600_000 });
    clock += 30 * 60_000;
    await longer.da.put('k', '2');
    assert.deepEqual(await longer.trips(() => longer.da.synchronize()), ['UpdateRecords'], 'within the hour asked for');
    const never = await syncedPair('pf-never', { k: '1' }, { pushFirstWithinMs: 0 });
    await never.da.put('k', '2');
    assert.deepEqual(await never.trips(() => never.da.synchronize()), ['ListRecords', 'UpdateRecords']);
  });

  test('local merged datasets (after an identity change) keep every sync pulling first, also after a sync that retried a 409', async () => {
    const identityA = `us-east-1:${crypto.randomUUID()}`;
    const identityB = `us-east-1:${crypto.randomUUID()}`;
    const store = new MemoryStore();
    // Another device writes the key between this device's pull and its push: a 409 and a second pull round.
    const { fetch, calls } = writeBeforeFirstPush(() => developerWrite(server, poolId, identityB, 'settings', 'from', 'elsewhere'));
    const m = new SyncManager({ identityPoolId: poolId, endpoint: server.endpoint, store, credentials: developerCredentials, identityId: identityA, fetch, retry: { baseDelayMs: 1, maxDelayMs: 2 } });
    const ds = await m.openOrCreateDataset('settings');
    await ds.put('from', 'A');
    // This device already holds B's copy of the dataset, so A's copy stays as settings.<A>, merged into it.
    await store.commit({ datasets: [{ identityId: identityB, datasetName: 'settings', put: [{ key: 'from', value: 'B', syncCount: 0, modified: true, deviceLastModifiedDate: 1, lastModifiedDate: 1, lastModifiedBy: '', pushing: null }] }] });
    await m.changeIdentity(identityB);
    let reports = 0;
    const options = { onDatasetsMerged: () => (reports++, true), onConflict: (cs: SyncConflict[]) => cs.map((c) => c.resolveWithLocal()) };
    assert.equal((await ds.synchronize(options)).attempts, 2);
    await ds.put('from', 'again');
    calls.length = 0;
    await ds.synchronize(options);
    assert.equal(reports, 2, 'reported by both syncs');
    assert.deepEqual(calls.filter((c) => c !== 'GetCredentialsForIdentity'), ['ListRecords', 'UpdateRecords']);
  });

  test('a dataset whose last pull reported merged datasets pulls first, so onDatasetsMerged sees them again', async () => {
    const pool = await createPool(server, { DeveloperProviderName: 'login.example' });
    const developer = identityClient(server.endpoint);
    const source = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 'pf-s' } }));
    const destination = await developer.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { 'login.example': 'pf-d' } }));
    const phone = await device(server, pool, { credentials: developerCredentials, identityId: source.IdentityId! }).openOrCreateDataset('settings');
    await phone.put('k', 'v');
    await phone.synchronize();
    await developer.send(new MergeDeveloperIdentitiesCommand({ IdentityPoolId: pool, DeveloperProviderName: 'login.example', SourceUserIdentifier: 'pf-s', DestinationUserIdentifier: 'pf-d' }));
    const { fetch, calls } = spyFetch();
    const web = await device(server, pool, { credentials: developerCredentials, identityId: destination.IdentityId!, fetch }).openOrCreateDataset('settings');
    await web.put('mine', 'x');
    let reports = 0;
    const onDatasetsMerged = () => (reports++, true);
    await web.synchronize({ onDatasetsMerged });
    await web.put('mine', 'y');
    calls.length = 0;
    await web.synchronize({ onDatasetsMerged });
    assert.equal(reports, 2);
    assert.deepEqual(calls, ['ListRecords', 'UpdateRecords']);
  });
});
