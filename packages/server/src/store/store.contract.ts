// The Store contract suite: behaviour every Store implementation must show, written against the Store
// interface only, so the SQLite and PostgreSQL stores run it verbatim (see sqlite/sqlite-store.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BulkPublishState } from '../core/bulk-publish.js';
import type { RecordPatch } from '../core/record-patches.js';
import { RESTORE_SYNC_COUNT_GAP } from '../core/restore.js';
import { defaultLimits, type Limits } from '../limits.js';
import type { DatasetKey, DeviceRecord, IdentityPoolRecord, IdentityRecord, IssuedCredentialsRecord, Login, PoolRoles, ProviderRule, Store, StoredRecord } from './store.js';

const POOL = 'us-east-1:00000000-0000-4000-8000-000000000001';
const OTHER_POOL = 'us-east-1:00000000-0000-4000-8000-000000000002';
const IDENTITY = 'us-east-1:11111111-1111-4111-8111-111111111111';
const OTHER_IDENTITY = 'us-east-1:22222222-2222-4222-8222-222222222222';
const T0 = 1_700_000_000_000;
/** An expiration no run of the suite reaches, so a store may purge expired credentials by wall clock without touching these. */
const FAR_FUTURE = 4_102_444_800_000;

/** An assert.rejects matcher for a ServiceError of the given AWS name. */
const serviceError = (code: string) => ({ name: code, code });

const limitsWith = (overrides: Partial<Limits> = {}): Limits => ({ ...defaultLimits, ...overrides });

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

const poolRecord = (identityPoolId: string, name = 'pool', now = T0): IdentityPoolRecord => ({
  identityPoolId,
  identityPoolName: name,
  description: { IdentityPoolName: name, AllowUnauthenticatedIdentities: true },
  creationDate: now,
  lastModifiedDate: now,
});

const datasetKey = (datasetName: string, identityId = IDENTITY, identityPoolId = POOL): DatasetKey => ({ identityPoolId, identityId, datasetName });

const put = (key: string, value: string, syncCount = 0): RecordPatch => ({ op: 'replace', key, value, syncCount });
const remove = (key: string, syncCount: number): RecordPatch => ({ op: 'remove', key, syncCount });

const device = (deviceId: string, overrides: Partial<DeviceRecord> = {}): DeviceRecord => ({
  identityPoolId: POOL,
  identityId: IDENTITY,
  deviceId,
  platform: 'GCM',
  token: 'token-1',
  creationDate: T0,
  ...overrides,
});

const login = (providerName: string, userIdentifier: string): Login => ({ providerName, userIdentifier });

/** The provider rule of a pool whose developer provider is `provider-a` (several users of it per identity). */
const RULE: ProviderRule = { developerProvider: 'provider-a' };

const identityRecord = (identityId: string, logins: Login[] = [], identityPoolId = POOL, now = T0): IdentityRecord => ({
  identityPoolId,
  identityId,
  logins,
  creationDate: now,
  lastModifiedDate: now,
});

const issued = (accessKeyId: string, identityId = IDENTITY, identityPoolId = POOL, expiration = FAR_FUTURE): IssuedCredentialsRecord => ({
  accessKeyId,
  identityPoolId,
  identityId,
  expiration,
});
/** What getIssuedCredentials returns for `record`: the record with its pool's current sync settings. */
const withPoolSettings = async (store: Store, record: IssuedCredentialsRecord) => ({ ...record, poolSettings: await store.getPoolSyncSettings(record.identityPoolId) });

const idsOfIdentities = (identities: IdentityRecord[]) => identities.map((identity) => identity.identityId);

