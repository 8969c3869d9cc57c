// The floor: the least a server must do to answer the benchmarked operations from SQLite. It runs cognisync's
// own schema (its migrations) with the same pragmas and the same SQL statements, in the same transactions,
// but skips everything else: no SigV4, no model validation, no session tokens, no limits, no logging.
// cognisync ÷ floor is therefore the price of being a real, checked, AWS-compatible server.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { migrationSql, sqliteMigrations } from '../../packages/server/src/store/sqlite/migrations.ts';

const { values } = parseArgs({ options: { 'data-dir': { type: 'string' } } });
const dataDir = values['data-dir'] ?? '.';
mkdirSync(dataDir, { recursive: true });
const synchronous = (process.env.COGNISYNC_SQLITE_SYNCHRONOUS ?? 'NORMAL').toUpperCase();

const db = new Database(join(dataDir, 'floor.db'));
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${synchronous}`);
db.pragma('foreign_keys = ON');
db.pragma('busy_timeout = 5000');
// cognisync's schema, built from nothing as a new data dir is.
for (const migration of sqliteMigrations) db.exec(migrationSql(migration, () => false));

interface DatasetRow {
  dataset_id: number;
  identity_id: string;
  dataset_name: string;
  live: number;
  creation_date: number;
  last_modified_date: number;
  last_modified_by: string;
  sync_count: number;
  data_storage: number;
  num_records: number;
  deleted_at_sync_count: number;
}
interface RecordRow {
  key: string;
  value: string | null;
  sync_count: number;
  last_modified_date: number;
  last_modified_by: string;
  device_last_modified_date: number;
}

// The statements cognisync's SQLite store runs for these operations, verbatim. cognisync reads some of their rows as
// arrays (better-sqlite3's raw mode, cheaper than a row object); the floor takes better-sqlite3's default, objects.
const sql = {
  getPool: db.prepare<[string], { identity_pool_id: string; description: string }>('SELECT * FROM identity_pools WHERE identity_pool_id = ?'),
  insertPool: db.prepare('INSERT INTO identity_pools (identity_pool_id, identity_pool_name, description, creation_date, last_modified_date) VALUES (?, ?, ?, ?, ?)'),
  getDataset: db.prepare<[string, string, string], DatasetRow>(
    `SELECT dataset_id, identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records,
     deleted_at_sync_count FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND dataset_name = ?`,
  ),
  countLiveDatasets: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND live = 1'),
  insertDataset: db.prepare(
    `INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count)
     VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 1)`,
  ),
  updateDataset: db.prepare(
    `UPDATE datasets SET live = 1, creation_date = ?, last_modified_date = ?, last_modified_by = ?, sync_count = ?, data_storage = ?, num_records = ?,
     sync_sessions_count = sync_sessions_count + 1 WHERE dataset_id = ?`,
  ),
  getRecord: db.prepare<[number, string], RecordRow>('SELECT key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date FROM records WHERE dataset_id = ? AND key = ?'),
  upsertRecord: db.prepare(
    `INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count, last_modified_date = excluded.last_modified_date,
     last_modified_by = excluded.last_modified_by, device_last_modified_date = excluded.device_last_modified_date`,
  ),
  listRecords: db.prepare<[number, number, number, string, number], RecordRow>(
    `SELECT key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date FROM records
     WHERE dataset_id = ? AND sync_count > ? AND (sync_count, key) > (?, ?) ORDER BY sync_count, key LIMIT CAST(? AS INTEGER)`,
  ),
  mergedDatasetNames: db.prepare<[string, string, string], { dataset_name: string }>(
    'SELECT dataset_name FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND merged_base_name = ? AND live = 1 ORDER BY dataset_name',
  ),
  insertIdentity: db.prepare('INSERT INTO identities (identity_id, identity_pool_id, creation_date, last_modified_date) VALUES (?, ?, ?, ?)'),
  getIdentity: db.prepare<[string], { identity_id: string; identity_pool_id: string }>('SELECT * FROM identities WHERE identity_id = ?'),
  identityLogins: db.prepare('SELECT provider_name, user_identifier FROM identity_logins WHERE identity_id = ? ORDER BY provider_name, user_identifier'),
  purgeExpiredCredentials: db.prepare('DELETE FROM issued_credentials WHERE identity_id = ? AND expiration < ?'),
  insertCredentials: db.prepare('INSERT INTO issued_credentials (access_key_id, identity_pool_id, identity_id, expiration) VALUES (?, ?, ?, ?)'),
};

const byteLength = (key: string, value: string | null) => (value === null ? 0 : Buffer.byteLength(key) + Buffer.byteLength(value));
const recordOut = (r: RecordRow) => ({
  Key: r.key,
  ...(r.value === null ? {} : { Value: r.value }),
  SyncCount: r.sync_count,
  LastModifiedDate: r.last_modified_date / 1000,
  LastModifiedBy: r.last_modified_by,
  DeviceLastModifiedDate: r.device_last_modified_date / 1000,
});

class Conflict extends Error {}

interface Patch {
  Op: 'replace' | 'remove';
  Key: string;
  Value?: string;
  SyncCount: number;
}

/** UpdateRecords' transaction: the optimistic-concurrency check and the dataset counters, nothing else. */
const updateRecords = db.transaction((pool: string, identity: string, name: string, patches: Patch[], now: number) => {
  const row = sql.getDataset.get(pool, identity, name);
  const live = Boolean(row?.live);
  if (!live) sql.countLiveDatasets.get(pool, identity);
  let dataStorage = live ? row!.data_storage : 0;
  let numRecords = live ? row!.num_records : 0;
  const syncCount = (row?.sync_count ?? 0) + 1;
  const out: RecordRow[] = [];
  for (const patch of patches) {
    const before = live ? sql.getRecord.get(row!.dataset_id, patch.Key) : undefined;
    if ((before?.sync_count ?? 0) !== patch.SyncCount) throw new Conflict();
    const value = patch.Op === 'remove' ? null : (patch.Value ?? '');
    dataStorage += byteLength(patch.Key, value) - (before ? byteLength(before.key, before.value) : 0);
    numRecords += (value === null ? 0 : 1) - (before && before.value !== null ? 1 : 0);
    out.push({ key: patch.Key, value, sync_count: syncCount, last_modified_date: now, last_modified_by: identity, device_last_modified_date: now });
  }
  const creationDate = live ? row!.creation_date : now;
  let datasetId: number;
  if (row) {
    datasetId = row.dataset_id;
    sql.updateDataset.run(creationDate, now, identity, syncCount, dataStorage, numRecords, datasetId);
  } else {
    datasetId = Number(sql.insertDataset.run(pool, identity, name, creationDate, now, identity, syncCount, dataStorage, numRecords).lastInsertRowid);
  }
  for (const r of out) sql.upsertRecord.run(datasetId, r.key, r.value, r.sync_count, r.last_modified_date, r.last_modified_by, r.device_last_modified_date);
  return out;
});

const listRecords = db.transaction((pool: string, identity: string, name: string, lastSyncCount: number, limit: number) => {
  const row = sql.getDataset.get(pool, identity, name);
  const merged = sql.mergedDatasetNames.all(pool, identity, name).map((r) => r.dataset_name);
  const records = row && row.live ? sql.listRecords.all(row.dataset_id, lastSyncCount, 0, '', limit + 1) : [];
  return { row, merged, records };
});

const issueCredentials = db.transaction((identity: string, pool: string, accessKeyId: string, expiration: number) => {
  sql.purgeExpiredCredentials.run(identity, Date.now() - 86_400_000);
  sql.insertCredentials.run(accessKeyId, pool, identity, expiration);
});

/**
 * cognisync's group commit (its SQLite store's write()): the writes asked for in one turn of the event loop run in one
 * BEGIN IMMEDIATE transaction, each in a savepoint (a transaction function called inside a transaction; a lone write
 * needs none), and are answered after the commit. Without it the floor would pay a commit per write where cognisync
 * pays one per turn.
 */
type WriteArgs = Parameters<typeof updateRecords>;
let queued: Array<{ args: WriteArgs; res: ServerResponse }> = [];
const outcome = (write: () => RecordRow[]): RecordRow[] | Conflict => {
  try {
    return write();
  } catch (error) {
    if (error instanceof Conflict) return error;
    throw error;
  }
};
const commitQueued = db.transaction((writes: typeof queued) => writes.map(({ args }) => outcome(() => updateRecords(...args))));

function queueWrite(args: WriteArgs, res: ServerResponse) {
  if (queued.push({ args, res }) > 1) return;
  setImmediate(() => {
    const writes = queued;
    queued = [];
    let outcomes: Array<RecordRow[] | Conflict>;
    try {
      outcomes = writes.length === 1 ? [outcome(() => updateRecords.immediate(...writes[0]!.args))] : commitQueued.immediate(writes);
    } catch (error) {
      for (const { res } of writes) send(res, 500, { __type: 'InternalErrorException', message: String(error) });
      return;
    }
    writes.forEach(({ res }, i) => {
      const result = outcomes[i]!;
      if (result instanceof Conflict) send(res, 409, { __type: 'ResourceConflictException' });
      else send(res, 200, { Records: result.map(recordOut) });
    });
  });
}

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function handle(req: IncomingMessage, body: Buffer, res: ServerResponse) {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const now = Date.now();
  if (path === '/') {
    const target = String(req.headers['x-amz-target'] ?? '').split('.')[1];
    const input = JSON.parse(body.toString()) as Record<string, string>;
    if (target === 'CreateIdentityPool') {
      const id = `us-east-1:${randomUUID()}`;
      sql.insertPool.run(id, input.IdentityPoolName, JSON.stringify(input), now, now);
      return send(res, 200, { IdentityPoolId: id, ...input });
    }
    if (target === 'GetId') {
      sql.getPool.get(input.IdentityPoolId!);
      const id = `us-east-1:${randomUUID()}`;
      sql.insertIdentity.run(id, input.IdentityPoolId, now, now);
      return send(res, 200, { IdentityId: id });
    }
    if (target === 'GetCredentialsForIdentity') {
      const identity = sql.getIdentity.get(input.IdentityId!);
      if (!identity) return send(res, 400, { __type: 'ResourceNotFoundException' });
      sql.identityLogins.all(identity.identity_id);
      sql.getPool.get(identity.identity_pool_id);
      const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
      const expiration = now + 3_600_000;
      issueCredentials(identity.identity_id, identity.identity_pool_id, accessKeyId, expiration);
      return send(res, 200, {
        IdentityId: identity.identity_id,
        Credentials: { AccessKeyId: accessKeyId, SecretKey: randomBytes(30).toString('base64url'), SessionToken: `CS1${randomBytes(32).toString('base64url')}`, Expiration: expiration / 1000 },
      });
    }
    return send(res, 400, { __type: 'UnknownOperationException' });
  }
  // /identitypools/{pool}/identities/{identity}/datasets/{name}[/records]
  const parts = path.split('/');
  const pool = decodeURIComponent(parts[2] ?? '');
  const identity = decodeURIComponent(parts[4] ?? '');
  const name = decodeURIComponent(parts[6] ?? '');
  sql.getPool.get(pool);
  if (req.method === 'POST' && parts.length === 7) {
    const input = JSON.parse(body.toString()) as { RecordPatches?: Patch[] };
    return queueWrite([pool, identity, name, input.RecordPatches ?? [], now], res);
  }
  if (req.method === 'GET' && parts.length === 8 && parts[7] === 'records') {
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const limit = Math.min(Number(query.get('maxResults') ?? 1024), 1024);
    const page = listRecords.deferred(pool, identity, name, Number(query.get('lastSyncCount') ?? 0), limit);
    const records = page.records.slice(0, limit);
    return send(res, 200, {
      Records: records.map(recordOut),
      Count: records.length,
      DatasetSyncCount: page.row?.sync_count ?? 0,
      LastModifiedBy: page.row?.last_modified_by,
      MergedDatasetNames: page.merged,
      DatasetExists: Boolean(page.row?.live),
      DatasetDeletedAfterRequestedSyncCount: false,
    });
  }
  if (req.method === 'GET' && parts.length === 7) {
    const row = sql.getDataset.get(pool, identity, name);
    if (!row || !row.live) return send(res, 404, { __type: 'ResourceNotFoundException' });
    return send(res, 200, {
      Dataset: {
        IdentityId: row.identity_id,
        DatasetName: row.dataset_name,
        CreationDate: row.creation_date / 1000,
        LastModifiedDate: row.last_modified_date / 1000,
        LastModifiedBy: row.last_modified_by,
        DataStorage: row.data_storage,
        NumRecords: row.num_records,
      },
    });
  }
  return send(res, 400, { __type: 'UnknownOperationException' });
}

const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      handle(req, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), res);
    } catch (error) {
      send(res, 500, { __type: 'InternalErrorException', message: String(error) });
    }
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`floor listening on http://127.0.0.1:${(server.address() as AddressInfo).port} (synchronous=${synchronous})\n`);
});
process.once('SIGTERM', () =>
  server.close(() => {
    db.close();
    process.exit(0);
  }),
);
