// Runs the Store contract against PostgreSQL: one throw-away database per run, one schema per test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../../test/support/postgres.ts';
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

  async function freshStore(): Promise<PostgresStore> {
    const schema = `contract_${++schemaCount}`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    const store = new PostgresStore({ connectionString: database.url, schema, maxConnections: 4 });
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

  test('an unreachable database answers InternalErrorException, not a crash', async () => {
    const store = new PostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
    await assert.rejects(store.describeDataset({ identityPoolId: 'p', identityId: 'i', datasetName: 'd' }), { name: 'InternalErrorException' });
    assert.equal(await store.ping(), false);
    await store.close();
  });
});
