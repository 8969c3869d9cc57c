// Identity and credentials: GetId once (cached in the store), credentials refreshed before expiry, offline first
// use, and identity changes (anonymous → logged in keeps local data).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetOpenIdTokenForDeveloperIdentityCommand } from '@aws-sdk/client-cognito-identity';
import { NetworkError } from '../src/errors.ts';
import { unknownIdentityId } from '../src/identity.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { SyncManager, type SyncManagerOptions } from '../src/sync-manager.ts';
import { createPool, developerCredentials, developerWrite, device, identityClient, serverValues, spyFetch, startServer, type ServerProcess } from './support.ts';

let server: ServerProcess;
let poolId: string;

before(async () => {
  server = await startServer();
  poolId = await createPool(server, { DeveloperProviderName: 'login.example' });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

const openIdLogin = (token: string) => ({ 'cognito-identity.amazonaws.com': token });

/** A tab (manager `a`) on a shared store, signed in as identity `x`, with a synced dataset 'diary'. */
async function signedInTab(options: Partial<SyncManagerOptions> = {}) {
  const store = new MemoryStore();
  const a = device(server, poolId, { store, ...options });
  const diary = await a.openOrCreateDataset('diary');
  await diary.put('secret', 'user X');
  await diary.synchronize();
  return { store, a, diary, x: await a.identityId() };
}

describe('identity and credentials', () => {
  test('GetId runs once: the identity id is kept in the store for the next manager (an app restart)', async () => {
    const store = new MemoryStore();
    const first = spyFetch();
    const a = device(server, poolId, { store, fetch: first.fetch });
    const identityId = await a.identityId();
    assert.match(identityId, /^us-east-1:[0-9a-f-]{36}$/);
    assert.equal(await a.identityId(), identityId);
    assert.deepEqual(first.calls, ['GetId', 'GetCredentialsForIdentity']);

    const second = spyFetch();
    const b = device(server, poolId, { store, fetch: second.fetch });
    assert.equal(await b.identityId(), identityId);
    await (await b.openOrCreateDataset('d')).synchronize();
    assert.deepEqual(second.calls, ['GetCredentialsForIdentity', 'ListRecords']);
  });

  test('credentials are reused until five minutes before they expire, then refreshed once for concurrent callers', async () => {
    let clock = Date.now();
    const { calls, fetch } = spyFetch();
    const m = device(server, poolId, { fetch, now: () => clock });
    const first = await m.credentials();
    assert.ok(first.expiration && first.sessionToken);
    assert.equal((await m.credentials()).accessKeyId, first.accessKeyId);
    clock = first.expiration.getTime() - 6 * 60_000;
    assert.equal((await m.credentials()).accessKeyId, first.accessKeyId, 'still six minutes left');
    clock = first.expiration.getTime() - 4 * 60_000;
    const [x, y] = await Promise.all([m.credentials(), m.credentials()]);
    assert.notEqual(x.accessKeyId, first.accessKeyId);
    assert.equal(x.accessKeyId, y.accessKeyId);
    assert.deepEqual(calls, ['GetId', 'GetCredentialsForIdentity', 'GetCredentialsForIdentity']);
  });

  test('a device clock 20 minutes off still syncs: the refusal\'s Date header teaches the offset, and the request is signed again', async () => {
    const realNow = Date.now;
    for (const skew of [20 * 60_000, -20 * 60_000]) {
      const { calls, fetch } = spyFetch();
      const m = device(server, poolId, { fetch });
      await m.identityId();
      Date.now = () => realNow() + skew;
      try {
        const dataset = await m.openOrCreateDataset('clock');
        await dataset.put('k', `skew ${skew}`);
        await dataset.synchronize();
        // Signed with the learned offset from then on: one refused ListRecords, then no more refusals.
        assert.deepEqual(calls.slice(2), ['ListRecords', 'ListRecords', 'UpdateRecords'], String(skew));
      } finally {
        Date.now = realNow;
      }
      assert.equal((await serverValues(server, poolId, await m.identityId(), 'clock')).k, `skew ${skew}`);
    }
  });

  test('offline on first launch: datasets work locally, and the first online sync gets an identity and pushes them', async () => {
    const store = new MemoryStore();
    let online = false;
    const fetchWhenOnline: typeof fetch = (input, init) => (online ? fetch(input, init) : Promise.reject(new TypeError('fetch failed')));
    const m = device(server, poolId, { store, fetch: fetchWhenOnline });
    const ds = await m.openOrCreateDataset('settings');
    await ds.put('theme', 'dark');
    assert.equal(await ds.get('theme'), 'dark');
    await assert.rejects(ds.synchronize(), NetworkError);
    assert.equal(await ds.get('theme'), 'dark', 'a failed sync changes nothing');
    assert.deepEqual((await store.listDatasets(unknownIdentityId)).map((d) => d.datasetName), ['settings']);

    online = true;
    const summary = await ds.synchronize();
    assert.equal(summary.pushed, 1);
    const identityId = await m.identityId();
    assert.deepEqual(await store.listDatasets(unknownIdentityId), [], 'moved to the real identity');
    assert.deepEqual(await serverValues(server, poolId, identityId, 'settings'), { theme: 'dark' });
  });

  test('an anonymous user who logs in keeps the same identity (it is linked) and all local data', async () => {
    const m = device(server, poolId);
    const anonymous = await m.identityId();
    const ds = await m.openOrCreateDataset('settings');
    await ds.put('synced', '1');
    await ds.synchronize();
    await ds.put('unsynced', '2');
    const { Token } = await identityClient(server.endpoint).send(
      new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: anonymous, Logins: { 'login.example': 'alice' } }),
    );
    assert.equal(await m.setLogins(openIdLogin(Token!)), anonymous);
    assert.deepEqual(await ds.getAll(), { synced: '1', unsynced: '2' });
    await ds.synchronize();
    assert.deepEqual(await serverValues(server, poolId, anonymous, 'settings'), { synced: '1', unsynced: '2' });
  });

  test('logging in to an identity that already exists moves the anonymous local data to it; conflicts go to onConflict', async () => {
    // Bob already uses the app on another device: his identity has data.
    const bob = await identityClient(server.endpoint).send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'bob' } }));
    await developerWrite(server, poolId, bob.IdentityId!, 'settings', 'theme', 'light');
    await developerWrite(server, poolId, bob.IdentityId!, 'settings', 'lang', 'en');

    const changes: unknown[] = [];
    const m = device(server, poolId, { onIdentityChanged: (change) => void changes.push(change) });
    const anonymous = await m.identityId();
    const ds = await m.openOrCreateDataset('settings');
    await ds.putAll({ theme: 'dark', draft: 'hello' });
    await ds.synchronize();
    const other = await m.openOrCreateDataset('other');
    await other.put('x', 'y');

    const { Token } = await identityClient(server.endpoint).send(
      new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'bob' } }),
    );
    assert.equal(await m.setLogins(openIdLogin(Token!)), bob.IdentityId);
    assert.equal(await m.identityId(), bob.IdentityId);
    assert.deepEqual(changes, [{ previousIdentityId: anonymous, identityId: bob.IdentityId, datasets: ['other', 'settings'] }]);
    assert.deepEqual(await ds.getAll(), { draft: 'hello', theme: 'dark' }, 'local data came along');

    const conflicts: string[] = [];
    await ds.synchronize({ onConflict: (cs) => cs.map((c) => (conflicts.push(`${c.key}:${c.localValue}/${c.remoteValue}`), c.resolveWithLocal())) });
    assert.deepEqual(conflicts, ['theme:dark/light']);
    assert.deepEqual(await ds.getAll(), { draft: 'hello', lang: 'en', theme: 'dark' });
    assert.deepEqual(await serverValues(server, poolId, bob.IdentityId!, 'settings'), { draft: 'hello', lang: 'en', theme: 'dark' });
    await other.synchronize();
    assert.deepEqual(await serverValues(server, poolId, bob.IdentityId!, 'other'), { x: 'y' });
  });

  test('two managers (tabs, processes) on one new store ask at once: one identity, and the data both wrote offline is on it', async () => {
    const store = new MemoryStore();
    const a = device(server, poolId, { store });
    const b = device(server, poolId, { store });
    await (await a.openOrCreateDataset('shared')).put('fromA', '1');
    await (await b.openOrCreateDataset('other')).put('fromB', '2');
    const spied = spyFetch();
    const c = device(server, poolId, { store, fetch: spied.fetch });
    const [ia, ib, ic] = await Promise.all([a.identityId(), b.identityId(), c.identityId()]);
    assert.equal(ib, ia);
    assert.equal(ic, ia);
    assert.equal(spied.calls.filter((call) => call === 'GetId').length <= 1, true);
    await (await a.openOrCreateDataset('shared')).synchronize();
    await (await b.openOrCreateDataset('other')).synchronize();
    assert.deepEqual(await serverValues(server, poolId, ia, 'shared'), { fromA: '1' });
    assert.deepEqual(await serverValues(server, poolId, ia, 'other'), { fromB: '2' });
  });

  test('a put() that read the placeholder identity before the first sync stored the real one still lands on the real one', async () => {
    const store = new MemoryStore();
    const m = device(server, poolId, { store });
    const ds = await m.openOrCreateDataset('settings');
    await ds.put('before', '1');
    // This put reads its identity (the placeholder), then waits until the sync has stored the real one (and moved
    // the offline data) before it commits.
    const getRecords = store.getRecords.bind(store);
    store.getRecords = async (identityId, datasetName, keys) => {
      if (identityId === unknownIdentityId && keys.includes('typed-meanwhile')) {
        while (!(await store.getSetting(`identityId:${poolId}`))) await new Promise((r) => setTimeout(r, 5));
      }
      return getRecords(identityId, datasetName, keys);
    };
    const typed = ds.put('typed-meanwhile', 'precious');
    await ds.synchronize();
    await typed;
    assert.deepEqual(await ds.getAll(), { before: '1', 'typed-meanwhile': 'precious' });
    assert.deepEqual(await store.listDatasets(unknownIdentityId), [], 'nothing left under the placeholder');
    await ds.synchronize();
    assert.deepEqual(await serverValues(server, poolId, await m.identityId(), 'settings'), { before: '1', 'typed-meanwhile': 'precious' });
  });

  test('without a lock shared between them (IndexedDB on a plain-http origin has no Web Locks), two tabs still end on one identity', async () => {
    const shared = new MemoryStore();
    // Each tab's store: the same storage, a lock of its own (what IndexedDbStore falls back to without Web Locks).
    const tab = () => Object.assign(Object.create(shared) as MemoryStore, { withLock: <T>(_name: string, fn: () => Promise<T>) => fn() });
    const a = device(server, poolId, { store: tab() });
    const b = device(server, poolId, { store: tab() });
    await (await a.openOrCreateDataset('fromA')).put('k', 'a');
    await (await b.openOrCreateDataset('fromB')).put('k', 'b');
    const [ia, ib] = await Promise.all([a.identityId(), b.identityId()]);
    assert.equal(ib, ia);
    assert.equal(await shared.getSetting(`identityId:${poolId}`), ia);
    await (await a.openOrCreateDataset('fromA')).synchronize();
    await (await b.openOrCreateDataset('fromB')).synchronize();
    assert.deepEqual(await serverValues(server, poolId, ia, 'fromA'), { k: 'a' });
    assert.deepEqual(await serverValues(server, poolId, ia, 'fromB'), { k: 'b' });
  });

  test('credentials the service refuses while they still look valid are dropped: the sync runs again with fresh ones', async () => {
    const identityId = `us-east-1:${crypto.randomUUID()}`;
    const far = new Date(Date.now() + 3600_000);
    let provided = 0;
    const revoked = { accessKeyId: 'ASIAREVOKED', secretAccessKey: 'gone', sessionToken: 'gone', expiration: far };
    const m = new SyncManager({
      identityPoolId: poolId,
      endpoint: server.endpoint,
      store: new MemoryStore(),
      identityId,
      credentials: async () => (provided++ === 0 ? revoked : { ...developerCredentials, expiration: far }),
    });
    const ds = await m.openOrCreateDataset('revoked');
    await ds.put('k', 'v');
    const summary = await ds.synchronize();
    assert.equal(summary.pushed, 1);
    assert.equal(provided, 2);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'revoked'), { k: 'v' });

    // A source that keeps giving the refused credentials: the error reaches the app (no loop).
    const stuck = new SyncManager({ identityPoolId: poolId, endpoint: server.endpoint, store: new MemoryStore(), identityId, credentials: async () => revoked });
    await assert.rejects((await stuck.openOrCreateDataset('revoked')).synchronize(), { name: 'UnrecognizedClientException' });
  });

  test('with its own credential provider the manager signs with them; changeIdentity() moves local data', async () => {
    const identityA = `us-east-1:${crypto.randomUUID()}`;
    const identityB = `us-east-1:${crypto.randomUUID()}`;
    let provided = 0;
    const m = new SyncManager({
      identityPoolId: poolId,
      endpoint: server.endpoint,
      store: new MemoryStore(),
      credentials: async () => (provided++, { ...developerCredentials, identityId: identityA }),
    });
    assert.equal(await m.identityId(), identityA, 'taken from the provider, as fromCognitoIdentityPool reports it');
    const ds = await m.openOrCreateDataset('d');
    await ds.put('k', 'v');
    await ds.synchronize();
    assert.deepEqual(await serverValues(server, poolId, identityA, 'd'), { k: 'v' });
    assert.equal(provided, 1, 'credentials without expiration are cached');
    await assert.rejects(m.setLogins({}), /own provider/);
    await m.changeIdentity(identityB);
    assert.equal(await m.identityId(), identityB);
    assert.deepEqual(await ds.getAll(), { k: 'v' });
    await ds.synchronize();
    assert.deepEqual(await serverValues(server, poolId, identityB, 'd'), { k: 'v' });
  });

  test('moving to an identity that already has a local dataset of the same name keeps both: <name>.<oldId> is reported as merged', async () => {
    const identityA = `us-east-1:${crypto.randomUUID()}`;
    const identityB = `us-east-1:${crypto.randomUUID()}`;
    const store = new MemoryStore();
    const m = new SyncManager({ identityPoolId: poolId, endpoint: server.endpoint, store, credentials: developerCredentials, identityId: identityA });
    const ds = await m.openOrCreateDataset('settings');
    await ds.put('from', 'A');
    // This device already holds B's copy of the dataset (B used the app here before).
    await store.commit({ datasets: [{ identityId: identityB, datasetName: 'settings', put: [{ key: 'from', value: 'B', syncCount: 0, modified: true, deviceLastModifiedDate: 1, lastModifiedDate: 1, lastModifiedBy: '', pushing: null }] }] });
    await m.changeIdentity(identityB);
    const mergedName = `settings.${identityA}`;
    assert.deepEqual((await m.listDatasets()).map((d) => [d.datasetName, d.mergedInto]), [['settings', null], [mergedName, 'settings']]);
    assert.deepEqual(await ds.getAll(), { from: 'B' });
    const reported: string[][] = [];
    const summary = await ds.synchronize({ onDatasetsMerged: (names) => (reported.push(names), true) });
    assert.deepEqual(reported, [[mergedName]]);
    assert.deepEqual(summary.mergedDatasetNames, [mergedName]);
    assert.deepEqual(await (await m.openOrCreateDataset(mergedName)).getAll(), { from: 'A' }, 'the moved copy is intact');
  });

  test('a logout in another tab (wipeData on the shared store) is followed: this manager does not pull the old identity\'s data back', async () => {
    const { store, a, diary, x } = await signedInTab();
    await device(server, poolId, { store }).wipeData();
    await diary.synchronize();
    assert.deepEqual(await store.listRecords(x, 'diary'), [], 'the logged-out identity\'s data stays gone from the device');
    const y = await a.identityId();
    assert.notEqual(y, x);
    assert.equal(await device(server, poolId, { store }).identityId(), y, 'every manager on the store is on the new identity');
  });

  test('after a logout in another tab, this tab\'s reads and writes are the new (anonymous) state\'s, never the logged-out identity\'s', async () => {
    const changes: Array<{ previousIdentityId: string; identityId: string }> = [];
    const { store, a, diary, x } = await signedInTab({ onIdentityChanged: ({ previousIdentityId, identityId }) => void changes.push({ previousIdentityId, identityId }) });
    await device(server, poolId, { store }).wipeData();
    assert.equal(await diary.get('secret'), undefined);
    await diary.put('typed', 'after the logout');
    assert.deepEqual(changes, [{ previousIdentityId: x, identityId: unknownIdentityId }], 'the page is told its user is gone');
    assert.deepEqual(await store.listDatasets(x), [], 'nothing is left under the logged-out identity');
    assert.deepEqual(await store.listRecords(unknownIdentityId, 'diary').then((r) => r.map((l) => [l.key, l.value])), [['typed', 'after the logout']]);
    await diary.synchronize();
    const y = await a.identityId();
    assert.notEqual(y, x);
    assert.deepEqual(await serverValues(server, poolId, y, 'diary'), { typed: 'after the logout' });
    assert.deepEqual(await serverValues(server, poolId, x, 'diary'), { secret: 'user X' }, 'the old identity\'s server data is untouched');
  });

  test('a write that read the identity before another tab\'s logout committed is done again after it, under the placeholder', async () => {
    const { store, diary, x } = await signedInTab();
    // The logout commits between the write's reads and its commit.
    const commit = store.commit.bind(store);
    let raced = false;
    store.commit = async (batch) => {
      if (!raced && batch.datasets?.some((d) => d.put?.some((r) => r.key === 'late'))) {
        raced = true;
        await device(server, poolId, { store }).wipeData();
      }
      return commit(batch);
    };
    await diary.put('late', 'typed during the logout');
    assert.ok(raced);
    assert.deepEqual(await store.listDatasets(x), [], 'nothing is left under the logged-out identity');
    assert.equal((await store.getRecord(unknownIdentityId, 'diary', 'late'))?.value, 'typed during the logout');
  });

  test('a sync in flight when another tab logs out stops without writing the old identity\'s data back', async () => {
    const store = new MemoryStore();
    const writer = device(server, poolId);
    const x = await writer.identityId();
    const shared = await writer.openOrCreateDataset('diary');
    await shared.put('secret', 'user X');
    await shared.synchronize();
    // This device is X too (the same identity stored), and another tab logs out while its ListRecords is answered.
    await store.commit({ settings: { [`identityId:${poolId}`]: x } });
    const { fetch } = spyFetch({ after: async (operation, _n, response) => (operation === 'ListRecords' && (await device(server, poolId, { store }).wipeData()), response) });
    const a = device(server, poolId, { store, fetch });
    const diary = await a.openOrCreateDataset('diary');
    await assert.rejects(diary.synchronize(), { name: 'CognitoSyncClientError', message: /identity changed/ });
    assert.deepEqual(await store.listDatasets(x), [], 'the logged-out identity\'s data is not back on the device');
    assert.equal(await store.getSetting(`identityId:${poolId}`), undefined);
  });

  test('a tab whose user logged out in another tab, where the next user logged in, does not sign its user back in over theirs', async () => {
    const developerToken = async (user: string) =>
      (await identityClient(server.endpoint).send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': user } }))).Token!;
    const store = new MemoryStore();
    const tab1 = device(server, poolId, { store });
    const alice = await tab1.setLogins(openIdLogin(await developerToken(`alice-${crypto.randomUUID()}`)));
    await (await tab1.openOrCreateDataset('diary')).put('secret', 'alice');
    await (await tab1.openOrCreateDataset('diary')).synchronize();
    const tab2 = device(server, poolId, { store });
    await tab2.wipeData();
    const bob = await tab2.setLogins(openIdLogin(await developerToken(`bob-${crypto.randomUUID()}`)));
    await (await tab2.openOrCreateDataset('diary')).put('bob-entry', 'bob private text');
    // tab1 still shows alice's page and syncs: it follows the store to bob's identity, without alice's logins.
    await assert.rejects((await tab1.openOrCreateDataset('diary')).synchronize(), { name: 'NotAuthorizedException' });
    assert.equal(await store.getSetting(`identityId:${poolId}`), bob, 'the device stays on the user who logged in last');
    assert.deepEqual(await serverValues(server, poolId, alice, 'diary'), { secret: 'alice' }, 'nothing of bob reaches alice');
    assert.equal((await store.getRecord(bob, 'diary', 'bob-entry'))?.value, 'bob private text');
  });

  test('wipeData() forgets the local datasets and the identity', async () => {
    const store = new MemoryStore();
    const m = device(server, poolId, { store });
    const before = await m.identityId();
    await (await m.openOrCreateDataset('d')).put('k', 'v');
    await m.wipeData();
    assert.deepEqual(await store.listDatasets(before), []);
    const after = device(server, poolId, { store });
    assert.notEqual(await after.identityId(), before, 'a new anonymous identity');
  });
});
