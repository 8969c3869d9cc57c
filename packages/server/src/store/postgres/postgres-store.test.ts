// Runs the Store contract against PostgreSQL: one throw-away database per run, one schema per test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../../test/support/postgres.ts';
import type { RecordPatch } from '../../core/record-patches.ts';
import { defaultLimits } from '../../limits.ts';
import type { ChangeEvent } from '../store.ts';
import { runStoreContract } from '../store.contract.ts';
import { postgresMigrations } from './migrations.ts';
import { PostgresStore } from './postgres-store.ts';

const available = await postgresAvailable();
// CI provides PostgreSQL; a developer machine without it skips rather than fails.
if (!available && process.env.CI) throw new Error('PostgreSQL is required in CI (127.0.0.1:5432)');

describe('PostgresStore', { skip: available ? false : 'PostgreSQL is not reachable' }, () => {
  let database: TestDatabase;
  let schemaCount = 0;
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    await database?.drop();
  });

  async function freshStore(options: { queryTimeoutMs?: number } = {}): Promise<PostgresStore> {
    const schema = `contract_${++schemaCount}`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    const store = new PostgresStore({ connectionString: database.url, schema, maxConnections: 4, ...options });
    await store.migrate();
    return store;
  }

  runStoreContract('contract', freshStore);

  test('migrate() from several processes at once applies each migration once', async () => {
    const schema = `concurrent_migrate`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const stores = [1, 2, 3].map(() => new PostgresStore({ connectionString: database.url, schema, maxConnections: 2 }));
    await Promise.all(stores.map((store) => store.migrate()));
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.schema_migrations`);
    assert.equal(rows[0].n, postgresMigrations.length);
    await admin.end();
    await Promise.all(stores.map((store) => store.close()));
  });

  test('a schema migrated by a newer cognisync is refused', async () => {
    const store = await freshStore();
    await store.close();
    const schema = `contract_${schemaCount}`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`INSERT INTO ${schema}.schema_migrations VALUES (99, 'from the future', 0)`);
    await admin.end();
    const older = new PostgresStore({ connectionString: database.url, schema, maxConnections: 2 });
    await assert.rejects(older.migrate(), /schema version 99, newer than this cognisync's/);
    await older.close();
  });

  describe('schemas earlier builds left', () => {
    const POOL_ID = 'us-east-1:00000000-0000-4000-8000-0000000000ee';
    const key = { identityPoolId: POOL_ID, identityId: 'us-east-1:11111111-1111-4111-8111-1111111111ee', datasetName: 'marked' };

    /** A schema with migrations up to `upTo` of this build, then `extra`, recorded as `recorded`, holding one dataset marked (from, to). */
    async function earlierSchema(name: string, upTo: number, extra: string, recorded: number, from: number, to: number | undefined): Promise<PostgresStore> {
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        await admin.query(`CREATE SCHEMA ${name}; SET search_path TO ${name}`);
        await admin.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
        for (const migration of postgresMigrations.filter((m) => m.version <= upTo)) await admin.query(migration.sql);
        await admin.query(extra);
        for (let version = 1; version <= recorded; version++) await admin.query('INSERT INTO schema_migrations VALUES ($1, $2, 0)', [version, `v${version}`]);
        await admin.query("INSERT INTO identity_pools (identity_pool_id, identity_pool_name, description, creation_date, last_modified_date) VALUES ($1, 'pool', '{}', 1, 1)", [POOL_ID]);
        await admin.query(
          `INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, restored_from_sync_count${to === undefined ? '' : ', restored_to_sync_count'})
           VALUES ($1, $2, $3, true, 1, 1, 'dev', $4, 0, 0, $5${to === undefined ? '' : ', $6'})`,
          [key.identityPoolId, key.identityId, key.datasetName, to ?? from + 1_000_000, from, ...(to === undefined ? [] : [to])],
        );
      } finally {
        await admin.end();
      }
      return new PostgresStore({ connectionString: database.url, schema: name, maxConnections: 2 });
    }

    test('a schema a build of 2026-12-07 (4c6469e) migrated, whose migration 4 already added restored_to_sync_count, migrates and keeps its spans', async () => {
      const store = await earlierSchema('earlier_4c6469e', 3, postgresMigrations.find((m) => m.version === 4)!.sql + 'ALTER TABLE datasets ADD COLUMN restored_to_sync_count BIGINT NOT NULL DEFAULT 0;', 4, 5, 1_796_000_000_000);
      try {
        await store.migrate();
        assert.deepEqual((await store.listRecords(key, 0, undefined, 10)).restored, { from: 5, to: 1_796_000_000_000 });
      } finally {
        await store.close();
      }
    });

    test('restore marks of the first build that made them (12a1bec: a start and no end) keep their span', async () => {
      const store = await earlierSchema('earlier_12a1bec', 4, '', 4, 5, undefined);
      try {
        await store.migrate();
        assert.deepEqual((await store.listRecords(key, 0, undefined, 10)).restored, { from: 5, to: 1_000_005 });
      } finally {
        await store.close();
      }
    });

    test('a schema of a build before bounded tombstones counts the tombstones it holds, and drops the oldest at its next removal past the bound', async () => {
      const store = await earlierSchema('earlier_tombstones', 8, '', 8, 0, 7);
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        await admin.query('SET search_path TO earlier_tombstones');
        await admin.query('UPDATE datasets SET sync_count = 7, restored_to_sync_count = 0');
        const insert = "INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date) SELECT dataset_id, $1, $2, $3, 1, 'dev', 1 FROM datasets";
        await admin.query(insert, ['live', 'v', 1]);
        for (let i = 1; i <= 6; i++) await admin.query(insert, [`gone-é${i}`, null, i + 1]); // 6 tombstones at 2..7, 8 bytes each
        await store.migrate();
        assert.deepEqual((await admin.query('SELECT tombstones, tombstone_bytes, tombstones_dropped_through FROM datasets')).rows, [{ tombstones: '6', tombstone_bytes: '48', tombstones_dropped_through: '0' }]);
        // Bound 4 (3 kept): the next removal leaves 7, so the four oldest go.
        await store.updateRecords({ ...key, patches: [{ op: 'remove', key: 'live', syncCount: 1 }], now: 2, modifiedBy: 'test', limits: { ...defaultLimits, tombstonesPerDataset: 4 } });
        const page = await store.listRecords(key, 0, undefined, 10);
        assert.deepEqual(page.records.map((r) => r.key), ['gone-é5', 'gone-é6', 'live']);
        assert.equal(page.tombstonesDroppedThrough, 5);
        assert.deepEqual((await admin.query('SELECT tombstones, tombstone_bytes FROM datasets')).rows, [{ tombstones: '3', tombstone_bytes: '20' }]);
      } finally {
        await admin.end();
        await store.close();
      }
    });
  });

  // Two stores on one schema stand for two server processes: separate pools, separate LISTEN connections.
  const POOL = 'us-east-1:00000000-0000-4000-8000-0000000000aa';
  const IDENTITY = 'us-east-1:11111111-1111-4111-8111-1111111111aa';
  const limits = { ...defaultLimits };
  const write = (store: PostgresStore, datasetName: string, patches: RecordPatch[], deviceId?: string) =>
    store.updateRecords({ identityPoolId: POOL, identityId: IDENTITY, datasetName, patches, now: Date.now(), modifiedBy: 'pg-test', limits, ...(deviceId ? { deviceId } : {}) });
  const put = (key: string, value: string, syncCount = 0): RecordPatch => ({ op: 'replace', key, value, syncCount });
  /** The pool the writes go to, and IDENTITY in it: datasets and devices are only created where they exist. */
  const withPool = async <S extends PostgresStore>(store: S): Promise<S> => {
    await store.createIdentityPool({ identityPoolId: POOL, identityPoolName: 'pool', description: { IdentityPoolName: 'pool' }, creationDate: 1, lastModifiedDate: 1 }, 10);
    await store.createIdentity({ identityPoolId: POOL, identityId: IDENTITY, logins: [], creationDate: 1, lastModifiedDate: 1 });
    return store;
  };

  async function twoProcesses(): Promise<[PostgresStore, PostgresStore, pg.Client]> {
    const first = await withPool(await freshStore());
    const schema = `contract_${schemaCount}`;
    const second = new PostgresStore({ connectionString: database.url, schema, maxConnections: 4 });
    const admin = new pg.Client({ connectionString: database.url, options: `-c search_path=${schema}` });
    await admin.connect();
    return [first, second, admin];
  }
  /** A test on two stores of one schema (two processes) and an admin connection, all closed whatever the outcome. */
  const twoProcessTest = (title: string, body: (first: PostgresStore, second: PostgresStore, admin: pg.Client) => Promise<void>) =>
    test(title, async () => {
      const [first, second, admin] = await twoProcesses();
      try {
        await body(first, second, admin);
      } finally {
        await admin.end();
        await Promise.all([first.close(), second.close()]);
      }
    });


  twoProcessTest('first writes and device registrations racing with DeleteIdentityPool from another process leave nothing of the pool behind', async (first, second, admin) => {
    for (let round = 0; round < 5; round++) {
      if (round > 0) await withPool(first);
      const writes = Array.from({ length: 30 }, (_, i) => {
        const store = i % 2 ? first : second;
        return i % 3 === 0
          ? store.registerDevice({ identityPoolId: POOL, identityId: IDENTITY, deviceId: `device-${round}-${i}`, platform: 'GCM', token: `token-${i}`, creationDate: Date.now() })
          : write(store, `new-${round}-${i}`, [put('k', 'v')]);
      });
      const deleted = new Promise((resolve) => setTimeout(resolve, 2)).then(() => first.deleteIdentityPool(POOL));
      const outcomes = await Promise.allSettled(writes);
      assert.equal(await deleted, true);
      for (const outcome of outcomes) if (outcome.status === 'rejected') assert.equal(outcome.reason.name, 'ResourceNotFoundException', String(outcome.reason));
      const left = await admin.query<{ datasets: number; devices: number }>(
        'SELECT (SELECT count(*)::int FROM datasets WHERE identity_pool_id = $1) AS datasets, (SELECT count(*)::int FROM devices WHERE identity_pool_id = $1) AS devices',
        [POOL],
      );
      assert.deepEqual(left.rows[0], { datasets: 0, devices: 0 }, `round ${round}`);
    }
  });

  twoProcessTest('concurrent registrations and subscriptions of one identity from two processes keep the device and subscription caps exactly', async (first, second, admin) => {
    const deviceOf = (i: number) => ({ identityPoolId: POOL, identityId: IDENTITY, deviceId: `device-${i}`, platform: 'GCM', token: `token-${i}`, creationDate: 1000 + i });
    await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? first : second).registerDevice(deviceOf(i), 5)));
    const devices = await admin.query('SELECT device_id FROM devices WHERE identity_pool_id = $1', [POOL]);
    assert.equal(devices.rowCount, 5);
    const kept = devices.rows[0].device_id as string;
    const taken = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? first : second).subscribe({ identityPoolId: POOL, identityId: IDENTITY, datasetName: `d${i}` }, kept, 1, 5)));
    assert.equal(taken.filter(Boolean).length, 5);
    assert.equal((await admin.query('SELECT 1 FROM subscriptions WHERE device_id = $1', [kept])).rowCount, 5);
  });

  twoProcessTest('writers racing on one dataset from two processes: every write commits once, with SyncCounts 1..n and counters that add up', async (first, second, admin) => {
    const writes = Array.from({ length: 60 }, (_, i) => write(i % 2 ? first : second, 'raced', [put(`k${i}`, 'v'.repeat(i + 1))]));
    const results = await Promise.all(writes);
    assert.deepEqual(results.map((r) => r.dataset.syncCount).sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i + 1));
    const dataset = await first.describeDataset({ identityPoolId: POOL, identityId: IDENTITY, datasetName: 'raced' });
    assert.equal(dataset?.syncCount, 60);
    assert.equal(dataset?.numRecords, 60);
    assert.equal(dataset?.dataStorage, results.reduce((sum, r) => sum + Buffer.byteLength(r.records[0]!.key) + r.records[0]!.value!.length, 0));
    const { rows } = await admin.query('SELECT key, sync_count FROM records ORDER BY sync_count');
    assert.deepEqual(rows.map((r) => Number(r.sync_count)), Array.from({ length: 60 }, (_, i) => i + 1));
    for (const result of results) assert.equal(rows.find((r) => r.key === result.records[0]!.key)?.sync_count, String(result.dataset.syncCount));
  });

  twoProcessTest('removals and revivals racing from two processes while tombstones are dropped keep the tombstone counts exact', async (first, second, admin) => {
    const small = { ...defaultLimits, tombstonesPerDataset: 6 };
    const datasetName = 'churned';
    const send = (store: PostgresStore, patch: RecordPatch) => store.updateRecords({ identityPoolId: POOL, identityId: IDENTITY, datasetName, patches: [patch], now: Date.now(), modifiedBy: 'pg-test', limits: small });
    await send(first, put('seed', 'v'));
    /** Each process toggles keys of its own: removes a live one, or writes a removed one back from its tombstone's count. */
    const worker = async (store: PostgresStore, prefix: string) => {
      const held = new Map<string, { value: string | null; syncCount: number }>();
      for (let i = 0; i < 40; i++) {
        const key = `${prefix}${i % 8}`;
        const now = held.get(key);
        const patch: RecordPatch = now?.value ? { op: 'remove', key, syncCount: now.syncCount } : { op: 'replace', key, value: `v${i}`, syncCount: now?.syncCount ?? 0 };
        const [record] = (await send(store, patch)).records;
        held.set(key, { value: record!.value, syncCount: record!.syncCount });
      }
    };
    await Promise.all([worker(first, 'a'), worker(second, 'b'), worker(first, 'c'), worker(second, 'd')]);
    const { rows } = await admin.query<{ tombstones: string; tombstone_bytes: string; dropped: string; actual: string; actual_bytes: string | null }>(
      `SELECT d.tombstones, d.tombstone_bytes, d.tombstones_dropped_through AS dropped,
        (SELECT count(*) FROM records r WHERE r.dataset_id = d.dataset_id AND r.value IS NULL) AS actual,
        (SELECT sum(octet_length(key)) FROM records r WHERE r.dataset_id = d.dataset_id AND r.value IS NULL) AS actual_bytes
       FROM datasets d WHERE dataset_name = $1`,
      [datasetName],
    );
    const [row] = rows;
    assert.ok(Number(row!.dropped) > 0, 'tombstones were dropped');
    assert.equal(row!.tombstones, row!.actual);
    assert.equal(row!.tombstone_bytes, row!.actual_bytes ?? '0');
    assert.ok(Number(row!.actual) <= 6 + 1, `${row!.actual} tombstones kept`);
  });

  twoProcessTest('DeleteDataset racing with writes leaves no records behind a deleted dataset and exact counters on a live one', async (first, second, admin) => {
    for (let round = 0; round < 5; round++) {
      const key = { identityPoolId: POOL, identityId: IDENTITY, datasetName: `round${round}` };
      await write(first, key.datasetName, [put('seed', 'x')]);
      await Promise.allSettled([
        ...Array.from({ length: 12 }, (_, i) => write(i % 2 ? first : second, key.datasetName, [put(`k${i}`, 'value')])),
        second.deleteDataset(key, Date.now()),
      ]);
      const { rows } = await admin.query(
        `SELECT d.live, d.num_records, d.data_storage, count(r.key) FILTER (WHERE r.value IS NOT NULL) AS live_records,
         coalesce(sum(octet_length(r.key) + octet_length(r.value)), 0) AS bytes, count(r.key) AS all_records
         FROM datasets d LEFT JOIN records r ON r.dataset_id = d.dataset_id WHERE d.dataset_name = $1 GROUP BY d.dataset_id`,
        [key.datasetName],
      );
      const [row] = rows;
      if (!row.live) assert.equal(Number(row.all_records), 0);
      assert.equal(Number(row.num_records), Number(row.live_records));
      assert.equal(Number(row.data_storage), Number(row.bytes));
    }
  });

  twoProcessTest('first writes to new datasets of one identity from two processes never exceed the datasets-per-identity limit', async (first, second, admin) => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? first : second).updateRecords({ identityPoolId: POOL, identityId: IDENTITY, datasetName: `d${i}`, patches: [put('k', 'v')], now: Date.now(), modifiedBy: 'pg-test', limits: { ...limits, datasetsPerIdentity: 3 } }),
      ),
    );
    assert.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 3);
    for (const outcome of outcomes) if (outcome.status === 'rejected') assert.equal((outcome.reason as { code?: string }).code, 'LimitExceededException');
    assert.equal((await admin.query('SELECT count(*)::int AS n FROM datasets WHERE live')).rows[0].n, 3);
  });

  test('a dropped LISTEN connection is back within a second each time (the backoff starts over), and says changes may have been missed', async () => {
    const [first, second, admin] = await twoProcesses();
    const heard: ChangeEvent[] = [];
    let gaps = 0;
    const stop = await second.watchChanges((event) => heard.push(event), () => gaps++);
    const schema = `contract_${schemaCount}`;
    const until = async (done: () => boolean, what: string) => {
      const deadline = Date.now() + 3000;
      while (!done()) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    try {
      for (let drop = 1; drop <= 4; drop++) {
        const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`, [`LISTEN cognisync_changes_${schema}`]);
        assert.equal(killed.rowCount, 1);
        const started = Date.now();
        await until(() => gaps === drop, `gap ${drop}`);
        assert.ok(Date.now() - started < 1000, `drop ${drop}: back after ${Date.now() - started} ms`);
        await write(first, 'after-drop', [put(`k${drop}`, 'v')]);
        await until(() => heard.length === drop, `the change after drop ${drop}`);
      }
    } finally {
      await stop();
      await admin.end();
      await Promise.all([first.close(), second.close()]);
    }
  });

  test('committed writes and deletions reach the listeners of every process, in order; refused writes do not', async () => {
    const [first, second, admin] = await twoProcesses();
    const heard: ChangeEvent[] = [];
    const stop = await second.watchChanges((event) => heard.push(event));
    try {
      await write(first, 'live', [put('a', '1')], 'phone');
      await write(first, 'live', [put('b', '2')]);
      await assert.rejects(write(first, 'live', [put('a', 'stale')]), { name: 'ResourceConflictException' });
      await first.deleteDataset({ identityPoolId: POOL, identityId: IDENTITY, datasetName: 'live' }, Date.now());
      await write(first, 'other', [put('c', '3')]);
      await first.close(); // close() sends what is still queued
      const deadline = Date.now() + 5000;
      while (heard.length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(heard, [
        { identityPoolId: POOL, identityId: IDENTITY, datasetName: 'live', syncCount: 1, deviceId: 'phone' },
        { identityPoolId: POOL, identityId: IDENTITY, datasetName: 'live', syncCount: 2 },
        // The deletion, at the next SyncCount.
        { identityPoolId: POOL, identityId: IDENTITY, datasetName: 'live', syncCount: 3 },
        { identityPoolId: POOL, identityId: IDENTITY, datasetName: 'other', syncCount: 1 },
      ]);
    } finally {
      await stop();
      await admin.end();
      await second.close();
    }
  });

  /** Counts the writes in each statement of batched UpdateRecords writes that `store` sends. */
  function countBatchedWrites(store: PostgresStore): number[] {
    const pool = (store as unknown as { pool: pg.Pool }).pool;
    const query = pool.query.bind(pool) as (config: { text?: string; values?: unknown[][] }) => Promise<unknown>;
    const sizes: number[] = [];
    (pool as unknown as { query: typeof query }).query = (config) => {
      if (typeof config === 'object' && config.text?.includes('UPDATE datasets d SET live = true')) sizes.push(config.values![0]!.length);
      return query(config);
    };
    return sizes;
  }

  twoProcessTest("writes of several datasets in one turn share a statement, each its own compare-and-set: exact SyncCounts, counters and stream entries under racing processes", async (first, second, admin) => {
    const firstSizes = countBatchedWrites(first);
    const secondSizes = countBatchedWrites(second);
    const names = Array.from({ length: 6 }, (_, i) => `batched${i}`);
    const stream = { streamName: 'audit' };
    const writeStreamed = (store: PostgresStore, datasetName: string, key: string, value: string) =>
      store.updateRecords({ identityPoolId: POOL, identityId: IDENTITY, datasetName, patches: [put(key, value)], now: Date.now(), modifiedBy: 'pg-test', limits, stream });
    for (const name of names) await writeStreamed(first, name, 'seed', 's');
    // Both processes write every dataset at once: batches of one process meet the other's writes of the same rows.
    const results = await Promise.all(Array.from({ length: 72 }, (_, i) => writeStreamed(i % 2 ? first : second, names[i % names.length]!, `k${i}`, 'v'.repeat(1 + (i % 7)))));
    assert.ok([...firstSizes, ...secondSizes].some((size) => size > 1), `no statement carried more than one write: ${[...firstSizes, ...secondSizes]}`);
    for (const name of names) {
      const mine = results.filter((r) => r.dataset.datasetName === name);
      assert.deepEqual(mine.map((r) => r.dataset.syncCount).sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 2));
      const { rows: [dataset] } = await admin.query(
        `SELECT d.sync_count, d.num_records, d.data_storage, count(r.key)::int AS records, sum(octet_length(r.key) + octet_length(r.value))::int AS bytes
         FROM datasets d JOIN records r ON r.dataset_id = d.dataset_id WHERE d.dataset_name = $1 GROUP BY d.dataset_id`,
        [name],
      );
      assert.deepEqual([Number(dataset.sync_count), Number(dataset.num_records), Number(dataset.data_storage)], [13, 13, dataset.bytes]);
      assert.equal(dataset.records, 13);
      // One stream entry per committed write, queued in the order the writes committed.
      const { rows: entries } = await admin.query(`SELECT payload FROM outbox WHERE kind = 'stream' AND payload::json->'record'->>'dataSetName' = $1 ORDER BY outbox_id`, [name]);
      assert.deepEqual(entries.map((e) => JSON.parse(e.payload).record.syncCount), Array.from({ length: 13 }, (_, i) => i + 1));
      for (const entry of entries) {
        const { record } = JSON.parse(entry.payload);
        const committed = results.find((r) => r.dataset.datasetName === name && r.dataset.syncCount === record.syncCount);
        if (committed) assert.equal(record.kinesisSyncRecords[0].key, committed.records[0]!.key);
      }
    }
  });

  test("a write that fails inside a batch fails alone: the writes it was sent with commit", async () => {
    const store = await withPool(await freshStore());
    try {
      const sizes = countBatchedWrites(store);
      const names = ['good1', 'bad', 'good2', 'good3'];
      for (const name of names) await write(store, name, [put('seed', 's')]);
      // PostgreSQL's text cannot hold NUL, so that one write's statement fails wherever it is sent.
      const outcomes = await Promise.allSettled(names.map((name) => write(store, name, [put('k', name === 'bad' ? 'nul\u0000' : 'ok', 0)])));
      assert.equal(sizes[0], 4, `the four writes went out together first: ${sizes}`);
      assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      for (const name of names) {
        const dataset = await store.describeDataset({ identityPoolId: POOL, identityId: IDENTITY, datasetName: name });
        assert.equal(dataset?.syncCount, name === 'bad' ? 1 : 2);
        assert.equal(dataset?.numRecords, name === 'bad' ? 1 : 2);
      }
    } finally {
      await store.close();
    }
  });

  test('a batch whose statement timed out is not sent again: its writes answer InternalErrorException, never a conflict with themselves', async () => {
    const store = await withPool(await freshStore({ queryTimeoutMs: 600 }));
    const schema = `contract_${schemaCount}`;
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
      const sizes = countBatchedWrites(store);
      const names = ['a', 'b', 'c', 'd'];
      for (const name of names) await write(store, name, [put('seed', 's')]);
      // Another session holds every dataset's row past the timeout: PostgreSQL keeps the batch waiting, and runs and
      // commits it once the rows are free, after the store stopped waiting for it.
      await locker.query('BEGIN');
      await locker.query(`SELECT dataset_id FROM ${schema}.datasets FOR UPDATE`);
      const outcomes = Promise.allSettled(names.map((name) => write(store, name, [put('k', name, 0)])));
      await new Promise((r) => setTimeout(r, 1000));
      await locker.query('COMMIT');
      const settled = await outcomes;
      assert.equal(sizes[0], 4, `the four writes went out together first: ${sizes}`);
      for (const outcome of settled) {
        if (outcome.status === 'rejected') assert.equal((outcome.reason as Error).name, 'InternalErrorException', String(outcome.reason));
      }
      // What was answered unknown may or may not have been stored (PostgreSQL may still run the statement once the rows
      // are free, or drop it with the connection), but never twice; what was answered 200 was stored.
      for (const [i, name] of names.entries()) {
        const page = await store.listRecords({ identityPoolId: POOL, identityId: IDENTITY, datasetName: name }, 0, undefined, 100);
        const stored = page.records.map((r) => [r.key, r.value, r.syncCount]);
        if (settled[i]!.status === 'fulfilled') assert.deepEqual(stored, [['seed', 's', 1], ['k', name, 2]]);
        else assert.ok([1, 2].includes(stored.length), JSON.stringify(stored));
        assert.deepEqual(stored[1] ?? ['k', name, 2], ['k', name, 2]);
      }
    } finally {
      await locker.end();
      await store.close();
    }
  });

  test('a connection plans each statement once, even where ANALYZE makes the custom plans look cheaper', async () => {
    const schema = 'planned_once';
    const admin = new pg.Client({ connectionString: database.url, options: `-c search_path=${schema}` });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    // One connection, so the plans read below are those of every statement the store ran.
    const store = new PostgresStore({ connectionString: database.url, schema, maxConnections: 1 });
    await store.migrate();
    await withPool(store);
    // Enough rows that, analyzed, READ_FOR_WRITE's generic plan (costed for a 10-key array) looks dearer than a custom one.
    await admin.query(`INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records)
      SELECT $1, 'us-east-1:' || g, 'seeded', true, 0, 0, 'seed', 20, 0, 20 FROM generate_series(1, 2000) g`, [POOL]);
    await admin.query(`INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
      SELECT d.dataset_id, 'k' || g, 'v', g, 0, 'seed', 0 FROM datasets d, generate_series(1, 20) g`);
    await admin.query('ANALYZE');
    await admin.end();
    await write(store, 'planned', [put('first', 'v')]);
    for (let i = 1; i <= 20; i++) await write(store, 'planned', [put(`k${i}`, 'v')]);
    const pool = (store as unknown as { pool: pg.Pool }).pool;
    const { rows } = await pool.query<{ statement: string; custom_plans: string }>('SELECT statement, custom_plans FROM pg_prepared_statements WHERE custom_plans > 0');
    assert.deepEqual(rows, []);
    await store.close();
  });

  test("the database URL's own options are sent beside the store's, and win where both set one", async () => {
    const settings = async (options: string, names: string[]) => {
      const url = new URL(database.url);
      url.searchParams.set('options', options);
      const store = new PostgresStore({ connectionString: url.toString(), maxConnections: 1 });
      const pool = (store as unknown as { pool: pg.Pool }).pool;
      const values = [];
      for (const name of names) values.push((await pool.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]);
      await store.close();
      return values;
    };
    assert.deepEqual(await settings('-c statement_timeout=12345', ['statement_timeout', 'plan_cache_mode']), ['12345ms', 'force_generic_plan']);
    assert.deepEqual(await settings('-c plan_cache_mode=auto', ['plan_cache_mode']), ['auto']);
  });

  test('ping (for /ready) fails on a read-only database (a standby) and while writes fail for the storage\'s sake, and passes again once a probe write commits', async () => {
    const store = await withPool(await freshStore());
    const schema = `contract_${schemaCount}`;
    const readOnlyUrl = new URL(database.url);
    readOnlyUrl.searchParams.set('options', '-c default_transaction_read_only=on');
    const readOnly = new PostgresStore({ connectionString: readOnlyUrl.toString(), schema, maxConnections: 1 });
    const admin = new pg.Client({ connectionString: database.url, options: `-c search_path=${schema}` });
    await admin.connect();
    try {
      assert.equal(await store.ping(), true);
      assert.equal(await readOnly.ping(), false);
      assert.ok(await readOnly.describeDataset({ identityPoolId: POOL, identityId: IDENTITY, datasetName: 'none' }) === undefined, 'reads still answer');

      await write(store, 'ready', [put('a', '1')]);
      // What a full disk does to every write (SQLSTATE 53100), while reads go on.
      await admin.query(`CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END $$`);
      for (const table of ['records', 'settings']) await admin.query(`CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION refuse_writes()`);
      assert.equal(await store.ping(), true, 'nothing has failed yet: no probe write');
      await assert.rejects(write(store, 'ready', [put('b', '2')]));
      assert.equal(await store.ping(), false);
      for (const table of ['records', 'settings']) await admin.query(`DROP TRIGGER refuse_writes ON ${table}`);
      assert.equal(await store.ping(), true);
      assert.equal((await admin.query("SELECT count(*)::int AS n FROM settings WHERE name = 'write-probe'")).rows[0].n, 1);
    } finally {
      await admin.end();
      await Promise.all([store.close(), readOnly.close()]);
    }
  });

  test('a database made read-only and then writable again (a failover and back): ping and writes recover, not kept read-only by pooled sessions', async () => {
    const own = await createTestDatabase('cognisync_readonly');
    const name = new URL(own.url).pathname.slice(1);
    const store = new PostgresStore({ connectionString: own.url, maxConnections: 4 });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const endSessions = () => admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    try {
      await store.migrate();
      await withPool(store);
      await Promise.all([1, 2, 3, 4].map((i) => write(store, `warm-${i}`, [put('k', 'v')])));
      await admin.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
      await endSessions();
      assert.equal(await store.ping(), false);
      // Every pooled session opens read-only now.
      await Promise.allSettled([1, 2, 3, 4].map((i) => write(store, `read-only-${i}`, [put('k', 'v')])));
      await admin.query(`ALTER DATABASE ${name} RESET default_transaction_read_only`);
      let pings = 0;
      while (!(await store.ping())) assert.ok(++pings <= 5, 'ping stays false after the database is writable again');
      const writes = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((i) => write(store, `after-${i}`, [put('k', 'v')])));
      const failed = writes.filter((w) => w.status === 'rejected').length;
      assert.ok(failed <= 4, `${failed} of 6 writes failed once the database was writable`);
      const again = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((i) => write(store, `later-${i}`, [put('k', 'v')])));
      assert.deepEqual(again.map((w) => w.status), Array(6).fill('fulfilled'));
    } finally {
      await store.close();
      await admin.query(`ALTER DATABASE ${name} RESET default_transaction_read_only`).catch(() => undefined);
      await admin.end();
      await own.drop();
    }
  });

  test('an unreachable database answers InternalErrorException, not a crash', async () => {
    const store = new PostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
    await assert.rejects(store.describeDataset({ identityPoolId: 'p', identityId: 'i', datasetName: 'd' }), { name: 'InternalErrorException' });
    assert.equal(await store.ping(), false);
    await store.close();
  });
});