/** Registers the Store contract suite under `describe(name)`; every test gets a fresh, migrated store from `makeStore`. */
export function runStoreContract(name: string, makeStore: () => Promise<Store>, dispose: (store: Store) => Promise<void> = (store) => store.close()): void {
  /** A test with its own store, disposed whatever the outcome. */
  const storeTest = (title: string, body: (store: Store) => Promise<void>) =>
    test(title, async () => {
      const store = await makeStore();
      try {
        await body(store);
      } finally {
        await dispose(store);
      }
    });

  /** A storeTest whose store holds POOL and OTHER_POOL: datasets and devices are only created in a pool that exists. */
  const dataTest = (title: string, body: (store: Store) => Promise<void>) =>
    storeTest(title, async (store) => {
      for (const pool of [POOL, OTHER_POOL]) await store.createIdentityPool(poolRecord(pool), 10);
      await body(store);
    });

  /** Commits one UpdateRecords with default limits. */
  const update = (store: Store, key: DatasetKey, patches: RecordPatch[], now = T0, limits: Limits = limitsWith()) =>
    store.updateRecords({ ...key, patches, now, modifiedBy: 'contract-test', limits });

  const allRecords = async (store: Store, key: DatasetKey, lastSyncCount = 0): Promise<StoredRecord[]> =>
    (await store.listRecords(key, lastSyncCount, undefined, 10_000)).records;

  /** A snapshot of what a client could observe of a dataset, to prove a refused write changed nothing. */
  const observe = async (store: Store, key: DatasetKey) => ({
    dataset: await store.describeDataset(key),
    records: await allRecords(store, key),
    datasets: await store.listDatasets(key.identityPoolId, key.identityId, undefined, 100),
    usage: await store.describeIdentityUsage(key.identityPoolId, key.identityId),
    poolUsage: await store.describeIdentityPoolUsage(key.identityPoolId),
  });

  describe(name, () => {
    describe('settings', () => {
      storeTest('getOrCreateSetting keeps the first value written (first writer wins)', async (store) => {
        assert.equal(await store.getOrCreateSetting('secret', 'first'), 'first');
        assert.equal(await store.getOrCreateSetting('secret', 'second'), 'first');
        assert.equal(await store.getOrCreateSetting('other', 'third'), 'third');
        assert.equal(await store.getOrCreateSetting('secret', 'fourth'), 'first');
      });

      storeTest('concurrent getOrCreateSetting calls all see one value', async (store) => {
        const values = await Promise.all(['a', 'b', 'c', 'd'].map((value) => store.getOrCreateSetting('raced', value)));
        assert.equal(new Set(values).size, 1);
        assert.equal(await store.getOrCreateSetting('raced', 'e'), values[0]);
      });

      storeTest('ping answers true on an open store', async (store) => {
        assert.equal(await store.ping(), true);
      });
    });

    describe('identity pools', () => {
      storeTest('a created pool reads back as stored; an unknown pool is undefined', async (store) => {
        const pool = poolRecord(POOL, 'first pool');
        pool.description = { IdentityPoolName: 'first pool', AllowUnauthenticatedIdentities: false, SupportedLoginProviders: { 'graph.facebook.com': '123' } };
        await store.createIdentityPool(pool, 10);
        assert.deepEqual(await store.getIdentityPool(POOL), pool);
        assert.equal(await store.getIdentityPool(OTHER_POOL), undefined);
      });

      storeTest('listIdentityPools orders by id and pages with afterId', async (store) => {
        const ids = ['us-east-1:c0', 'us-east-1:a0', 'us-east-1:e0', 'us-east-1:b0', 'us-east-1:d0'];
        for (const id of ids) await store.createIdentityPool(poolRecord(id, `pool ${id}`), 10);
        const idsOf = (pools: IdentityPoolRecord[]) => pools.map((pool) => pool.identityPoolId);
        assert.deepEqual(idsOf(await store.listIdentityPools(undefined, 10)), [...ids].sort());
        assert.deepEqual(idsOf(await store.listIdentityPools(undefined, 2)), ['us-east-1:a0', 'us-east-1:b0']);
        assert.deepEqual(idsOf(await store.listIdentityPools('us-east-1:b0', 2)), ['us-east-1:c0', 'us-east-1:d0']);
        assert.deepEqual(idsOf(await store.listIdentityPools('us-east-1:d0', 2)), ['us-east-1:e0']);
        assert.deepEqual(idsOf(await store.listIdentityPools('us-east-1:e0', 2)), []);
        // afterId need not be an existing pool.
        assert.deepEqual(idsOf(await store.listIdentityPools('us-east-1:b5', 10)), ['us-east-1:c0', 'us-east-1:d0', 'us-east-1:e0']);
        const listed = await store.listIdentityPools(undefined, 1);
        assert.deepEqual(listed[0], poolRecord('us-east-1:a0', 'pool us-east-1:a0'));
      });

      storeTest('updateIdentityPool replaces name and description, keeps creationDate, false when unknown', async (store) => {
        await store.createIdentityPool(poolRecord(POOL, 'before', T0), 10);
        const updated = { identityPoolId: POOL, identityPoolName: 'after', description: { IdentityPoolName: 'after', AllowUnauthenticatedIdentities: false }, lastModifiedDate: T0 + 5000 };
        assert.equal(await store.updateIdentityPool(updated), true);
        assert.deepEqual(await store.getIdentityPool(POOL), { ...updated, creationDate: T0 });
        assert.equal(await store.updateIdentityPool({ ...updated, identityPoolId: OTHER_POOL }), false);
        assert.equal(await store.getIdentityPool(OTHER_POOL), undefined);
      });

      storeTest('deleteIdentityPool removes the pool with its datasets, records, devices, subscriptions and identities, and nothing of other pools', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentityPool(poolRecord(OTHER_POOL), 10);
        const login = { providerName: 'login.example.app', userIdentifier: 'user-1' };
        await store.createIdentity({ identityPoolId: POOL, identityId: IDENTITY, logins: [login], creationDate: T0, lastModifiedDate: T0 });
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [], OTHER_POOL));
        for (const [pool, identityId] of [[POOL, IDENTITY], [OTHER_POOL, OTHER_IDENTITY]] as const) {
          const key = datasetKey('settings', identityId, pool);
          await update(store, key, [put('k', 'v')]);
          await store.registerDevice(device(`device-${pool}`, { identityPoolId: pool, identityId }));
          await store.subscribe(key, `device-${pool}`, T0);
        }
        await store.saveIssuedCredentials({ accessKeyId: 'ASIAPOOLDELETE', identityPoolId: POOL, identityId: IDENTITY, expiration: T0 + 3600_000 });
        const otherBefore = await observe(store, datasetKey('settings', OTHER_IDENTITY, OTHER_POOL));

        assert.equal(await store.deleteIdentityPool(POOL), true);

        const key = datasetKey('settings');
        assert.equal(await store.getIdentityPool(POOL), undefined);
        assert.equal(await store.getPoolSyncSettings(POOL), undefined);
        assert.equal(await store.describeDataset(key), undefined);
        assert.deepEqual(await store.listDatasets(POOL, IDENTITY, undefined, 10), []);
        const page = await store.listRecords(key, 0, undefined, 10);
        assert.equal(page.dataset, undefined);
        assert.deepEqual(page.records, []);
        assert.equal(await store.getDevice(POOL, IDENTITY, `device-${POOL}`), undefined);
        assert.deepEqual(await store.listSubscriptions(key), []);
        assert.equal(await store.getIdentity(IDENTITY), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, login), undefined);
        assert.equal(await store.getIssuedCredentials('ASIAPOOLDELETE'), undefined);
        assert.deepEqual(await store.describeIdentityUsage(POOL, IDENTITY), { identityPoolId: POOL, identityId: IDENTITY, datasetCount: 0, dataStorage: 0, lastModifiedDate: undefined });
        assert.deepEqual(await store.describeIdentityPoolUsage(POOL), { identityPoolId: POOL, syncSessionsCount: 0, dataStorage: 0, lastModifiedDate: undefined });
        assert.deepEqual((await store.listIdentityPools(undefined, 10)).map((pool) => pool.identityPoolId), [OTHER_POOL]);

        const otherKey = datasetKey('settings', OTHER_IDENTITY, OTHER_POOL);
        assert.deepEqual(await observe(store, otherKey), otherBefore);
        assert.ok(await store.getDevice(OTHER_POOL, OTHER_IDENTITY, `device-${OTHER_POOL}`));
        assert.deepEqual(await store.listSubscriptions(otherKey), [`device-${OTHER_POOL}`]);

        assert.equal(await store.deleteIdentityPool(POOL), false);
        // A request that read the pool before it went creates nothing in it afterwards.
        await assert.rejects(update(store, datasetKey('late'), [put('k', 'v')]), serviceError('ResourceNotFoundException'));
        await assert.rejects(store.registerDevice(device('device-late')), serviceError('ResourceNotFoundException'));
        await assert.rejects(store.subscribe(key, `device-${POOL}`, T0), serviceError('ResourceNotFoundException'));
        assert.deepEqual(await store.listDatasets(POOL, IDENTITY, undefined, 10), []);
        assert.equal(await store.getDevice(POOL, IDENTITY, 'device-late'), undefined);
      });

      storeTest('deleteIdentityPool removes only that pool\'s identities, logins and credentials', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentityPool(poolRecord(OTHER_POOL), 10);
        const shared = login('login.example.app', 'user-1');
        const own = login('login.example.app', 'user-2');
        await store.createIdentity(identityRecord(IDENTITY, [shared], POOL));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [shared, own], OTHER_POOL));
        await store.saveIssuedCredentials(issued('ASIADELETEDPOOL', IDENTITY, POOL));
        await store.saveIssuedCredentials(issued('ASIAKEPTPOOL', OTHER_IDENTITY, OTHER_POOL));
        const roles: PoolRoles = { Roles: { authenticated: 'arn:aws:iam::123456789012:role/kept' } };
        await store.setPoolRoles(OTHER_POOL, roles);
        const otherBefore = await store.getIdentity(OTHER_IDENTITY);

        assert.equal(await store.deleteIdentityPool(POOL), true);

        assert.equal(await store.getIdentity(IDENTITY), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, shared), undefined);
        assert.equal(await store.getIssuedCredentials('ASIADELETEDPOOL'), undefined);
        assert.deepEqual(await store.listIdentities(POOL, undefined, 10), []);
        assert.equal(await store.getPoolRoles(POOL), undefined);

        assert.deepEqual(await store.getIdentity(OTHER_IDENTITY), otherBefore);
        assert.equal(await store.findIdentityByLogin(OTHER_POOL, shared), OTHER_IDENTITY);
        assert.equal(await store.findIdentityByLogin(OTHER_POOL, own), OTHER_IDENTITY);
        assert.deepEqual(await store.getIssuedCredentials('ASIAKEPTPOOL'), await withPoolSettings(store, issued('ASIAKEPTPOOL', OTHER_IDENTITY, OTHER_POOL)));
        assert.deepEqual(await store.listIdentities(OTHER_POOL, undefined, 10), [otherBefore]);
        assert.deepEqual(await store.getPoolRoles(OTHER_POOL), roles);
      });

      storeTest('createIdentityPool refuses a pool beyond maxPools with LimitExceededException', async (store) => {
        await store.createIdentityPool(poolRecord('us-east-1:a0'), 2);
        await store.createIdentityPool(poolRecord('us-east-1:b0'), 2);
        await assert.rejects(store.createIdentityPool(poolRecord('us-east-1:c0'), 2), serviceError('LimitExceededException'));
        assert.equal(await store.getIdentityPool('us-east-1:c0'), undefined);
        assert.equal((await store.listIdentityPools(undefined, 10)).length, 2);
        // Deleting one makes room again.
        await store.deleteIdentityPool('us-east-1:a0');
        await store.createIdentityPool(poolRecord('us-east-1:c0'), 2);
        assert.ok(await store.getIdentityPool('us-east-1:c0'));
      });
    });

    describe('pool sync settings', () => {
      storeTest('a new pool has no push sync, no streams, no events and bulk publish NOT_STARTED', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const settings = await store.getPoolSyncSettings(POOL);
        assert.ok(settings);
        assert.equal(settings.pushSync, undefined);
        assert.equal(settings.cognitoStreams, undefined);
        assert.deepEqual(settings.cognitoEvents, {});
        assert.deepEqual(settings.bulkPublish, { status: 'NOT_STARTED' });
      });

      storeTest('setPoolConfiguration replaces the members given and keeps the others', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const pushSync = { ApplicationArns: ['arn:aws:sns:us-east-1:123456789012:app/GCM/my-app'], RoleArn: 'arn:aws:iam::123456789012:role/push' };
        const streams = { StreamName: 'stream', RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'ENABLED' as const };

        const afterPush = await store.setPoolConfiguration(POOL, { pushSync });
        assert.deepEqual(afterPush?.pushSync, pushSync);
        assert.equal(afterPush?.cognitoStreams, undefined);

        const afterStreams = await store.setPoolConfiguration(POOL, { cognitoStreams: streams });
        assert.deepEqual(afterStreams?.pushSync, pushSync);
        assert.deepEqual(afterStreams?.cognitoStreams, streams);

        const pushSync2 = { ApplicationArns: [], RoleArn: 'arn:aws:iam::123456789012:role/push2' };
        await store.setPoolConfiguration(POOL, { pushSync: pushSync2 });
        const settings = await store.getPoolSyncSettings(POOL);
        assert.deepEqual(settings?.pushSync, pushSync2);
        assert.deepEqual(settings?.cognitoStreams, streams);
        assert.deepEqual(settings?.cognitoEvents, {});
        assert.deepEqual(settings?.bulkPublish, { status: 'NOT_STARTED' });

        assert.equal(await store.setPoolConfiguration(OTHER_POOL, { pushSync }), undefined);
      });

      storeTest('setCognitoEvents merges bindings and an empty function removes one', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.setCognitoEvents(POOL, { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:one' });
        await store.setCognitoEvents(POOL, { OtherEvent: 'arn:aws:lambda:us-east-1:123456789012:function:two' });
        assert.deepEqual((await store.getPoolSyncSettings(POOL))?.cognitoEvents, {
          SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:one',
          OtherEvent: 'arn:aws:lambda:us-east-1:123456789012:function:two',
        });
        await store.setCognitoEvents(POOL, { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:three' });
        assert.equal((await store.getPoolSyncSettings(POOL))?.cognitoEvents.SyncTrigger, 'arn:aws:lambda:us-east-1:123456789012:function:three');
        await store.setCognitoEvents(POOL, { SyncTrigger: '' });
        assert.deepEqual((await store.getPoolSyncSettings(POOL))?.cognitoEvents, { OtherEvent: 'arn:aws:lambda:us-east-1:123456789012:function:two' });
        await store.setCognitoEvents(POOL, { NeverSet: '' });
        assert.deepEqual((await store.getPoolSyncSettings(POOL))?.cognitoEvents, { OtherEvent: 'arn:aws:lambda:us-east-1:123456789012:function:two' });
      });

      storeTest('startBulkPublish shows decide the current settings and stores the state it returns', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const streams = { StreamName: 'stream', StreamingStatus: 'ENABLED' as const };
        await store.setPoolConfiguration(POOL, { cognitoStreams: streams });
        const seen: unknown[] = [];
        const started: BulkPublishState = { status: 'IN_PROGRESS', startTime: T0 };
        assert.deepEqual(
          await store.startBulkPublish(POOL, (settings) => {
            seen.push(settings.cognitoStreams, settings.bulkPublish);
            return started;
          }, T0),
          started,
        );
        assert.deepEqual(seen, [streams, { status: 'NOT_STARTED' }]);
        assert.deepEqual((await store.getPoolSyncSettings(POOL))?.bulkPublish, started);

        const done: BulkPublishState = { status: 'SUCCEEDED', startTime: T0, completeTime: T0 + 1000 };
        await store.startBulkPublish(POOL, (settings) => {
          assert.deepEqual(settings.bulkPublish, started);
          return done;
        }, T0);
        assert.deepEqual((await store.getPoolSyncSettings(POOL))?.bulkPublish, done);
        assert.deepEqual((await store.getPoolSyncSettings(POOL))?.cognitoStreams, streams);
      });

      storeTest('a decide that throws leaves the bulk publish state unchanged and the error reaches the caller', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const started: BulkPublishState = { status: 'IN_PROGRESS', startTime: T0 };
        await store.startBulkPublish(POOL, () => started, T0);
        const refusal = new Error('refused');
        await assert.rejects(
          store.startBulkPublish(POOL, () => {
            throw refusal;
          }, T0),
          (error) => error === refusal,
        );
        assert.deepEqual((await store.getPoolSyncSettings(POOL))?.bulkPublish, started);
      });

      storeTest('startBulkPublish on an unknown pool is undefined', async (store) => {
        assert.equal(await store.startBulkPublish(OTHER_POOL, () => ({ status: 'IN_PROGRESS', startTime: T0 }), T0), undefined);
      });
    });

    describe('datasets and records', () => {
      const key = datasetKey('settings');

      dataTest('updateRecords creates the dataset with SyncCount 1 and stamps every record with it', async (store) => {
        assert.equal(await store.describeDataset(key), undefined);
        const result = await update(store, key, [put('b', 'two'), { ...put('a', 'one'), deviceLastModifiedDate: T0 - 60_000 }], T0 + 7);
        const expectedDataset = {
          ...key,
          creationDate: T0 + 7,
          lastModifiedDate: T0 + 7,
          lastModifiedBy: 'contract-test',
          syncCount: 1,
          dataStorage: utf8('btwo') + utf8('aone'),
          numRecords: 2,
        };
        assert.deepEqual(result.dataset, expectedDataset);
        assert.deepEqual(
          [...result.records].sort((x, y) => x.key.localeCompare(y.key)),
          [
            { key: 'a', value: 'one', syncCount: 1, lastModifiedDate: T0 + 7, lastModifiedBy: 'contract-test', deviceLastModifiedDate: T0 - 60_000 },
            { key: 'b', value: 'two', syncCount: 1, lastModifiedDate: T0 + 7, lastModifiedBy: 'contract-test', deviceLastModifiedDate: T0 + 7 },
          ],
        );
        assert.deepEqual(await store.describeDataset(key), expectedDataset);
        assert.deepEqual(await allRecords(store, key), [...result.records].sort((x, y) => x.key.localeCompare(y.key)));
      });

      dataTest('each committed updateRecords moves SyncCount up by exactly one; unpatched records keep theirs', async (store) => {
        await update(store, key, [put('a', '1'), put('b', '1')], T0);
        const second = await update(store, key, [put('a', '2', 1)], T0 + 1);
        assert.equal(second.dataset.syncCount, 2);
        assert.deepEqual(second.records.map((r) => [r.key, r.syncCount]), [['a', 2]]);
        const third = await update(store, key, [put('a', '3', 2), put('c', '3')], T0 + 2);
        assert.equal(third.dataset.syncCount, 3);
        assert.deepEqual(third.records.map((r) => r.syncCount), [3, 3]);
        // A request with no patches still commits a new SyncCount.
        const empty = await update(store, key, [], T0 + 3);
        assert.equal(empty.dataset.syncCount, 4);
        assert.deepEqual(empty.records, []);
        const dataset = await store.describeDataset(key);
        assert.equal(dataset?.syncCount, 4);
        assert.equal(dataset?.creationDate, T0);
        assert.equal(dataset?.lastModifiedDate, T0 + 3);
        assert.deepEqual((await allRecords(store, key)).map((r) => [r.key, r.value, r.syncCount]), [['b', '1', 1], ['a', '3', 3], ['c', '3', 3]]);
      });

      dataTest('a stale SyncCount fails with ResourceConflictException and changes nothing', async (store) => {
        await update(store, key, [put('a', 'one')], T0);
        await update(store, key, [put('a', 'two', 1)], T0 + 1);
        const before = await observe(store, key);
        await assert.rejects(update(store, key, [put('a', 'three', 1)], T0 + 2), serviceError('ResourceConflictException'));
        // A client that believes the record is new (0) conflicts too.
        await assert.rejects(update(store, key, [put('a', 'three', 0)], T0 + 2), serviceError('ResourceConflictException'));
        // A record that never existed must be patched with 0.
        await assert.rejects(update(store, key, [put('never', 'x', 5)], T0 + 2), serviceError('ResourceConflictException'));
        assert.deepEqual(await observe(store, key), before);
        // The failed calls consumed no SyncCount.
        assert.equal((await update(store, key, [put('a', 'three', 2)], T0 + 3)).dataset.syncCount, 3);
      });

      dataTest('patches apply all or nothing: a conflict on the last patch discards the earlier ones', async (store) => {
        await update(store, key, [put('existing', 'v1')], T0);
        await update(store, key, [put('existing', 'v2', 1)], T0 + 1);
        const before = await observe(store, key);
        await assert.rejects(
          update(store, key, [put('new-1', 'x'), put('new-2', 'y'), remove('gone', 0), put('existing', 'v3', 1)], T0 + 2),
          serviceError('ResourceConflictException'),
        );
        assert.deepEqual(await observe(store, key), before);
        assert.deepEqual((await allRecords(store, key)).map((r) => r.key), ['existing']);
      });

      dataTest('concurrent updateRecords with the same SyncCount: exactly one commits', async (store) => {
        await update(store, key, [put('a', 'base')], T0);
        const outcomes = await Promise.allSettled(['x', 'y', 'z'].map((value, i) => update(store, key, [put('a', value, 1)], T0 + 1 + i)));
        const committed = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        assert.equal(committed.length, 1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') assert.equal((outcome.reason as { code?: string }).code, 'ResourceConflictException');
        }
        assert.equal((await store.describeDataset(key))?.syncCount, 2);
      });

      dataTest('many concurrent writers of one dataset: new keys all commit in turn, stale ones conflict, none blocks the rest', async (store) => {
        await update(store, key, [put('base', 'v')], T0);
        const writes = Array.from({ length: 24 }, (_, i) =>
          // Every third write names a stale SyncCount for `base` and must conflict without holding up the others.
          i % 3 === 2 ? update(store, key, [put('base', `stale-${i}`, 0)], T0 + 1 + i) : update(store, key, [put(`k${i}`, `v${i}`)], T0 + 1 + i),
        );
        const outcomes = await Promise.allSettled(writes);
        const committed = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value.dataset.syncCount] : []));
        assert.equal(committed.length, 16);
        for (const [i, outcome] of outcomes.entries()) {
          if (i % 3 === 2) assert.equal(outcome.status === 'rejected' && (outcome.reason as { code?: string }).code, 'ResourceConflictException');
        }
        // Each commit got its own SyncCount: 2..17, in some order.
        assert.deepEqual([...committed].sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i + 2));
        const dataset = await store.describeDataset(key);
        assert.equal(dataset?.syncCount, 17);
        assert.equal(dataset?.numRecords, 17);
        assert.equal((await update(store, key, [put('base', 'after', 1)], T0 + 100)).dataset.syncCount, 18);
      });

      dataTest('concurrent updateRecords of several datasets, with keys of any characters: each reads and writes only its own', async (store) => {
        const odd = ['a,b', '{"x": [1]}', 'back\\slash', 'ünïcode ✓', '"quoted"', 'NULL'];
        const alpha = datasetKey('alpha');
        const beta = datasetKey('beta');
        const alphaElsewhere = datasetKey('alpha', OTHER_IDENTITY);
        await update(store, alpha, odd.map((k) => put(k, 'v1')), T0);
        await update(store, beta, odd.map((k) => put(k, 'v1')), T0);
        await update(store, beta, [put('a,b', 'v2', 1)], T0 + 1);
        await update(store, alphaElsewhere, [put('a,b', 'other')], T0);
        const [toAlpha, toBeta, toGamma, toElsewhere] = await Promise.allSettled([
          update(store, alpha, odd.map((k) => put(k, 'v2', 1)), T0 + 2),
          // Stale: beta's `a,b` is at SyncCount 2 now.
          update(store, beta, [put('a,b', 'v3', 1)], T0 + 2),
          update(store, datasetKey('gamma'), [put('a,b', 'new')], T0 + 2),
          update(store, alphaElsewhere, [put('a,b', 'other-2', 1), put('ünïcode ✓', 'new')], T0 + 2),
        ]);
        assert.equal(toAlpha.status === 'fulfilled' && toAlpha.value.dataset.syncCount, 2);
        assert.equal(toBeta.status === 'rejected' && (toBeta.reason as { code?: string }).code, 'ResourceConflictException');
        assert.equal(toGamma.status === 'fulfilled' && toGamma.value.dataset.syncCount, 1);
        assert.equal(toElsewhere.status === 'fulfilled' && toElsewhere.value.dataset.syncCount, 2);
        assert.deepEqual((await allRecords(store, alpha)).map((r) => [r.key, r.value, r.syncCount]).sort(), odd.map((k) => [k, 'v2', 2]).sort());
        assert.equal((await store.describeDataset(beta))?.syncCount, 2);
        assert.deepEqual((await allRecords(store, alphaElsewhere)).map((r) => [r.key, r.value]).sort(), [['a,b', 'other-2'], ['ünïcode ✓', 'new']]);
      });

      dataTest('remove leaves a tombstone with the new SyncCount and gives back its records and bytes', async (store) => {
        await update(store, key, [put('keep', 'value'), put('drop', 'some longer value')], T0);
        const removed = await update(store, key, [remove('drop', 1)], T0 + 1);
        assert.deepEqual(removed.records, [{ key: 'drop', value: null, syncCount: 2, lastModifiedDate: T0 + 1, lastModifiedBy: 'contract-test', deviceLastModifiedDate: T0 + 1 }]);
        const dataset = await store.describeDataset(key);
        assert.equal(dataset?.syncCount, 2);
        assert.equal(dataset?.numRecords, 1);
        assert.equal(dataset?.dataStorage, utf8('keepvalue'));
        assert.deepEqual((await allRecords(store, key)).map((r) => [r.key, r.value, r.syncCount]), [['keep', 'value', 1], ['drop', null, 2]]);
        // Writing the key again must name the tombstone's SyncCount, not 0.
        await assert.rejects(update(store, key, [put('drop', 'back')], T0 + 2), serviceError('ResourceConflictException'));
        await update(store, key, [put('drop', 'back', 2)], T0 + 2);
        assert.equal((await store.describeDataset(key))?.numRecords, 2);
        // Removing a tombstone again keeps the counts.
        await update(store, key, [remove('drop', 3)], T0 + 3);
        await update(store, key, [remove('drop', 4)], T0 + 4);
        const after = await store.describeDataset(key);
        assert.equal(after?.numRecords, 1);
        assert.equal(after?.dataStorage, utf8('keepvalue'));
      });

      dataTest('markRestored moves every dataset\'s SyncCount past the gap and the clock, remembers the span it skipped, and starts new datasets past it', async (store) => {
        const gone = datasetKey('gone');
        const untouched = datasetKey('untouched');
        await update(store, key, [put('a', '1')], T0);
        await update(store, key, [put('b', '2')], T0 + 1);
        await update(store, gone, [put('x', '1')], T0);
        await store.deleteDataset(gone, T0 + 2);
        await update(store, untouched, [put('u', '1')], T0);
        const markedAt = 5_000_000; // later than 2 + RESTORE_SYNC_COUNT_GAP: the clock decides
        assert.equal(await store.markRestored(markedAt), 3);
        const page = await store.listRecords(key, 0, undefined, 10);
        assert.deepEqual(page.restored, { from: 2, to: markedAt });
        assert.equal(page.dataset?.syncCount, markedAt);
        assert.deepEqual(page.records.map((r) => [r.key, r.syncCount]), [['a', 1], ['b', 2]], 'records keep their counts');
        // The deleted dataset's deletion moves with its counter, and stays its last change.
        const deleted = await store.listRecords(gone, 0, undefined, 10);
        assert.equal(deleted.dataset, undefined);
        assert.deepEqual(deleted.restored, { from: 2, to: markedAt });
        assert.equal(deleted.deletedAtSyncCount, markedAt);
        // Writes go on from the mark, with a token from the restored database (at the mark itself) too; a token from
        // inside the span is refused.
        const tokenWrite = (sessionSyncCount: number, patch: RecordPatch) =>
          store.updateRecords({ ...key, patches: [patch], now: T0 + 4, modifiedBy: 'contract-test', limits: limitsWith(), sessionSyncCount });
        assert.equal((await tokenWrite(markedAt, put('c', '3'))).dataset.syncCount, markedAt + 1);
        await assert.rejects(tokenWrite(5, put('d', '4')), serviceError('ResourceConflictException'));
        // A dataset created after the mark starts past it, its span covering every count a lost one could have had.
        const fresh = datasetKey('created-after');
        assert.equal((await update(store, fresh, [put('f', '1')], T0 + 5)).dataset.syncCount, markedAt + 1);
        assert.deepEqual((await store.listRecords(fresh, 0, undefined, 10)).restored, { from: 0, to: markedAt });
        // Marked again (the same backup restored twice, the command run twice, or a later restore): every dataset keeps
        // its first span's start, written since or not, so a device of the first lost time is still told (those that
        // synced between the marks are told too, and sync again once).
        assert.equal(await store.markRestored(2 * markedAt), 4);
        assert.deepEqual((await store.listRecords(untouched, 0, undefined, 10)).restored, { from: 1, to: 2 * markedAt });
        assert.deepEqual((await store.listRecords(key, 0, undefined, 10)).restored, { from: 2, to: 2 * markedAt });
      });

      dataTest('past either bound, a dataset drops its oldest tombstones to three quarters of it, whole SyncCounts at a time, remembering through which', async (store) => {
        const limits = limitsWith({ tombstonesPerDataset: 4 }); // 3 are kept after a drop
        const write = (patches: RecordPatch[], at: number) => update(store, key, patches, T0 + at, limits);
        const tombstones = async (of = key) => (await allRecords(store, of)).filter((r) => r.value === null).map((r) => [r.key, r.syncCount]).sort();
        const dropped = async (of = key) => (await store.listRecords(of, 0, undefined, 1)).tombstonesDroppedThrough;
        await write([...Array.from({ length: 9 }, (_, i) => put(`k${i}`, 'v')), put('keep', 'v')], 0); // 1
        await write([remove('k0', 1), remove('k1', 1), remove('k2', 1)], 1); // 2
        await write([remove('k3', 1)], 2); // 3: four, at the bound
        await write([remove('k0', 2)], 3); // 4: a tombstone stamped anew is not a new one
        assert.equal(await dropped(), 0);
        // 5: the fifth. Two must go: k1 and k2, at 2 (the oldest).
        await write([remove('k4', 1)], 4);
        assert.deepEqual(await tombstones(), [['k0', 4], ['k3', 3], ['k4', 5]]);
        assert.equal(await dropped(), 2);
        assert.deepEqual((await allRecords(store, key)).filter((r) => r.value !== null).map((r) => r.key).sort(), ['k5', 'k6', 'k7', 'k8', 'keep'], 'live records are untouched');
        // A dropped key is written again from its tombstone's count, as a device that saw the removal holds it.
        await write([put('k1', 'back', 2)], 5); // 6
        // A write whose SyncSessionToken predates the drop is refused (its device may not have seen those removals);
        // one from the drop's count on goes through.
        const tokenWrite = (sessionSyncCount: number, patch: RecordPatch) =>
          store.updateRecords({ ...key, patches: [patch], now: T0 + 6, modifiedBy: 'contract-test', limits, sessionSyncCount });
        await assert.rejects(tokenWrite(1, put('new', 'v')), serviceError('ResourceConflictException'));
        assert.equal((await tokenWrite(2, put('new', 'v'))).dataset.syncCount, 7);
        await write([remove('k5', 1), remove('k6', 1)], 7); // 8: five again; k3 (3) and k0 (4) go
        assert.deepEqual(await tombstones(), [['k4', 5], ['k5', 8], ['k6', 8]]);
        // 9: five again. Two must go, k4 (5) and one at 8; a SyncCount goes whole, so both at 8 go.
        await write([remove('k7', 1), remove('k8', 1)], 8);
        assert.deepEqual(await tombstones(), [['k7', 9], ['k8', 9]]);
        assert.equal(await dropped(), 8);
        // A deletion takes the tombstones with everything else (and their count: a dataset written again starts from
        // none); the mark stays, below the deletion's count.
        await store.deleteDataset(key, T0 + 9);
        assert.equal(await dropped(), 8);
        await write(['a', 'b', 'c', 'd', 'e'].map((k) => put(k, 'v')), 10); // 11
        await write(['a', 'b', 'c', 'd'].map((k) => remove(k, 11)), 11); // 12: four, at the bound
        assert.equal(await dropped(), 8);
        await write([remove('e', 11)], 12); // 13: five; the four at 12 go
        assert.deepEqual(await tombstones(), [['e', 13]]);
        assert.equal(await dropped(), 12);

        // The bound on their keys' bytes: 8 here, 6 kept after a drop.
        const other = datasetKey('by-bytes');
        const bytes = limitsWith({ tombstoneBytesPerDataset: 8 });
        await update(store, other, [put('aaaa', 'v'), put('bbbb', 'v'), put('cc', 'v')], T0, bytes);
        await update(store, other, [remove('aaaa', 1)], T0 + 1, bytes);
        await update(store, other, [remove('bbbb', 1)], T0 + 2, bytes);
        assert.equal(await dropped(other), 0, '8 bytes: at the bound');
        await update(store, other, [remove('cc', 1)], T0 + 3, bytes);
        assert.deepEqual(await tombstones(other), [['bbbb', 3], ['cc', 4]]);
        assert.equal(await dropped(other), 2);
        // A removing write's own tombstones stay, even past the bound alone: every older one goes instead.
        await update(store, other, [put('ten-bytes!', 'v')], T0 + 4, bytes);
        await update(store, other, [remove('ten-bytes!', 5)], T0 + 5, bytes);
        assert.deepEqual(await tombstones(other), [['ten-bytes!', 6]]);
        assert.equal(await dropped(other), 4);
      });

      dataTest('removing keys the dataset never held stores nothing and answers them removed at the request\'s SyncCount', async (store) => {
        await update(store, key, [put('keep', 'value')], T0);
        const made = Array.from({ length: 50 }, (_, i) => remove(`made-up-${i}`, 0));
        const result = await update(store, key, [...made, put('new', 'v')], T0 + 1);
        assert.deepEqual(result.records.map((r) => [r.key, r.value, r.syncCount]), [...made.map((p) => [p.key, null, 2]), ['new', 'v', 2]]);
        assert.equal(result.dataset.syncCount, 2);
        assert.deepEqual((await allRecords(store, key)).map((r) => [r.key, r.value, r.syncCount]), [['keep', 'value', 1], ['new', 'v', 2]]);
        // Only such removes: the dataset still takes the request's SyncCount; the key can be written from the
        // answered count (as amazon-cognito-js then does) or from 0.
        const only = await update(store, key, [remove('made-up-0', 0)], T0 + 2);
        assert.deepEqual(only.records.map((r) => [r.key, r.syncCount]), [['made-up-0', 3]]);
        assert.equal(only.dataset.syncCount, 3);
        assert.deepEqual((await allRecords(store, key)).length, 2);
        await update(store, key, [put('made-up-0', 'real', 3), put('made-up-1', 'real', 0)], T0 + 3);
        assert.deepEqual((await store.getRecords(key, ['made-up-0'])).get('made-up-0')?.syncCount, 4);
      });

      dataTest('dataStorage counts UTF-8 bytes of key plus value, across replaces', async (store) => {
        const multiKey = 'ключ';
        const multiValue = '値😀é';
        assert.equal(utf8(multiKey) + utf8(multiValue), 8 + 9);
        const first = await update(store, key, [put(multiKey, multiValue), put('a', 'bc')], T0);
        assert.equal(first.dataset.dataStorage, 17 + 3);
        assert.equal((await store.describeDataset(key))?.dataStorage, 20);
        await update(store, key, [put(multiKey, 'x', 1)], T0 + 1);
        assert.equal((await store.describeDataset(key))?.dataStorage, 8 + 1 + 3);
        assert.deepEqual((await allRecords(store, key)).find((r) => r.key === multiKey)?.value, 'x');
        const page = await store.listRecords(key, 0, undefined, 10);
        assert.ok(page.records.some((r) => r.key === 'a' && r.value === 'bc'));
      });

      dataTest('the datasets-per-identity limit refuses a new dataset with LimitExceededException and writes nothing', async (store) => {
        const limits = limitsWith({ datasetsPerIdentity: 2 });
        await update(store, datasetKey('one'), [put('k', 'v')], T0, limits);
        await update(store, datasetKey('two'), [put('k', 'v')], T0, limits);
        const before = await observe(store, datasetKey('three'));
        await assert.rejects(update(store, datasetKey('three'), [put('k', 'v')], T0 + 1, limits), serviceError('LimitExceededException'));
        assert.deepEqual(await observe(store, datasetKey('three')), before);
        assert.deepEqual((await store.listDatasets(POOL, IDENTITY, undefined, 10)).map((d) => d.datasetName), ['one', 'two']);
        // Existing datasets still take writes; other identities have their own allowance.
        await update(store, datasetKey('two'), [put('k', 'v2', 1)], T0 + 2, limits);
        await update(store, datasetKey('three', OTHER_IDENTITY), [put('k', 'v')], T0 + 2, limits);
        // Deleting a dataset frees its place.
        await store.deleteDataset(datasetKey('one'), T0 + 3);
        await update(store, datasetKey('three'), [put('k', 'v')], T0 + 4, limits);
        assert.deepEqual((await store.listDatasets(POOL, IDENTITY, undefined, 10)).map((d) => d.datasetName), ['three', 'two']);
      });

      dataTest('the dataset-bytes limit refuses a write that would exceed it and writes nothing', async (store) => {
        const limits = limitsWith({ datasetBytes: 100 });
        // 1 + 89 = 90 bytes
        await update(store, key, [put('a', 'x'.repeat(89))], T0, limits);
        const before = await observe(store, key);
        // 90 + 1 + 10 = 101 bytes: one over.
        await assert.rejects(update(store, key, [put('b', 'y'.repeat(10))], T0 + 1, limits), serviceError('LimitExceededException'));
        assert.deepEqual(await observe(store, key), before);
        // 90 + 1 + 9 = 100 bytes: exactly the limit.
        await update(store, key, [put('b', 'y'.repeat(9))], T0 + 2, limits);
        assert.equal((await store.describeDataset(key))?.dataStorage, 100);
        // A first write over the limit creates no dataset.
        const fresh = datasetKey('fresh');
        await assert.rejects(update(store, fresh, [put('k', 'é'.repeat(50))], T0 + 3, limits), serviceError('LimitExceededException'));
        assert.equal(await store.describeDataset(fresh), undefined);
        const page = await store.listRecords(fresh, 0, undefined, 10);
        assert.equal(page.dataset, undefined);
        assert.deepEqual(page.records, []);
      });

      dataTest('the records-per-dataset limit refuses a fourth live record and writes nothing', async (store) => {
        const limits = limitsWith({ recordsPerDataset: 3 });
        await update(store, key, [put('a', '1'), put('b', '1'), put('c', '1')], T0, limits);
        const before = await observe(store, key);
        await assert.rejects(update(store, key, [put('d', '1')], T0 + 1, limits), serviceError('LimitExceededException'));
        assert.deepEqual(await observe(store, key), before);
        // Replacing a record, or removing one to make room in the same request, stays within the limit.
        await update(store, key, [put('a', '2', 1)], T0 + 2, limits);
        await update(store, key, [remove('b', 1), put('d', '1')], T0 + 3, limits);
        assert.equal((await store.describeDataset(key))?.numRecords, 3);
        // A tombstone does not count as a live record.
        assert.deepEqual((await allRecords(store, key)).map((r) => r.key).sort(), ['a', 'b', 'c', 'd']);
      });

      describe('listRecords', () => {
        /** k1..k5 over four commits: k3@1, k4@2, k5@2, k1@3, k2@4 (a tombstone). */
        const seed = async (store: Store) => {
          await update(store, key, [put('k2', 'two'), put('k1', 'one'), put('k3', 'three')], T0);
          await update(store, key, [put('k5', 'five'), put('k4', 'four')], T0 + 1);
          await update(store, key, [put('k1', 'one again', 1)], T0 + 2);
          await update(store, key, [remove('k2', 1)], T0 + 3);
        };
        const pairs = (records: StoredRecord[]) => records.map((r) => [r.key, r.syncCount, r.value]);
        const everything = [['k3', 1, 'three'], ['k4', 2, 'four'], ['k5', 2, 'five'], ['k1', 3, 'one again'], ['k2', 4, null]];

        dataTest('returns the records newer than lastSyncCount ordered by (SyncCount, key), tombstones included', async (store) => {
          await seed(store);
          const page = await store.listRecords(key, 0, undefined, 100);
          assert.deepEqual(pairs(page.records), everything);
          assert.equal(page.next, undefined);
          assert.equal(page.deletedAtSyncCount, 0);
          assert.deepEqual(page.dataset, await store.describeDataset(key));
          assert.equal(page.dataset?.syncCount, 4);
          assert.deepEqual(pairs((await store.listRecords(key, 1, undefined, 100)).records), everything.slice(1));
          assert.deepEqual(pairs((await store.listRecords(key, 2, undefined, 100)).records), everything.slice(3));
          assert.deepEqual(pairs((await store.listRecords(key, 3, undefined, 100)).records), [['k2', 4, null]]);
          const upToDate = await store.listRecords(key, 4, undefined, 100);
          assert.deepEqual(upToDate.records, []);
          assert.equal(upToDate.next, undefined);
          assert.equal(upToDate.dataset?.syncCount, 4);
        });

        dataTest('pages with a cursor: every record exactly once, in order, for any page size', async (store) => {
          await seed(store);
          for (const limit of [1, 2, 3, 4, 5, 6]) {
            const seen: StoredRecord[] = [];
            let after = undefined as { syncCount: number; key: string } | undefined;
            let pages = 0;
            do {
              const page = await store.listRecords(key, 0, after, limit);
              assert.ok(page.records.length <= limit, `page of ${page.records.length} for limit ${limit}`);
              seen.push(...page.records);
              after = page.next;
              if (after) assert.deepEqual(after, { syncCount: page.records.at(-1)!.syncCount, key: page.records.at(-1)!.key });
              pages += 1;
              assert.ok(pages <= 10, 'pagination does not terminate');
            } while (after);
            assert.deepEqual(pairs(seen), everything, `limit ${limit}`);
            assert.equal(pages, Math.ceil(everything.length / limit), `pages for limit ${limit}`);
          }
        });

        dataTest('the cursor continues within one SyncCount and combines with lastSyncCount', async (store) => {
          await seed(store);
          const first = await store.listRecords(key, 1, undefined, 1);
          assert.deepEqual(pairs(first.records), [['k4', 2, 'four']]);
          assert.deepEqual(first.next, { syncCount: 2, key: 'k4' });
          const second = await store.listRecords(key, 1, first.next, 2);
          assert.deepEqual(pairs(second.records), [['k5', 2, 'five'], ['k1', 3, 'one again']]);
          const third = await store.listRecords(key, 1, second.next, 2);
          assert.deepEqual(pairs(third.records), [['k2', 4, null]]);
          assert.equal(third.next, undefined);
        });

        dataTest('a dataset never written lists no dataset and no records', async (store) => {
          const page = await store.listRecords(datasetKey('never'), 0, undefined, 10);
          assert.equal(page.dataset, undefined);
          assert.deepEqual(page.records, []);
          assert.equal(page.deletedAtSyncCount, 0);
          assert.equal(page.next, undefined);
          assert.deepEqual(page.mergedDatasetNames, []);
        });

        dataTest('records are scoped to their pool, identity and dataset', async (store) => {
          await update(store, key, [put('mine', '1')], T0);
          await update(store, datasetKey('settings', OTHER_IDENTITY), [put('theirs', '1')], T0);
          await update(store, datasetKey('settings', IDENTITY, OTHER_POOL), [put('other-pool', '1')], T0);
          await update(store, datasetKey('other'), [put('other-dataset', '1')], T0);
          assert.deepEqual((await allRecords(store, key)).map((r) => r.key), ['mine']);
        });
      });

      dataTest('deleteDataset returns the old metadata; the dataset is gone, and the deletion took the next SyncCount (deletedAtSyncCount)', async (store) => {
        await update(store, key, [put('a', '1'), put('b', '2')], T0);
        await update(store, key, [put('a', '3', 1)], T0 + 1);
        const before = await store.describeDataset(key);
        assert.deepEqual(await store.deleteDataset(key, T0 + 2), before);
        assert.equal(await store.describeDataset(key), undefined);
        const page = await store.listRecords(key, 0, undefined, 10);
        assert.equal(page.dataset, undefined);
        assert.deepEqual(page.records, []);
        assert.equal(page.deletedAtSyncCount, 3, 'the dataset was at 2');
        assert.equal(page.next, undefined);
        assert.equal(await store.deleteDataset(key, T0 + 3), undefined);
        assert.equal(await store.deleteDataset(datasetKey('never'), T0 + 3), undefined);
        assert.deepEqual(await store.listDatasets(POOL, IDENTITY, undefined, 10), []);
        const usage = await store.describeIdentityUsage(POOL, IDENTITY);
        assert.equal(usage.datasetCount, 0);
        assert.equal(usage.dataStorage, 0);
      });

      dataTest('a dataset written again after deletion starts empty and continues SyncCount above the deleted count', async (store) => {
        await update(store, key, [put('a', 'old'), put('b', 'old')], T0);
        await update(store, key, [put('a', 'older', 1)], T0 + 1);
        await update(store, key, [put('c', 'old')], T0 + 2);
        await store.deleteDataset(key, T0 + 3);
        // The old records are gone: a patch naming an old SyncCount conflicts.
        await assert.rejects(update(store, key, [put('a', 'new', 2)], T0 + 4), serviceError('ResourceConflictException'));
        // 3 was the last write, 4 the deletion: a device that pulled at 3 and writes new keys sees 5, not 3 + 1.
        const recreated = await update(store, key, [put('a', 'new')], T0 + 5);
        assert.equal(recreated.dataset.syncCount, 5);
        assert.deepEqual(recreated.records.map((r) => [r.key, r.value, r.syncCount]), [['a', 'new', 5]]);
        const dataset = await store.describeDataset(key);
        assert.equal(dataset?.syncCount, 5);
        assert.equal(dataset?.numRecords, 1);
        assert.equal(dataset?.dataStorage, utf8('anew'));
        assert.equal(dataset?.creationDate, T0 + 5);
        const page = await store.listRecords(key, 0, undefined, 10);
        assert.deepEqual(page.records.map((r) => [r.key, r.value, r.syncCount]), [['a', 'new', 5]]);
        assert.equal(page.deletedAtSyncCount, 4);
        // A client synced before the deletion asks from its old count and gets only the new life's records.
        assert.deepEqual((await store.listRecords(key, 2, undefined, 10)).records.map((r) => r.key), ['a']);
      });

      dataTest('listDatasets lists live datasets of one identity by name, paged with afterName', async (store) => {
        for (const name of ['delta', 'alpha', 'charlie', 'bravo', 'echo']) await update(store, datasetKey(name), [put('k', name)], T0);
        await update(store, datasetKey('zulu', OTHER_IDENTITY), [put('k', 'v')], T0);
        await update(store, datasetKey('yankee', IDENTITY, OTHER_POOL), [put('k', 'v')], T0);
        await store.deleteDataset(datasetKey('charlie'), T0 + 1);
        const names = async (afterName: string | undefined, limit: number) => (await store.listDatasets(POOL, IDENTITY, afterName, limit)).map((d) => d.datasetName);
        assert.deepEqual(await names(undefined, 10), ['alpha', 'bravo', 'delta', 'echo']);
        assert.deepEqual(await names(undefined, 2), ['alpha', 'bravo']);
        assert.deepEqual(await names('bravo', 2), ['delta', 'echo']);
        assert.deepEqual(await names('echo', 2), []);
        assert.deepEqual(await names('b', 10), ['bravo', 'delta', 'echo']);
        assert.deepEqual((await store.listDatasets(POOL, IDENTITY, undefined, 1))[0], await store.describeDataset(datasetKey('alpha')));
        assert.deepEqual(await store.listDatasets(POOL, 'us-east-1:33333333-3333-4333-8333-333333333333', undefined, 10), []);
      });
    });

    describe('outbox', () => {
      dataTest('advanceOutbox replaces an entry with its follow-ups only while the datasets it read are unchanged', async (store) => {
        const key = datasetKey('snapshot');
        await update(store, key, [put('a', '1')]);
        await store.enqueueOutbox([{ kind: 'bulk-publish', partitionKey: 'job', payload: { step: 1 }, bulkPoolId: POOL }], T0);
        const [claimed] = await store.claimOutbox('contract', T0, 30_000, 10);
        const follow = [{ kind: 'stream' as const, partitionKey: 'snapshot', payload: { snapshot: true }, bulkPoolId: POOL }];
        assert.equal(await store.advanceOutbox(claimed!.outboxId, follow, T0, [{ ...key, syncCount: 0 }]), false, 'read at 0, now at 1');
        assert.equal(await store.countBulkOutbox(POOL, 'bulk-publish'), 1, 'the entry stays');
        assert.equal(await store.countBulkOutbox(POOL, 'stream'), 0, 'nothing added');
        assert.equal(await store.advanceOutbox(claimed!.outboxId, follow, T0, [{ ...key, syncCount: 1 }, { ...datasetKey('never-written'), syncCount: 0 }]), false, 'a dataset that does not exist is not at 0');
        assert.equal(await store.advanceOutbox(claimed!.outboxId, follow, T0, [{ ...key, syncCount: 1 }]), true);
        assert.equal(await store.countBulkOutbox(POOL, 'bulk-publish'), 0);
        assert.equal(await store.countBulkOutbox(POOL, 'stream'), 1);
      });

      storeTest('stream payloads are kept until they expire, byte for byte, then dropped', async (store) => {
        const large = JSON.stringify([{ key: 'k', value: '"\u00e9\ud83d\ude00'.repeat(100_000) }]);
        assert.equal(await store.putStreamPayload(1, 'payload-1', large, T0 + 1000), 'payload-1');
        assert.equal(await store.putStreamPayload(2, 'payload-2', '[]', T0 + 2000), 'payload-2');
        // Asked again for the same outbox entry (its delivery failed and is tried again): the payload it has.
        assert.equal(await store.putStreamPayload(1, 'payload-1-again', large, T0 + 5000), 'payload-1');
        assert.equal(await store.getStreamPayload('payload-1-again', T0), undefined);
        assert.equal(await store.getStreamPayload('payload-1', T0), large);
        assert.equal(await store.getStreamPayload('payload-1', T0 + 1000), undefined, 'expired at its time');
        assert.equal(await store.getStreamPayload('unknown', T0), undefined);
        assert.equal(await store.dropExpiredStreamPayloads(T0 + 1500), 1);
        assert.equal(await store.getStreamPayload('payload-2', T0 + 1500), '[]');
        assert.equal(await store.dropExpiredStreamPayloads(T0 + 1500), 0);
      });
    });

    describe('usage', () => {
      storeTest('identity and pool usage count live datasets, their bytes and the committed sync sessions', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentityPool(poolRecord(OTHER_POOL), 10);
        await store.createIdentityPool(poolRecord('us-east-1:00000000-0000-4000-8000-000000000000'), 10);
        // Identity 1: 'a' (two sessions), 'b' (one session, later deleted), 'c' (one session).
        await update(store, datasetKey('a'), [put('k1', 'ü')], T0 + 10);
        await update(store, datasetKey('a'), [put('k2', 'vv')], T0 + 20);
        await update(store, datasetKey('b'), [put('gone', 'x'.repeat(50))], T0 + 30);
        await update(store, datasetKey('c'), [put('k', 'v')], T0 + 15);
        // Identity 2: 'a' (one session). A refused write is no session.
        await update(store, datasetKey('a', OTHER_IDENTITY), [put('key', 'value')], T0 + 40);
        await assert.rejects(update(store, datasetKey('a', OTHER_IDENTITY), [put('key', 'stale', 0)], T0 + 50), serviceError('ResourceConflictException'));
        // Another pool: counted only there.
        await update(store, datasetKey('a', IDENTITY, OTHER_POOL), [put('elsewhere', 'x'.repeat(100))], T0 + 60);
        await store.deleteDataset(datasetKey('b'), T0 + 35);

        const bytesA = utf8('k1ü') + utf8('k2vv');
        const bytesC = utf8('kv');
        assert.deepEqual(await store.describeIdentityUsage(POOL, IDENTITY), {
          identityPoolId: POOL,
          identityId: IDENTITY,
          datasetCount: 2,
          dataStorage: bytesA + bytesC,
          lastModifiedDate: T0 + 20,
        });
        assert.deepEqual(await store.describeIdentityUsage(POOL, OTHER_IDENTITY), {
          identityPoolId: POOL,
          identityId: OTHER_IDENTITY,
          datasetCount: 1,
          dataStorage: utf8('keyvalue'),
          lastModifiedDate: T0 + 40,
        });
        const poolUsage = await store.describeIdentityPoolUsage(POOL);
        assert.equal(poolUsage.identityPoolId, POOL);
        assert.equal(poolUsage.syncSessionsCount, 5);
        assert.equal(poolUsage.dataStorage, bytesA + bytesC + utf8('keyvalue'));
        assert.equal(poolUsage.lastModifiedDate, T0 + 40);
        assert.deepEqual(await store.describeIdentityPoolUsage(OTHER_POOL), {
          identityPoolId: OTHER_POOL,
          syncSessionsCount: 1,
          dataStorage: utf8('elsewhere') + 100,
          lastModifiedDate: T0 + 60,
        });
        assert.deepEqual(await store.describeIdentityUsage(POOL, 'us-east-1:33333333-3333-4333-8333-333333333333'), {
          identityPoolId: POOL,
          identityId: 'us-east-1:33333333-3333-4333-8333-333333333333',
          datasetCount: 0,
          dataStorage: 0,
          lastModifiedDate: undefined,
        });

        const empty = { identityPoolId: 'us-east-1:00000000-0000-4000-8000-000000000000', syncSessionsCount: 0, dataStorage: 0, lastModifiedDate: undefined };
        assert.deepEqual(await store.describeIdentityPoolUsage(empty.identityPoolId), empty);
        const listed = await store.listIdentityPoolUsage(undefined, 10);
        assert.deepEqual(listed.map((usage) => usage.identityPoolId), [empty.identityPoolId, POOL, OTHER_POOL]);
        assert.deepEqual(listed[0], empty);
        assert.deepEqual(listed[1], poolUsage);
        assert.deepEqual(listed[2], await store.describeIdentityPoolUsage(OTHER_POOL));
        assert.deepEqual((await store.listIdentityPoolUsage(undefined, 2)).map((usage) => usage.identityPoolId), [empty.identityPoolId, POOL]);
        assert.deepEqual(await store.listIdentityPoolUsage(POOL, 2), [listed[2]]);
        assert.deepEqual(await store.listIdentityPoolUsage(OTHER_POOL, 2), []);
      });
    });

    describe('devices and subscriptions', () => {
      /** A dataTest whose store also holds IDENTITY and OTHER_IDENTITY in POOL: devices belong to an identity that exists. */
      const deviceTest = (title: string, body: (store: Store) => Promise<void>) =>
        dataTest(title, async (store) => {
          for (const identityId of [IDENTITY, OTHER_IDENTITY]) await store.createIdentity(identityRecord(identityId));
          await body(store);
        });
      /** Registers devices of IDENTITY by id, each with a token of its own. */
      const registered = async (store: Store, ...deviceIds: string[]) => {
        for (const deviceId of deviceIds) await store.registerDevice(device(deviceId, { token: `token-of-${deviceId}` }));
      };

      deviceTest('registerDevice keeps one id per (identity, platform, token)', async (store) => {
        const first = await store.registerDevice(device('device-1'));
        assert.deepEqual(first, device('device-1'));
        const again = await store.registerDevice(device('device-2', { creationDate: T0 + 1000 }));
        assert.deepEqual(again, device('device-1'));
        assert.deepEqual(await store.getDevice(POOL, IDENTITY, 'device-1'), device('device-1'));
        assert.equal(await store.getDevice(POOL, IDENTITY, 'device-2'), undefined);

        assert.equal((await store.registerDevice(device('device-3', { token: 'token-2' }))).deviceId, 'device-3');
        assert.equal((await store.registerDevice(device('device-4', { platform: 'APNS' }))).deviceId, 'device-4');
        assert.equal((await store.registerDevice(device('device-5', { identityId: OTHER_IDENTITY }))).deviceId, 'device-5');
        assert.equal(await store.getDevice(POOL, OTHER_IDENTITY, 'device-1'), undefined);
        assert.equal(await store.getDevice(OTHER_POOL, IDENTITY, 'device-1'), undefined);
      });

      deviceTest('registerDevice beyond maxDevices unregisters the devices registered longest ago, with their subscriptions', async (store) => {
        for (let i = 1; i <= 3; i++) await store.registerDevice(device(`device-${i}`, { token: `token-${i}`, creationDate: T0 + i }), 3);
        await store.subscribe(datasetKey('settings'), 'device-1', T0);
        await store.subscribe(datasetKey('settings'), 'device-2', T0);
        // Registered again, an old device is kept and nothing goes.
        assert.equal((await store.registerDevice(device('device-x', { token: 'token-1', creationDate: T0 + 10 }), 3)).deviceId, 'device-1');
        assert.ok(await store.getDevice(POOL, IDENTITY, 'device-3'));
        await store.registerDevice(device('device-4', { token: 'token-4', creationDate: T0 + 20 }), 3);
        assert.equal(await store.getDevice(POOL, IDENTITY, 'device-1'), undefined);
        assert.ok(await store.getDevice(POOL, IDENTITY, 'device-2'));
        assert.ok(await store.getDevice(POOL, IDENTITY, 'device-4'));
        assert.deepEqual(await store.listSubscriptions(datasetKey('settings')), ['device-2']);
        // Other identities' devices are not counted.
        assert.equal((await store.registerDevice(device('device-5', { identityId: OTHER_IDENTITY }), 3)).deviceId, 'device-5');
        assert.ok(await store.getDevice(POOL, IDENTITY, 'device-2'));
      });

      deviceTest('subscribe refuses a device holding maxSubscriptions other subscriptions; one it holds stays idempotent', async (store) => {
        await registered(store, 'device-1', 'device-2');
        assert.equal(await store.subscribe(datasetKey('a'), 'device-1', T0, 2), true);
        assert.equal(await store.subscribe(datasetKey('b'), 'device-1', T0, 2), true);
        assert.equal(await store.subscribe(datasetKey('b'), 'device-1', T0 + 1, 2), true);
        assert.equal(await store.subscribe(datasetKey('c'), 'device-1', T0, 2), false);
        assert.deepEqual(await store.listSubscriptions(datasetKey('c')), []);
        assert.equal(await store.subscribe(datasetKey('c'), 'device-2', T0, 2), true);
        await store.unsubscribe(datasetKey('a'), 'device-1');
        assert.equal(await store.subscribe(datasetKey('c'), 'device-1', T0, 2), true);
      });

      deviceTest('subscribe and unsubscribe are idempotent and scoped to one dataset', async (store) => {
        const key = datasetKey('settings');
        await registered(store, 'device-a', 'device-b');
        await store.subscribe(key, 'device-b', T0);
        await store.subscribe(key, 'device-b', T0 + 1);
        await store.subscribe(key, 'device-a', T0 + 2);
        assert.deepEqual((await store.listSubscriptions(key)).sort(), ['device-a', 'device-b']);
        assert.deepEqual(await store.listSubscriptions(datasetKey('other')), []);
        assert.deepEqual(await store.listSubscriptions(datasetKey('settings', OTHER_IDENTITY)), []);
        await store.unsubscribe(key, 'device-b');
        await store.unsubscribe(key, 'device-b');
        await store.unsubscribe(key, 'never-subscribed');
        assert.deepEqual(await store.listSubscriptions(key), ['device-a']);
        await store.unsubscribe(key, 'device-a');
        assert.deepEqual(await store.listSubscriptions(key), []);
      });

      deviceTest('registerDevice and subscribe refuse an identity deleted or merged away since the request read it, and a device no longer registered', async (store) => {
        await registered(store, 'device-a');
        await store.mergeIdentities(POOL, IDENTITY, OTHER_IDENTITY, T0 + 10, RULE);
        // The device moved with the merge; the merged-away identity takes no new one.
        await assert.rejects(store.registerDevice(device('device-late', { token: 'late' })), serviceError('ResourceNotFoundException'));
        await assert.rejects(store.subscribe(datasetKey('settings'), 'device-a', T0), serviceError('ResourceNotFoundException'));
        assert.ok(await store.getDevice(POOL, OTHER_IDENTITY, 'device-a'));
        await assert.rejects(store.subscribe(datasetKey('settings', OTHER_IDENTITY), 'never-registered', T0), serviceError('ResourceNotFoundException'));
        assert.equal(await store.subscribe(datasetKey('settings', OTHER_IDENTITY), 'device-a', T0), true);
        assert.equal(await store.deleteIdentity(OTHER_IDENTITY), true);
        await assert.rejects(store.registerDevice(device('device-gone', { identityId: OTHER_IDENTITY })), serviceError('ResourceNotFoundException'));
        assert.equal(await store.getDevice(POOL, OTHER_IDENTITY, 'device-gone'), undefined);
        assert.deepEqual(await store.listSubscriptions(datasetKey('settings', OTHER_IDENTITY)), []);
      });
    });

    describe('identities', () => {
      const THIRD_IDENTITY = 'us-east-1:33333333-3333-4333-8333-333333333333';

      storeTest('createIdentity without logins reads back with none; an unknown identity is undefined', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY, [], POOL, T0 + 5));
        assert.deepEqual(await store.getIdentity(IDENTITY), identityRecord(IDENTITY, [], POOL, T0 + 5));
        assert.equal(await store.getIdentity(OTHER_IDENTITY), undefined);
      });

      storeTest('createIdentity links its logins; getIdentity lists them sorted by provider, then user', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const logins = [login('provider-b', 'user-1'), login('provider-a', 'user-2'), login('provider-b', 'user-0'), login('provider-a', 'user-1')];
        await store.createIdentity(identityRecord(IDENTITY, logins));
        const sorted = [login('provider-a', 'user-1'), login('provider-a', 'user-2'), login('provider-b', 'user-0'), login('provider-b', 'user-1')];
        assert.deepEqual(await store.getIdentity(IDENTITY), identityRecord(IDENTITY, sorted));
        for (const each of logins) assert.equal(await store.findIdentityByLogin(POOL, each), IDENTITY);
        // A login linked later takes its place in the order.
        await store.linkLogins(POOL, IDENTITY, [login('provider-a', 'user-0')], T0 + 1, RULE);
        assert.deepEqual((await store.getIdentity(IDENTITY))?.logins, [login('provider-a', 'user-0'), ...sorted]);
      });

      storeTest('findIdentityByLogin is scoped to the pool: the same login in two pools belongs to two identities', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentityPool(poolRecord(OTHER_POOL), 10);
        const shared = login('login.example.app', 'user-1');
        await store.createIdentity(identityRecord(IDENTITY, [shared], POOL));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [shared], OTHER_POOL));
        assert.equal(await store.findIdentityByLogin(POOL, shared), IDENTITY);
        assert.equal(await store.findIdentityByLogin(OTHER_POOL, shared), OTHER_IDENTITY);
        assert.deepEqual((await store.getIdentity(IDENTITY))?.logins, [shared]);
        assert.deepEqual((await store.getIdentity(OTHER_IDENTITY))?.logins, [shared]);
        // Both halves of the login must match.
        assert.equal(await store.findIdentityByLogin(POOL, login('login.example.app', 'user-2')), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, login('other.example.app', 'user-1')), undefined);
        assert.equal(await store.findIdentityByLogin('us-east-1:00000000-0000-4000-8000-000000000003', shared), undefined);
      });

      storeTest('linkLogin links a new login and updates lastModifiedDate; linking it again to the same identity changes nothing', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY));
        const linked = login('login.example.app', 'user-1');
        assert.equal(await store.linkLogins(POOL, IDENTITY, [linked], T0 + 10, RULE), undefined);
        const afterLink = { ...identityRecord(IDENTITY, [linked]), lastModifiedDate: T0 + 10 };
        assert.deepEqual(await store.getIdentity(IDENTITY), afterLink);
        assert.equal(await store.findIdentityByLogin(POOL, linked), IDENTITY);

        assert.equal(await store.linkLogins(POOL, IDENTITY, [linked], T0 + 20, RULE), undefined);
        assert.deepEqual(await store.getIdentity(IDENTITY), afterLink);
      });

      storeTest('linkLogin reports the owner and changes nothing when the login belongs to another identity of the pool', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentityPool(poolRecord(OTHER_POOL), 10);
        const owned = login('login.example.app', 'user-1');
        await store.createIdentity(identityRecord(IDENTITY, [owned]));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [login('login.example.app', 'user-2')]));
        const ownerBefore = await store.getIdentity(IDENTITY);
        const otherBefore = await store.getIdentity(OTHER_IDENTITY);

        assert.deepEqual(await store.linkLogins(POOL, OTHER_IDENTITY, [owned], T0 + 10, RULE), { ownedBy: IDENTITY });
        // All or none: a free login given with it is not linked either.
        const free = login('oidc.example', 'user-9');
        assert.deepEqual(await store.linkLogins(POOL, OTHER_IDENTITY, [free, owned], T0 + 10, RULE), { ownedBy: IDENTITY });
        assert.equal(await store.findIdentityByLogin(POOL, free), undefined);

        assert.deepEqual(await store.getIdentity(IDENTITY), ownerBefore);
        assert.deepEqual(await store.getIdentity(OTHER_IDENTITY), otherBefore);
        assert.equal(await store.findIdentityByLogin(POOL, owned), IDENTITY);

        // In another pool the same login is free.
        await store.createIdentity(identityRecord(THIRD_IDENTITY, [], OTHER_POOL));
        assert.equal(await store.linkLogins(OTHER_POOL, THIRD_IDENTITY, [owned], T0 + 20, RULE), undefined);
        assert.equal(await store.findIdentityByLogin(OTHER_POOL, owned), THIRD_IDENTITY);
        assert.equal(await store.findIdentityByLogin(POOL, owned), IDENTITY);
      });

      storeTest('createIdentity with a login another identity holds creates nothing and reports that identity', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const owned = login('login.example.app', 'user-1');
        assert.equal(await store.createIdentity(identityRecord(IDENTITY, [owned])), undefined);
        assert.deepEqual(await store.createIdentity(identityRecord(OTHER_IDENTITY, [login('oidc.example', 'user-9'), owned])), { ownedBy: IDENTITY });
        assert.equal(await store.getIdentity(OTHER_IDENTITY), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, login('oidc.example', 'user-9')), undefined);
        assert.deepEqual(idsOfIdentities(await store.listIdentities(POOL, undefined, 10)), [IDENTITY]);
      });

      storeTest('one user per provider but the developer one: linkLogins and mergeIdentities refuse a second, and change nothing', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const alice = login('oidc.example', 'alice');
        const bob = login('oidc.example', 'bob');
        await store.createIdentity(identityRecord(IDENTITY, [alice, login('provider-a', 'dev-1')]));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [bob]));
        const before = await store.getIdentity(IDENTITY);
        const carol = login('oidc.example', 'carol');
        assert.deepEqual(await store.linkLogins(POOL, IDENTITY, [login('provider-b', 'x'), carol], T0 + 10, RULE), { providerInUse: 'oidc.example' });
        assert.deepEqual(await store.getIdentity(IDENTITY), before, 'nothing linked');
        assert.equal(await store.findIdentityByLogin(POOL, carol), undefined);
        await assert.rejects(store.mergeIdentities(POOL, OTHER_IDENTITY, IDENTITY, T0 + 10, RULE), { name: 'ResourceConflictException', message: /Two different users of oidc\.example/ });
        assert.deepEqual(await store.getIdentity(IDENTITY), before, 'nothing merged');
        assert.equal(await store.findIdentityByLogin(POOL, bob), OTHER_IDENTITY);
        // Several users of the developer provider are fine, and so is linking a user the identity already holds.
        assert.equal(await store.linkLogins(POOL, IDENTITY, [login('provider-a', 'dev-2'), alice], T0 + 20, RULE), undefined);
        // Merging a pair that shares no provider but the developer one.
        await store.createIdentity(identityRecord(THIRD_IDENTITY, [login('provider-a', 'dev-3')]));
        await store.mergeIdentities(POOL, THIRD_IDENTITY, IDENTITY, T0 + 30, RULE);
        assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'dev-3')), IDENTITY);
      });

      storeTest('linkLogins with holdsOnly links only while the identity holds nothing beyond what the caller read', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY));
        const alice = login('oidc.example', 'alice');
        const mallory = login('other.example', 'mallory');
        // Two users read the guest with no login; the first links, the second finds it taken.
        assert.equal(await store.linkLogins(POOL, IDENTITY, [alice], T0 + 10, RULE, { holdsOnly: [] }), undefined);
        assert.deepEqual(await store.linkLogins(POOL, IDENTITY, [mallory], T0 + 20, RULE, { holdsOnly: [] }), { changedMeanwhile: true });
        assert.equal(await store.findIdentityByLogin(POOL, mallory), undefined);
        // Linking again what it holds, or with what it holds expected, is fine.
        assert.equal(await store.linkLogins(POOL, IDENTITY, [alice], T0 + 30, RULE, { holdsOnly: [] }), undefined);
        assert.equal(await store.linkLogins(POOL, IDENTITY, [mallory], T0 + 30, RULE, { holdsOnly: [alice] }), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, mallory), IDENTITY);
      });

      storeTest('linkLogins with stillHolds does not link a login back that was unlinked since the caller found the identity by it', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const user = login('provider-a', 'user-1');
        await store.createIdentity(identityRecord(IDENTITY, [user]));
        assert.equal(await store.linkLogins(POOL, IDENTITY, [user], T0 + 10, RULE, { stillHolds: [user] }), undefined);
        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-a', 'user-1', T0 + 20), 1);
        assert.deepEqual(await store.linkLogins(POOL, IDENTITY, [user], T0 + 30, RULE, { stillHolds: [user] }), { changedMeanwhile: true });
        assert.equal(await store.findIdentityByLogin(POOL, user), undefined);
        // Without the expectation (a caller naming the identity), it is linked again.
        assert.equal(await store.linkLogins(POOL, IDENTITY, [user], T0 + 40, RULE), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, user), IDENTITY);
        // Merged away meanwhile, the identity is gone (ResourceNotFoundException), not "changed": the user moved with it.
        await store.createIdentity(identityRecord(OTHER_IDENTITY));
        await store.mergeIdentities(POOL, IDENTITY, OTHER_IDENTITY, T0 + 50, RULE);
        await assert.rejects(store.linkLogins(POOL, IDENTITY, [user], T0 + 60, RULE, { stillHolds: [user] }), serviceError('ResourceNotFoundException'));
        assert.equal(await store.findIdentityByLogin(POOL, user), OTHER_IDENTITY);
      });

      storeTest('mergeIdentities with an identity deleted meanwhile: ResourceNotFoundException, the other left as it was', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY, [login('oidc.example', 'alice')]));
        await store.createIdentity(identityRecord(OTHER_IDENTITY));
        await update(store, datasetKey('guest-data', OTHER_IDENTITY), [put('k', 'v')]);
        assert.equal(await store.deleteIdentity(IDENTITY), true);
        await assert.rejects(store.mergeIdentities(POOL, OTHER_IDENTITY, IDENTITY, T0 + 10, RULE), serviceError('ResourceNotFoundException'));
        assert.ok(await store.getIdentity(OTHER_IDENTITY));
        assert.equal((await store.describeDataset(datasetKey('guest-data', OTHER_IDENTITY)))?.syncCount, 1);
      });

      storeTest('createIdentity in a pool deleted meanwhile: ResourceNotFoundException, nothing created', async (store) => {
        await assert.rejects(store.createIdentity(identityRecord(IDENTITY, [login('oidc.example', 'alice')])), serviceError('ResourceNotFoundException'));
        assert.equal(await store.getIdentity(IDENTITY), undefined);
      });

      storeTest('a login linked or credentials saved for an identity deleted meanwhile: ResourceNotFoundException, nothing left behind', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY));
        assert.equal(await store.deleteIdentity(IDENTITY), true);
        const late = login('login.example.app', 'late-user');
        await assert.rejects(store.linkLogins(POOL, IDENTITY, [late], T0 + 10, RULE), serviceError('ResourceNotFoundException'));
        await assert.rejects(store.saveIssuedCredentials(issued('ASIALATE')), serviceError('ResourceNotFoundException'));
        assert.equal(await store.findIdentityByLogin(POOL, late), undefined, 'the user can sign in again');
        assert.equal(await store.getIssuedCredentials('ASIALATE'), undefined);
      });

      storeTest('unlinkLogins removes one user\'s login or all of a provider\'s, returns how many went, and 0 when nothing matched', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY, [login('provider-a', 'user-1'), login('provider-a', 'user-2'), login('provider-a', 'user-3'), login('provider-b', 'user-1')]));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [login('provider-a', 'user-9')]));
        const otherBefore = await store.getIdentity(OTHER_IDENTITY);

        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-a', 'user-2', T0 + 10), 1);
        assert.deepEqual(await store.getIdentity(IDENTITY), {
          ...identityRecord(IDENTITY, [login('provider-a', 'user-1'), login('provider-a', 'user-3'), login('provider-b', 'user-1')]),
          lastModifiedDate: T0 + 10,
        });
        assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'user-2')), undefined);

        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-a', undefined, T0 + 20), 2);
        const afterProvider = { ...identityRecord(IDENTITY, [login('provider-b', 'user-1')]), lastModifiedDate: T0 + 20 };
        assert.deepEqual(await store.getIdentity(IDENTITY), afterProvider);
        assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'user-1')), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'user-3')), undefined);

        // Nothing left to unlink: 0, and the identity is as it was.
        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-a', undefined, T0 + 30), 0);
        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-a', 'user-1', T0 + 30), 0);
        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-b', 'user-2', T0 + 30), 0);
        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-c', undefined, T0 + 30), 0);
        assert.equal(await store.unlinkLogins(THIRD_IDENTITY, 'provider-a', undefined, T0 + 30), 0);
        assert.deepEqual(await store.getIdentity(IDENTITY), afterProvider);

        // Another identity's login of the same provider stays.
        assert.deepEqual(await store.getIdentity(OTHER_IDENTITY), otherBefore);
        assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'user-9')), OTHER_IDENTITY);

        // An unlinked login is free for another identity.
        assert.equal(await store.linkLogins(POOL, OTHER_IDENTITY, [login('provider-a', 'user-1')], T0 + 40, RULE), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'user-1')), OTHER_IDENTITY);
      });

      storeTest('unlinking an identity\'s last login makes it inaccessible and revokes its credentials; a new link or a merge makes it accessible', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY, [login('provider-a', 'user-1'), login('provider-b', 'user-1')]));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [login('provider-a', 'user-9')]));
        await store.createIdentity(identityRecord(THIRD_IDENTITY));
        await store.saveIssuedCredentials(issued('ASIAUNLINKED', IDENTITY));
        await store.saveIssuedCredentials(issued('ASIAOTHERKEPT', OTHER_IDENTITY));

        // One login left: still accessible, credentials kept.
        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-a', undefined, T0 + 10), 1);
        assert.equal((await store.getIdentity(IDENTITY))!.inaccessible, undefined);
        assert.ok(await store.getIssuedCredentials('ASIAUNLINKED'));

        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-b', 'user-1', T0 + 20), 1);
        assert.deepEqual(await store.getIdentity(IDENTITY), { ...identityRecord(IDENTITY), lastModifiedDate: T0 + 20, inaccessible: true, tokensNotBefore: T0 + 20 });
        assert.equal(await store.getIssuedCredentials('ASIAUNLINKED'), undefined);
        assert.ok(await store.getIssuedCredentials('ASIAOTHERKEPT'));
        assert.equal((await store.listIdentities(POOL, undefined, 10)).find((i) => i.identityId === IDENTITY)!.inaccessible, true);
        // An identity that never had a login is unauthenticated, not inaccessible.
        assert.equal((await store.getIdentity(THIRD_IDENTITY))!.inaccessible, undefined);

        assert.equal(await store.linkLogins(POOL, IDENTITY, [login('provider-c', 'user-1')], T0 + 30, RULE), undefined);
        assert.equal((await store.getIdentity(IDENTITY))!.inaccessible, undefined);
        assert.equal((await store.getIdentity(IDENTITY))!.tokensNotBefore, T0 + 20, 'tokens from before the unlink stay void');

        // A merge that brings logins into an inaccessible identity makes it accessible too.
        assert.equal(await store.unlinkLogins(IDENTITY, 'provider-c', undefined, T0 + 40), 1);
        assert.equal((await store.getIdentity(IDENTITY))!.inaccessible, true);
        await store.mergeIdentities(POOL, OTHER_IDENTITY, IDENTITY, T0 + 50, RULE);
        assert.deepEqual(await store.getIdentity(IDENTITY), { ...identityRecord(IDENTITY, [login('provider-a', 'user-9')]), lastModifiedDate: T0 + 50, tokensNotBefore: T0 + 40 });
      });

      storeTest('listIdentities orders by id, pages with afterId and lists only the pool\'s identities', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentityPool(poolRecord(OTHER_POOL), 10);
        const ids = ['us-east-1:c0', 'us-east-1:a0', 'us-east-1:e0', 'us-east-1:b0', 'us-east-1:d0'];
        for (const id of ids) await store.createIdentity(identityRecord(id));
        await store.createIdentity(identityRecord('us-east-1:b5', [], OTHER_POOL));
        await store.linkLogins(POOL, 'us-east-1:a0', [login('login.example.app', 'user-1')], T0 + 1, RULE);
        const idsOf = (identities: IdentityRecord[]) => identities.map((identity) => identity.identityId);
        const list = (afterId: string | undefined, limit: number, identityPoolId = POOL) => store.listIdentities(identityPoolId, afterId, limit);

        assert.deepEqual(idsOf(await list(undefined, 10)), [...ids].sort());
        assert.deepEqual(idsOf(await list(undefined, 2)), ['us-east-1:a0', 'us-east-1:b0']);
        assert.deepEqual(idsOf(await list('us-east-1:b0', 2)), ['us-east-1:c0', 'us-east-1:d0']);
        assert.deepEqual(idsOf(await list('us-east-1:d0', 2)), ['us-east-1:e0']);
        assert.deepEqual(idsOf(await list('us-east-1:e0', 2)), []);
        // afterId need not be an identity of the pool.
        assert.deepEqual(idsOf(await list('us-east-1:b5', 10)), ['us-east-1:c0', 'us-east-1:d0', 'us-east-1:e0']);
        // Listed identities carry their logins, as getIdentity shows them.
        const [first] = await list(undefined, 1);
        assert.deepEqual(first, await store.getIdentity('us-east-1:a0'));
        assert.deepEqual(first?.logins, [login('login.example.app', 'user-1')]);

        assert.deepEqual(await list(undefined, 10, OTHER_POOL), [identityRecord('us-east-1:b5', [], OTHER_POOL)]);
        assert.deepEqual(await list(undefined, 10, 'us-east-1:00000000-0000-4000-8000-000000000003'), []);
      });

      storeTest('deleteIdentity removes the identity with its logins, credentials, datasets, records, devices and subscriptions, and nothing of other identities', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        const mine = login('login.example.app', 'user-1');
        const theirs = login('login.example.app', 'user-2');
        await store.createIdentity(identityRecord(IDENTITY, [mine]));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [theirs]));
        for (const identityId of [IDENTITY, OTHER_IDENTITY]) {
          const key = datasetKey('settings', identityId);
          await update(store, key, [put('k', 'v'), put('gone', 'x')], T0);
          await update(store, key, [remove('gone', 1)], T0 + 1);
          await update(store, datasetKey('scores', identityId), [put('k', 'v')], T0);
          await store.registerDevice(device(`device-${identityId}`, { identityId }));
          await store.subscribe(key, `device-${identityId}`, T0);
          await store.saveIssuedCredentials(issued(`ASIA-${identityId}`, identityId));
        }
        const otherKey = datasetKey('settings', OTHER_IDENTITY);
        // Pool usage is left out: it rightly drops with the deleted identity's data.
        const observeOther = async () => {
          const { poolUsage: _poolUsage, ...rest } = await observe(store, otherKey);
          return rest;
        };
        const otherBefore = await observeOther();
        const otherIdentityBefore = await store.getIdentity(OTHER_IDENTITY);

        assert.equal(await store.deleteIdentity(IDENTITY), true);

        const key = datasetKey('settings');
        assert.equal(await store.getIdentity(IDENTITY), undefined);
        assert.equal(await store.findIdentityByLogin(POOL, mine), undefined);
        assert.equal(await store.getIssuedCredentials(`ASIA-${IDENTITY}`), undefined);
        assert.equal(await store.describeDataset(key), undefined);
        assert.equal(await store.describeDataset(datasetKey('scores')), undefined);
        assert.deepEqual(await store.listDatasets(POOL, IDENTITY, undefined, 10), []);
        const page = await store.listRecords(key, 0, undefined, 10);
        assert.equal(page.dataset, undefined);
        assert.deepEqual(page.records, []);
        assert.equal(await store.getDevice(POOL, IDENTITY, `device-${IDENTITY}`), undefined);
        assert.deepEqual(await store.listSubscriptions(key), []);
        assert.deepEqual(await store.describeIdentityUsage(POOL, IDENTITY), { identityPoolId: POOL, identityId: IDENTITY, datasetCount: 0, dataStorage: 0, lastModifiedDate: undefined });
        assert.deepEqual(idsOfIdentities(await store.listIdentities(POOL, undefined, 10)), [OTHER_IDENTITY]);

        assert.deepEqual(await store.getIdentity(OTHER_IDENTITY), otherIdentityBefore);
        assert.equal(await store.findIdentityByLogin(POOL, theirs), OTHER_IDENTITY);
        assert.deepEqual(await store.getIssuedCredentials(`ASIA-${OTHER_IDENTITY}`), await withPoolSettings(store, issued(`ASIA-${OTHER_IDENTITY}`, OTHER_IDENTITY)));
        assert.deepEqual(await observeOther(), otherBefore);
        assert.ok(await store.describeDataset(datasetKey('scores', OTHER_IDENTITY)));
        assert.ok(await store.getDevice(POOL, OTHER_IDENTITY, `device-${OTHER_IDENTITY}`));
        assert.deepEqual(await store.listSubscriptions(otherKey), [`device-${OTHER_IDENTITY}`]);

        // The deleted identity's login is free again (a second user of the developer provider on OTHER_IDENTITY).
        assert.equal(await store.linkLogins(POOL, OTHER_IDENTITY, [mine], T0 + 10, { developerProvider: 'login.example.app' }), undefined);

        assert.equal(await store.deleteIdentity(IDENTITY), false);
        assert.equal(await store.deleteIdentity(THIRD_IDENTITY), false);
      });

      describe('mergeIdentities', () => {
        const SOURCE = IDENTITY;
        const DESTINATION = OTHER_IDENTITY;
        const merged = (name: string, sourceId = SOURCE) => `${name}.${sourceId}`;

        /** Source: settings (two commits, a tombstone), scores, and a deleted dataset; destination: its own settings and notes. */
        const seed = async (store: Store) => {
          await store.createIdentityPool(poolRecord(POOL), 10);
          await store.createIdentity(identityRecord(SOURCE, [login('provider-a', 'source-1'), login('provider-b', 'source-2')]));
          await store.createIdentity(identityRecord(DESTINATION, [login('provider-a', 'destination-1')]));
          await update(store, datasetKey('settings', SOURCE), [put('theme', 'dark'), put('gone', 'x')], T0);
          await update(store, datasetKey('settings', SOURCE), [put('theme', 'light', 1), remove('gone', 1)], T0 + 1);
          await update(store, datasetKey('scores', SOURCE), [put('level', '7')], T0 + 2);
          await update(store, datasetKey('deleted', SOURCE), [put('k', 'v')], T0 + 3);
          await store.deleteDataset(datasetKey('deleted', SOURCE), T0 + 4);
          await update(store, datasetKey('settings', DESTINATION), [put('theme', 'blue')], T0 + 5);
          await update(store, datasetKey('notes', DESTINATION), [put('n', 'note')], T0 + 6);
          await store.saveIssuedCredentials(issued('ASIASOURCE', SOURCE));
          await store.saveIssuedCredentials(issued('ASIADESTINATION', DESTINATION));
        };

        storeTest('logins move to the destination, the source identity and its credentials are gone', async (store) => {
          await seed(store);
          await store.mergeIdentities(POOL, SOURCE, DESTINATION, T0 + 100, RULE);

          assert.equal(await store.getIdentity(SOURCE), undefined);
          assert.deepEqual((await store.getIdentity(DESTINATION))?.logins, [login('provider-a', 'destination-1'), login('provider-a', 'source-1'), login('provider-b', 'source-2')]);
          assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'source-1')), DESTINATION);
          assert.equal(await store.findIdentityByLogin(POOL, login('provider-b', 'source-2')), DESTINATION);
          assert.equal(await store.findIdentityByLogin(POOL, login('provider-a', 'destination-1')), DESTINATION);
          assert.equal(await store.getIssuedCredentials('ASIASOURCE'), undefined);
          assert.deepEqual(await store.getIssuedCredentials('ASIADESTINATION'), await withPoolSettings(store, issued('ASIADESTINATION', DESTINATION)));
          assert.deepEqual(idsOfIdentities(await store.listIdentities(POOL, undefined, 10)), [DESTINATION]);
          // A moved login now belongs to the destination: linking it to it is a no-op.
          assert.equal(await store.linkLogins(POOL, DESTINATION, [login('provider-a', 'source-1')], T0 + 200, RULE), undefined);
        });

        storeTest('the source\'s live datasets become the destination\'s <name>.<sourceId> with their records and SyncCounts', async (store) => {
          await seed(store);
          const sourceSettings = await store.describeDataset(datasetKey('settings', SOURCE));
          const sourceSettingsRecords = await allRecords(store, datasetKey('settings', SOURCE));
          const sourceScores = await store.describeDataset(datasetKey('scores', SOURCE));
          const sourceScoresRecords = await allRecords(store, datasetKey('scores', SOURCE));
          assert.equal(sourceSettings?.syncCount, 2);

          await store.mergeIdentities(POOL, SOURCE, DESTINATION, T0 + 100, RULE);

          const mergedSettings = datasetKey(merged('settings'), DESTINATION);
          const mergedScores = datasetKey(merged('scores'), DESTINATION);
          assert.deepEqual(await store.describeDataset(mergedSettings), { ...sourceSettings, identityId: DESTINATION, datasetName: merged('settings') });
          assert.deepEqual(await allRecords(store, mergedSettings), sourceSettingsRecords);
          assert.deepEqual(await store.describeDataset(mergedScores), { ...sourceScores, identityId: DESTINATION, datasetName: merged('scores') });
          assert.deepEqual(await allRecords(store, mergedScores), sourceScoresRecords);
          // A deleted dataset of the source is not brought over.
          assert.equal(await store.describeDataset(datasetKey(merged('deleted'), DESTINATION)), undefined);
          assert.deepEqual((await store.listRecords(datasetKey('deleted', DESTINATION), 0, undefined, 10)).mergedDatasetNames, []);

          assert.deepEqual(
            (await store.listDatasets(POOL, DESTINATION, undefined, 10)).map((d) => d.datasetName),
            ['notes', merged('scores'), 'settings', merged('settings')].sort(),
          );
          assert.equal((await store.describeIdentityUsage(POOL, DESTINATION)).datasetCount, 4);
          assert.deepEqual(await store.listDatasets(POOL, SOURCE, undefined, 10), []);
          assert.equal(await store.describeDataset(datasetKey('settings', SOURCE)), undefined);

          // A merged dataset keeps its SyncCount: the next write continues from it.
          const next = await update(store, mergedSettings, [put('theme', 'merged', 2)], T0 + 200);
          assert.equal(next.dataset.syncCount, 3);
        });

        storeTest('a long name is cut short to fit 128 characters with its suffix; two that would meet refuse the merge, nothing written', async (store) => {
          await seed(store);
          const long = `${'n'.repeat(100)}a`;
          await update(store, datasetKey(long, SOURCE), [put('k', 'v')], T0 + 10);
          await store.mergeIdentities(POOL, SOURCE, DESTINATION, T0 + 100, RULE);
          const cut = `${'n'.repeat(127 - SOURCE.length)}.${SOURCE}`;
          assert.equal(cut.length, 128);
          assert.equal((await allRecords(store, datasetKey(cut, DESTINATION))).length, 1);
          assert.equal((await store.describeDataset(datasetKey(cut, DESTINATION)))?.datasetName, cut);
          assert.deepEqual((await store.listRecords(datasetKey(long, DESTINATION), 0, undefined, 10)).mergedDatasetNames, [cut]);

          // THIRD_IDENTITY has two long names that agree in the characters kept.
          await store.createIdentity(identityRecord(THIRD_IDENTITY, [login('provider-a', 'third-1')]));
          await update(store, datasetKey(`${'m'.repeat(100)}a`, THIRD_IDENTITY), [put('k', 'a')], T0 + 110);
          await update(store, datasetKey(`${'m'.repeat(100)}b`, THIRD_IDENTITY), [put('k', 'b')], T0 + 111);
          await assert.rejects(store.mergeIdentities(POOL, THIRD_IDENTITY, DESTINATION, T0 + 120, RULE), { name: 'ResourceConflictException', message: /would both be merged as/ });
          assert.equal((await store.listDatasets(POOL, THIRD_IDENTITY, undefined, 10)).length, 2);
          assert.ok(await store.getIdentity(THIRD_IDENTITY));
        });

        storeTest('listRecords of the destination\'s <name> reports the merged datasets; the destination\'s own datasets are untouched', async (store) => {
          await seed(store);
          const destinationSettings = datasetKey('settings', DESTINATION);
          const ownBefore = await observe(store, destinationSettings);
          const notesBefore = await observe(store, datasetKey('notes', DESTINATION));

          await store.mergeIdentities(POOL, SOURCE, DESTINATION, T0 + 100, RULE);

          const page = await store.listRecords(destinationSettings, 0, undefined, 10);
          assert.deepEqual(page.mergedDatasetNames, [merged('settings')]);
          assert.deepEqual(page.dataset, ownBefore.dataset);
          assert.deepEqual(page.records, ownBefore.records);
          assert.deepEqual(await store.describeDataset(destinationSettings), ownBefore.dataset);
          assert.deepEqual(await allRecords(store, destinationSettings), ownBefore.records);
          assert.deepEqual((await observe(store, datasetKey('notes', DESTINATION))).records, notesBefore.records);
          assert.deepEqual(await store.describeDataset(datasetKey('notes', DESTINATION)), notesBefore.dataset);
          assert.deepEqual((await store.listRecords(datasetKey('notes', DESTINATION), 0, undefined, 10)).mergedDatasetNames, []);

          // A name the destination never had still reports what the merge brought in.
          const scores = await store.listRecords(datasetKey('scores', DESTINATION), 0, undefined, 10);
          assert.equal(scores.dataset, undefined);
          assert.deepEqual(scores.mergedDatasetNames, [merged('scores')]);

          // A second merge adds its own name; deleting a merged dataset drops it from the list.
          await store.createIdentity(identityRecord(THIRD_IDENTITY, [login('provider-a', 'third-1')]));
          await update(store, datasetKey('settings', THIRD_IDENTITY), [put('theme', 'green')], T0 + 110);
          await store.mergeIdentities(POOL, THIRD_IDENTITY, DESTINATION, T0 + 120, RULE);
          assert.deepEqual((await store.listRecords(destinationSettings, 0, undefined, 10)).mergedDatasetNames, [merged('settings'), merged('settings', THIRD_IDENTITY)].sort());
          await store.deleteDataset(datasetKey(merged('scores'), DESTINATION), T0 + 130);
          assert.deepEqual((await store.listRecords(datasetKey('scores', DESTINATION), 0, undefined, 10)).mergedDatasetNames, []);
        });

        storeTest('merged again, a merged dataset is still reported under the name it was first merged from', async (store) => {
          await seed(store);
          await store.mergeIdentities(POOL, SOURCE, DESTINATION, T0 + 100, RULE);
          // DESTINATION (holding SOURCE's settings as settings.<SOURCE>) is merged into a third identity.
          await store.createIdentity(identityRecord(THIRD_IDENTITY, [login('provider-a', 'third-1')]));
          await update(store, datasetKey('settings', THIRD_IDENTITY), [put('theme', 'green')], T0 + 110);
          await store.mergeIdentities(POOL, DESTINATION, THIRD_IDENTITY, T0 + 120, RULE);
          const twice = merged(merged('settings'), DESTINATION);
          assert.deepEqual((await store.listRecords(datasetKey('settings', THIRD_IDENTITY), 0, undefined, 10)).mergedDatasetNames, [merged('settings', DESTINATION), twice].sort());
          assert.deepEqual((await store.listRecords(datasetKey(merged('settings'), THIRD_IDENTITY), 0, undefined, 10)).mergedDatasetNames, []);
        });
      });
    });

    describe('issued credentials', () => {
      storeTest('a write authenticated with credentials that DeleteIdentities removed since creates no dataset (NotAuthorizedException); the developer\'s still may', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY, []));
        await store.saveIssuedCredentials(issued('ASIALIVE'));
        const key = datasetKey('created');
        const withCredentials = (accessKeyId: string, datasetName: string) =>
          store.updateRecords({ ...datasetKey(datasetName), patches: [put('k', 'v')], now: T0, modifiedBy: IDENTITY, limits: limitsWith(), issuedAccessKeyId: accessKeyId });
        assert.equal((await withCredentials('ASIALIVE', 'created')).dataset.syncCount, 1);
        await store.deleteIdentity(IDENTITY);
        await assert.rejects(withCredentials('ASIALIVE', 'after-deletion'), { name: 'NotAuthorizedException', message: /revoked while it ran/ });
        assert.equal(await store.describeDataset(datasetKey('after-deletion')), undefined);
        assert.equal(await store.describeDataset(key), undefined, 'DeleteIdentities took the first one');
        // Developer writes carry no issued credentials and may write to any identity id.
        assert.equal((await update(store, datasetKey('developer'), [put('k', 'v')])).dataset.syncCount, 1);
      });

      storeTest('saveIssuedCredentials round-trips; an unknown access key is undefined, also among lookups made at once', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentityPool(poolRecord(OTHER_POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY));
        await store.createIdentity(identityRecord(OTHER_IDENTITY, [], OTHER_POOL));
        const first = issued('ASIAFIRST', IDENTITY, POOL, FAR_FUTURE);
        const second = issued('ASIASECOND', IDENTITY, POOL, FAR_FUTURE + 1000);
        const elsewhere = issued('ASIAELSEWHERE', OTHER_IDENTITY, OTHER_POOL, FAR_FUTURE + 2000);
        for (const credentials of [first, second, elsewhere]) await store.saveIssuedCredentials(credentials);
        assert.deepEqual(await store.getIssuedCredentials('ASIAFIRST'), await withPoolSettings(store, first));
        assert.deepEqual(await store.getIssuedCredentials('ASIASECOND'), await withPoolSettings(store, second));
        assert.deepEqual(await store.getIssuedCredentials('ASIAELSEWHERE'), await withPoolSettings(store, elsewhere));
        assert.equal(await store.getIssuedCredentials('ASIAUNKNOWN'), undefined);
        // Made at once (PostgreSQL sends these as one statement), with repeated and unknown keys among them.
        const keys = ['ASIAFIRST', 'ASIAUNKNOWN', 'ASIAELSEWHERE', 'ASIAFIRST', 'ASIAOTHERUNKNOWN'];
        const expected: Record<string, unknown> = { ASIAFIRST: await withPoolSettings(store, first), ASIAELSEWHERE: await withPoolSettings(store, elsewhere) };
        assert.deepEqual(await Promise.all(keys.map((key) => store.getIssuedCredentials(key))), keys.map((key) => expected[key]));
      });

      storeTest('a lookup after any change to credentials, their identity or their pool sees it, with record writes and lookups in between', async (store) => {
        // A store may keep lookups (the SQLite store does); whatever it keeps must never outlive a change.
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY));
        await store.createIdentity(identityRecord(OTHER_IDENTITY));
        await store.saveIssuedCredentials(issued('ASIAKEPT'));
        await store.saveIssuedCredentials(issued('ASIAOTHER', OTHER_IDENTITY));
        const key = { identityPoolId: POOL, identityId: IDENTITY, datasetName: 'settings' };
        const current = async (accessKeyId: string, identityId = IDENTITY) => assert.deepEqual(await store.getIssuedCredentials(accessKeyId), await withPoolSettings(store, issued(accessKeyId, identityId)));
        await current('ASIAKEPT');
        await update(store, key, [put('a', '1')]);
        await current('ASIAKEPT');
        await store.setCognitoEvents(POOL, { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:f' });
        assert.deepEqual((await store.getIssuedCredentials('ASIAKEPT'))?.poolSettings.cognitoEvents, { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:f' });
        await store.setBulkPublishState(POOL, { status: 'IN_PROGRESS', startTime: T0 });
        assert.deepEqual((await store.getIssuedCredentials('ASIAKEPT'))?.poolSettings.bulkPublish, { status: 'IN_PROGRESS', startTime: T0 });
        await update(store, key, [put('b', '2', 0)]);
        await current('ASIAKEPT');
        await current('ASIAOTHER', OTHER_IDENTITY);
        assert.equal(await store.deleteIdentity(OTHER_IDENTITY), true);
        assert.equal(await store.getIssuedCredentials('ASIAOTHER'), undefined);
        await current('ASIAKEPT');
        // Concurrent record writes and lookups, then the pool goes.
        await Promise.all([update(store, key, [put('c', '3')]), store.getIssuedCredentials('ASIAKEPT'), store.deleteIdentityPool(POOL), store.getIssuedCredentials('ASIAKEPT')]);
        assert.equal(await store.getIssuedCredentials('ASIAKEPT'), undefined);
      });

      storeTest('getIssuedCredentials reads the pool\'s current sync settings with the credentials', async (store) => {
        await store.createIdentityPool(poolRecord(POOL), 10);
        await store.createIdentity(identityRecord(IDENTITY));
        await store.saveIssuedCredentials(issued('ASIASETTINGS'));
        const before = await store.getIssuedCredentials('ASIASETTINGS');
        assert.deepEqual(before?.poolSettings, await store.getPoolSyncSettings(POOL));
        const streams = { StreamName: 'changes', RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'ENABLED' as const };
        await store.setPoolConfiguration(POOL, { cognitoStreams: streams });
        const after = await store.getIssuedCredentials('ASIASETTINGS');
        assert.deepEqual(after?.poolSettings.cognitoStreams, streams);
        assert.deepEqual(after, await withPoolSettings(store, issued('ASIASETTINGS')));
      });
    });

    describe('pool roles', () => {
      storeTest('getPoolRoles is undefined for an unknown pool and {} for a new one; setPoolRoles replaces them and is false for an unknown pool', async (store) => {
        assert.equal(await store.getPoolRoles(POOL), undefined);
        await store.createIdentityPool(poolRecord(POOL), 10);
        assert.deepEqual(await store.getPoolRoles(POOL), {});

        const roles: PoolRoles = {
          Roles: { authenticated: 'arn:aws:iam::123456789012:role/auth', unauthenticated: 'arn:aws:iam::123456789012:role/unauth' },
          RoleMappings: { 'graph.facebook.com': { Type: 'Token', AmbiguousRoleResolution: 'AuthenticatedRole' } },
        };
        assert.equal(await store.setPoolRoles(POOL, roles), true);
        assert.deepEqual(await store.getPoolRoles(POOL), roles);

        const replaced: PoolRoles = { Roles: { authenticated: 'arn:aws:iam::123456789012:role/auth2' } };
        assert.equal(await store.setPoolRoles(POOL, replaced), true);
        assert.deepEqual(await store.getPoolRoles(POOL), replaced);

        // UpdateIdentityPool leaves the roles alone.
        await store.updateIdentityPool({ identityPoolId: POOL, identityPoolName: 'renamed', description: { IdentityPoolName: 'renamed' }, lastModifiedDate: T0 + 1 });
        assert.deepEqual(await store.getPoolRoles(POOL), replaced);

        assert.equal(await store.setPoolRoles(OTHER_POOL, roles), false);
        assert.equal(await store.getPoolRoles(OTHER_POOL), undefined);
        assert.equal(await store.getIdentityPool(OTHER_POOL), undefined);
      });
    });
  });
}
