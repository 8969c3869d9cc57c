// Bulk seeding for the "identities in the store" axis: 100k identities through the API would take minutes,
// so their rows are written straight into cognisync's tables (identities, datasets, records), shaped as the
// stores write them. This couples the benchmark to the schema: when a migration changes these tables,
// change this file. Each identity gets dataset `p0` with 10 records k0..k9 at SyncCount 1, then k9 changed
// again (dataset at SyncCount 2), so ListRecords(lastSyncCount=1) returns exactly one record.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Target } from './targets.ts';
import { value } from './workload.ts';

const RECORDS = 10;

/**
 * Runs a bulk load on the target's PostgreSQL database, then vacuums and analyzes `tables` and checkpoints, as the
 * SQLite path (onSqlite) ends with a WAL checkpoint. Otherwise the first reads of the new rows set their hint bits
 * (dirtying every page they read), and autovacuum and the next checkpoint do the rest of that work, all in the
 * background of a later measurement.
 */
async function onPostgres(target: Target, tables: string, load: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: target.databaseUrl });
  await client.connect();
  try {
    await load(client);
    await client.query(`VACUUM (ANALYZE) ${tables}`);
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
  }
}

/** Runs a bulk load on the target's SQLite file (shared with the running server), then checkpoints the WAL. */
function onSqlite(target: Target, load: (db: Database.Database) => void): void {
  const db = new Database(join(target.dataDir, 'cognisync.db'));
  try {
    db.pragma('busy_timeout = 10000');
    load(db);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** The identity id of seeded identity `index` (PostgreSQL computes the same with md5(…)::uuid). */
export function identityIdFor(index: number): string {
  const hex = createHash('md5').update(`bench-${index}`).digest('hex');
  return `us-east-1:${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Adds identities [from, to) to the pool. */
export async function seedIdentities(target: Target, identityPoolId: string, from: number, to: number, valueBytes: number): Promise<void> {
  const now = Date.now();
  const recordValue = value(valueBytes, 'seed');
  const dataStorage = Array.from({ length: RECORDS }, (_, r) => Buffer.byteLength(`k${r}`) + valueBytes).reduce((a, b) => a + b, 0);
  if (target.store === 'postgres') {
    await onPostgres(target, 'identities, datasets, records', async (client) => {
      const chunk = 20_000;
      for (let start = from; start < to; start += chunk) {
        await client.query(
          `WITH ids AS (
             SELECT 'us-east-1:' || md5('bench-' || i)::uuid::text AS identity_id FROM generate_series($1::int, $2::int - 1) AS i
           ), identities AS (
             INSERT INTO identities (identity_id, identity_pool_id, creation_date, last_modified_date) SELECT identity_id, $3, $4, $4 FROM ids
           ), datasets AS (
             INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count)
             SELECT $3, identity_id, 'p0', true, $4, $4, identity_id, 2, $5, ${RECORDS}, 2 FROM ids RETURNING dataset_id, identity_id
           )
           INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
           SELECT dataset_id, 'k' || r, $6, CASE WHEN r = ${RECORDS - 1} THEN 2 ELSE 1 END, $4, identity_id, $4 FROM datasets, generate_series(0, ${RECORDS - 1}) AS r`,
          [start, Math.min(start + chunk, to), identityPoolId, now, dataStorage, recordValue],
        );
      }
    });
    return;
  }
  onSqlite(target, (db) => {
    const insertIdentity = db.prepare('INSERT INTO identities (identity_id, identity_pool_id, creation_date, last_modified_date) VALUES (?, ?, ?, ?)');
    const insertDataset = db.prepare(
      `INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count)
       VALUES (?, ?, 'p0', 1, ?, ?, ?, 2, ?, ${RECORDS}, 2)`,
    );
    const insertRecord = db.prepare('INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const seed = db.transaction((start: number, end: number) => {
      for (let i = start; i < end; i++) {
        const identityId = identityIdFor(i);
        insertIdentity.run(identityId, identityPoolId, now, now);
        const datasetId = insertDataset.run(identityPoolId, identityId, now, now, identityId, dataStorage).lastInsertRowid;
        for (let r = 0; r < RECORDS; r++) insertRecord.run(datasetId, `k${r}`, recordValue, r === RECORDS - 1 ? 2 : 1, now, identityId, now);
      }
    });
    // Chunks, so the server (which shares the file) is never locked out for long.
    for (let start = from; start < to; start += 10_000) seed.immediate(start, Math.min(start + 10_000, to));
  });
}

export interface DatasetSeed {
  identityId: string;
  datasetName: string;
  records: number;
  valueBytes: number;
}

/**
 * Datasets of `records` records (keys r0000…, values of `valueBytes`), written straight into the tables: every record
 * at SyncCount 1 except r0000 at 2, the dataset at SyncCount 2 — as if one UpdateRecords wrote them all and a second
 * changed r0000, so ListRecords(lastSyncCount=1) returns exactly one record.
 */
export async function seedDatasets(target: Target, identityPoolId: string, seeds: readonly DatasetSeed[]): Promise<void> {
  const now = Date.now();
  const key = (i: number) => `r${String(i).padStart(4, '0')}`;
  if (target.store === 'postgres') {
    await onPostgres(target, 'datasets, records', async (client) => {
      for (const seed of seeds) {
        const dataStorage = seed.records * (5 + seed.valueBytes);
        await client.query(
          `WITH dataset AS (
             INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count)
             VALUES ($1, $2, $3, true, $4, $4, $2, 2, $5, $6, 2) RETURNING dataset_id
           )
           INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
           SELECT dataset_id, 'r' || lpad(i::text, 4, '0'), left(repeat(md5($3 || i::text), ($7::int / 32) + 1), $7::int), CASE WHEN i = 0 THEN 2 ELSE 1 END, $4, $2, $4
           FROM dataset, generate_series(0, $6::int - 1) AS i`,
          [identityPoolId, seed.identityId, seed.datasetName, now, dataStorage, seed.records, seed.valueBytes],
        );
      }
    });
    return;
  }
  onSqlite(target, (db) => {
    const insertDataset = db.prepare(
      `INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count)
       VALUES (?, ?, ?, 1, ?, ?, ?, 2, ?, ?, 2)`,
    );
    const insertRecord = db.prepare('INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const seedOne = db.transaction((seed: DatasetSeed) => {
      const datasetId = insertDataset.run(identityPoolId, seed.identityId, seed.datasetName, now, now, seed.identityId, seed.records * (5 + seed.valueBytes), seed.records).lastInsertRowid;
      for (let i = 0; i < seed.records; i++) insertRecord.run(datasetId, key(i), value(seed.valueBytes, `${seed.datasetName}/${i}`), i === 0 ? 2 : 1, now, seed.identityId, now);
    });
    for (const seed of seeds) seedOne.immediate(seed);
  });
}
