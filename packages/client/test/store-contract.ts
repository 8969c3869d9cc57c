// The LocalStore contract: one list of cases every store must pass, runnable under node:test and in a browser page.
import type { LocalRecord } from '../src/records.ts';
import type { LocalStore } from '../src/stores/store.ts';

export interface StoreHarness {
  open(): Promise<LocalStore>;
  /** Opens the same storage again (a restart); absent for stores that do not persist. */
  reopen?(): Promise<LocalStore>;
}

export interface ContractCase {
  name: string;
  run(harness: StoreHarness): Promise<void>;
}

function fail(message: string): never {
  throw new Error(message);
}
function equal(actual: unknown, expected: unknown, what: string) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
}

const identity = 'us-east-1:00000000-0000-0000-0000-000000000001';
const other = 'us-east-1:00000000-0000-0000-0000-000000000002';

export function record(key: string, value: string | null, extra: Partial<LocalRecord> = {}): LocalRecord {
  return { key, value, syncCount: 0, modified: true, deviceLastModifiedDate: 1_700_000_000_123, lastModifiedDate: 1_700_000_000_456, lastModifiedBy: '', pushing: null, ...extra };
}

export const storeContract: ContractCase[] = [
  {
    name: 'an empty store has no datasets, records or settings',
    async run(h) {
      const store = await h.open();
      equal(await store.getDataset(identity, 'settings'), undefined, 'getDataset');
      equal(await store.listDatasets(identity), [], 'listDatasets');
      equal(await store.listRecords(identity, 'settings'), [], 'listRecords');
      equal(await store.getRecord(identity, 'settings', 'k'), undefined, 'getRecord');
      equal(await store.getSetting('x'), undefined, 'getSetting');
      await store.close();
    },
  },
  {
    name: 'records and dataset metadata round-trip every field (null values, journals, unicode, 1 MB values)',
    async run(h) {
      const store = await h.open();
      const big = 'é'.repeat(512 * 1024 - 1) + 'x';
      const records = [
        record('plain', 'v', { syncCount: 7, modified: false, lastModifiedBy: 'us-east-1:abc' }),
        record('gone', null, { syncCount: 3 }),
        record('empty', ''),
        record('ünï 😀 key', 'välue 😀', { pushing: { value: 'välue 😀', deviceLastModifiedDate: 1_700_000_000_999 } }),
        record('removing', null, { pushing: { value: null, deviceLastModifiedDate: 5 } }),
        record('pushed thrice', 'v3', { pushing: { value: 'v3', deviceLastModifiedDate: 3, earlier: [{ value: null, deviceLastModifiedDate: 2 }, { value: 'v1 😀', deviceLastModifiedDate: 1 }] } }),
        record('big', big),
      ];
      equal(await store.commit({ datasets: [{ identityId: identity, datasetName: 'settings', put: records, metadata: { lastSyncCount: 9, mergedInto: 'x', lastModifiedBy: 'me', creationDate: 11, lastModifiedDate: 12, lastSyncDate: 13, remoteDataStorage: 14, remoteNumRecords: 15, deleted: false } }] }), true, 'commit');
      const sorted = [...records].sort((a, b) => (a.key < b.key ? -1 : 1));
      equal(await store.listRecords(identity, 'settings'), sorted, 'listRecords');
      equal(await store.getRecord(identity, 'settings', 'ünï 😀 key'), records[3], 'getRecord');
      equal(await store.getDataset(identity, 'settings'), {
        identityId: identity, datasetName: 'settings', lastSyncCount: 9, deleted: false, mergedInto: 'x', creationDate: 11, lastModifiedDate: 12,
        lastModifiedBy: 'me', lastSyncDate: 13, remoteDataStorage: 14, remoteNumRecords: 15,
      }, 'getDataset');
      await store.close();
      if (h.reopen) {
        const again = await h.reopen();
        equal(await again.listRecords(identity, 'settings'), sorted, 'records after reopening');
        equal((await again.getDataset(identity, 'settings'))?.lastSyncCount, 9, 'metadata after reopening');
        await again.close();
      }
    },
  },
  {
    name: 'keys are ordered by UTF-16 code units and datasets and identities never see each other’s records',
    async run(h) {
      const store = await h.open();
      const keys = ['b', 'a', 'B', '\uffff', '😀', 'é', 'a.b'];
      await store.commit({
        datasets: [
          { identityId: identity, datasetName: 'a', put: keys.map((k) => record(k, k)) },
          { identityId: identity, datasetName: 'a.b', put: [record('x', '1')] },
          { identityId: identity, datasetName: 'a-', put: [record('y', '2')] },
          { identityId: other, datasetName: 'a', put: [record('z', '3')] },
        ],
      });
      equal((await store.listRecords(identity, 'a')).map((r) => r.key), [...keys].sort(), 'key order');
      equal((await store.listRecords(identity, 'a.b')).map((r) => r.key), ['x'], 'dataset a.b');
      equal((await store.listRecords(other, 'a')).map((r) => r.key), ['z'], 'other identity');
      equal((await store.listDatasets(identity)).map((d) => d.datasetName), ['a', 'a-', 'a.b'], 'datasets of the identity');
      equal((await store.listDatasets(other)).map((d) => d.datasetName), ['a'], 'datasets of the other identity');
      await store.close();
    },
  },
  {
    name: 'a commit whose expectation fails writes nothing at all (records, metadata, other datasets, settings)',
    async run(h) {
      const store = await h.open();
      const original = record('k', 'v1', { syncCount: 1, modified: false });
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', put: [original], metadata: { lastSyncCount: 1 } }] });
      const stale = { ...original, value: 'v0' };
      const ok = await store.commit({
        datasets: [
          { identityId: identity, datasetName: 'other', put: [record('x', 'y')], metadata: { lastSyncCount: 5 } },
          { identityId: identity, datasetName: 'd', expect: [{ key: 'k', record: stale }], put: [record('k', 'v2')], metadata: { lastSyncCount: 2 } },
        ],
        settings: { s: 'set' },
      });
      equal(ok, false, 'commit result');
      equal(await store.listRecords(identity, 'd'), [original], 'records unchanged');
      equal((await store.getDataset(identity, 'd'))?.lastSyncCount, 1, 'metadata unchanged');
      equal(await store.getDataset(identity, 'other'), undefined, 'no other dataset');
      equal(await store.getSetting('s'), undefined, 'no setting');
      const absent = await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', expect: [{ key: 'k', record: undefined }], put: [record('k', 'v3')] }] });
      equal(absent, false, 'expecting absence of a present record fails');
      const fine = await store.commit({
        datasets: [{ identityId: identity, datasetName: 'd', expect: [{ key: 'k', record: original }, { key: 'new', record: undefined }], put: [record('k', 'v4'), record('new', 'n')] }],
      });
      equal(fine, true, 'matching expectations commit');
      equal((await store.listRecords(identity, 'd')).map((r) => r.value), ['v4', 'n'], 'values after the commit');
      await store.close();
    },
  },
  {
    name: 'a commit can expect settings (absent or a value): the first of two claims wins, the second writes nothing',
    async run(h) {
      const store = await h.open();
      const claim = (value: string) => store.commit({ settings: { owner: value }, expectSettings: { owner: null } });
      equal(await claim('first'), true, 'first claim');
      equal(await claim('second'), false, 'second claim');
      equal(await store.getSetting('owner'), 'first', 'the setting');
      const stale = await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', put: [record('k', 'v')] }], expectSettings: { owner: 'second' } });
      equal(stale, false, 'a wrong value');
      equal(await store.getDataset(identity, 'd'), undefined, 'nothing written');
      equal(await store.commit({ settings: { owner: null }, expectSettings: { owner: 'first' } }), true, 'the right value');
      equal(await store.getSetting('owner'), undefined, 'deleted');
      await store.close();
    },
  },
  {
    name: 'purge, remove and metadata null drop records and datasets; metadata merges field by field',
    async run(h) {
      const store = await h.open();
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', put: [record('a', '1'), record('b', '2'), record('c', '3')], metadata: { lastSyncCount: 4 } }] });
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', remove: ['b', 'missing'] }] });
      equal((await store.listRecords(identity, 'd')).map((r) => r.key), ['a', 'c'], 'after remove');
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', metadata: { deleted: true } }] });
      const meta = await store.getDataset(identity, 'd');
      equal([meta?.lastSyncCount, meta?.deleted], [4, true], 'metadata merged');
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', purge: true, put: [record('z', '26')] }] });
      equal((await store.listRecords(identity, 'd')).map((r) => r.key), ['z'], 'purge happens before put');
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', purge: true, metadata: null }] });
      equal(await store.getDataset(identity, 'd'), undefined, 'dataset gone');
      equal(await store.listRecords(identity, 'd'), [], 'records gone');
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'fresh', put: [record('a', '1')] }] });
      equal((await store.getDataset(identity, 'fresh'))?.lastSyncCount, 0, 'putting records creates the dataset row with defaults');
      await store.close();
    },
  },
  {
    name: 'getRecords returns the records of the given keys that exist (tombstones included), ordered by key, of that dataset only',
    async run(h) {
      const store = await h.open();
      const records = [record('c', '3'), record('a', '1', { modified: false, syncCount: 2 }), record('b', null, { syncCount: 4 }), record('😀', 'x'), record('é', 'y')];
      await store.commit({
        datasets: [
          { identityId: identity, datasetName: 'd', put: records },
          { identityId: identity, datasetName: 'd2', put: [record('a', 'other dataset')] },
          { identityId: other, datasetName: 'd', put: [record('a', 'other identity')] },
        ],
      });
      const [c, a, b, emoji] = records;
      equal(await store.getRecords(identity, 'd', ['😀', 'c', 'missing', 'b', 'a', 'a']), [a, b, c, emoji], 'found records in key order, once each');
      equal(await store.getRecords(identity, 'd', []), [], 'no keys');
      equal(await store.getRecords(identity, 'none', ['a']), [], 'unknown dataset');
      equal((await store.getRecords(identity, 'd2', ['a', 'c'])).map((r) => r.value), ['other dataset'], 'another dataset');
      equal((await store.getRecords(other, 'd', ['a'])).map((r) => r.value), ['other identity'], 'another identity');
      await store.close();
    },
  },
  {
    name: 'listModifiedRecords lists exactly the modified records in key order, through puts, removes, purges and failed commits',
    async run(h) {
      const store = await h.open();
      const keys = (records: LocalRecord[]) => records.map((r) => r.key);
      const a = record('a', '1');
      await store.commit({
        datasets: [
          { identityId: identity, datasetName: 'd', put: [record('z', '26'), a, record('b', '2', { modified: false }), record('c', null, { pushing: { value: null, deviceLastModifiedDate: 5 } })] },
          { identityId: identity, datasetName: 'd2', put: [record('x', '1')] },
        ],
      });
      equal(await store.listModifiedRecords(identity, 'd'), [a, record('c', null, { pushing: { value: null, deviceLastModifiedDate: 5 } }), record('z', '26')], 'modified records');
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', put: [record('a', '1', { modified: false, syncCount: 3 }), record('b', '3')] }] });
      equal(keys(await store.listModifiedRecords(identity, 'd')), ['b', 'c', 'z'], 'acknowledged a, modified b');
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', remove: ['z'] }] });
      equal(keys(await store.listModifiedRecords(identity, 'd')), ['b', 'c'], 'after remove');
      const failed = await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', expect: [{ key: 'a', record: a }], put: [record('a', '2')] }] });
      equal(failed, false, 'stale expectation');
      equal(keys(await store.listModifiedRecords(identity, 'd')), ['b', 'c'], 'a failed commit changes nothing');
      equal(keys(await store.listModifiedRecords(identity, 'd2')), ['x'], 'another dataset');
      equal(await store.listModifiedRecords(other, 'd'), [], 'another identity');
      await store.close();
      const again = h.reopen ? await h.reopen() : store;
      if (h.reopen) equal(keys(await again.listModifiedRecords(identity, 'd')), ['b', 'c'], 'after reopening');
      await again.commit({ datasets: [{ identityId: identity, datasetName: 'd', purge: true, put: [record('n', 'new', { modified: false })] }] });
      equal(await again.listModifiedRecords(identity, 'd'), [], 'after purge');
      await again.close();
    },
  },
  {
    name: 'getDatasetUsage counts live records and their UTF-8 key + value bytes through every kind of write',
    async run(h) {
      const store = await h.open();
      const usage = async (datasetName = 'd', identityId = identity) => {
        const u = await store.getDatasetUsage(identityId, datasetName);
        return [u.numRecords, u.dataStorage];
      };
      const put = (records: LocalRecord[], extra: object = {}) => store.commit({ datasets: [{ identityId: identity, datasetName: 'd', put: records, ...extra }] });
      equal(await usage(), [0, 0], 'empty');
      // 'a'+'1' = 2 bytes, 'é'+'😀' = 2 + 4, 'empty'+'' = 5; a tombstone counts nothing.
      await put([record('a', '1'), record('é', '😀'), record('empty', ''), record('gone', null)]);
      equal(await usage(), [3, 13], 'after the first put');
      await put([record('a', 'xyz')]);
      equal(await usage(), [3, 15], 'a value replaced');
      await put([record('a', null)]);
      equal(await usage(), [2, 11], 'a value removed (tombstone)');
      await put([record('gone', 'v')]);
      equal(await usage(), [3, 16], 'a tombstone brought back');
      await store.commit({ datasets: [{ identityId: identity, datasetName: 'd', remove: ['é', 'missing', 'a'] }] });
      equal(await usage(), [2, 10], 'records dropped');
      await store.commit({
        datasets: [
          { identityId: identity, datasetName: 'd', put: [record('k', '12'), record('k', '1')] },
          { identityId: identity, datasetName: 'd', remove: ['k'], put: [record('k', '123')] },
          { identityId: identity, datasetName: 'd2', put: [record('x', 'y')] },
        ],
      });
      equal(await usage(), [3, 14], 'a key written several times in one batch counts once, as it ends');
      equal(await usage('d2'), [1, 2], 'another dataset');
      equal(await usage('d', other), [0, 0], 'another identity');
      equal(await put([record('big', 'x')], { expect: [{ key: 'k', record: undefined }] }), false, 'stale expectation');
      equal(await usage(), [3, 14], 'a failed commit changes nothing');
      await store.close();
      const again = h.reopen ? await h.reopen() : store;
      if (h.reopen) equal([(await again.getDatasetUsage(identity, 'd')).numRecords, (await again.getDatasetUsage(identity, 'd')).dataStorage], [3, 14], 'after reopening');
      await again.commit({ datasets: [{ identityId: identity, datasetName: 'd', purge: true, put: [record('z', '26')] }] });
      equal(await again.getDatasetUsage(identity, 'd'), { numRecords: 1, dataStorage: 3 }, 'purge, then put');
      await again.commit({ datasets: [{ identityId: identity, datasetName: 'd', purge: true, metadata: null }] });
      equal(await again.getDatasetUsage(identity, 'd'), { numRecords: 0, dataStorage: 0 }, 'dataset gone');
      await again.close();
    },
  },
  {
    name: 'settings are set, replaced and deleted, and persist',
    async run(h) {
      const store = await h.open();
      await store.commit({ settings: { a: '1', b: '2' } });
      await store.commit({ settings: { a: '3', b: null } });
      equal([await store.getSetting('a'), await store.getSetting('b')], ['3', undefined], 'settings');
      await store.close();
      if (h.reopen) {
        const again = await h.reopen();
        equal(await again.getSetting('a'), '3', 'setting after reopening');
        await again.close();
      }
    },
  },
  {
    name: 'withLock runs holders of one name one at a time, other names in parallel, and releases on failure',
    async run(h) {
      const store = await h.open();
      const events: string[] = [];
      const pause = () => new Promise((r) => setTimeout(r, 20));
      const holder = (name: string, id: string) =>
        store.withLock(name, async () => {
          events.push(`${id}+`);
          await pause();
          events.push(`${id}-`);
          return id;
        });
      const results = await Promise.all([holder('x', 'a'), holder('x', 'b'), holder('y', 'c')]);
      equal(results, ['a', 'b', 'c'], 'results');
      const a = events.indexOf('a-');
      const b = events.indexOf('b+');
      if (!(a < b)) fail(`holders of one lock overlapped: ${events.join(' ')}`);
      if (!(events.indexOf('c+') < events.indexOf('a-'))) fail(`another lock name waited: ${events.join(' ')}`);
      let thrown: unknown;
      try {
        await store.withLock('x', async () => {
          throw new Error('boom');
        });
      } catch (error) {
        thrown = error;
      }
      equal((thrown as Error)?.message, 'boom', 'the holder’s error propagates');
      equal(await store.withLock('x', async () => 'free again'), 'free again', 'released after the failure');
      await store.close();
    },
  },
];
