// The scale-out store: PostgreSQL through a bounded `pg` pool, for several stateless cognisync processes
// on one database. Concurrency rule: every write that touches an identity's datasets first takes a
// transaction-scoped advisory lock on (pool, identity), so writers of one identity run one at a time
// (record conflicts and the dataset-count limit are decided on a stable view) while different identities
// never wait for each other. Reads run in REPEATABLE READ snapshots.
import pg from 'pg';
import { applyRecordPatches } from '../../core/record-patches.js';
import { bulkPublishJob, pushEntries, streamEntries } from '../../outbox/entries.js';
import type { BulkPublishState } from '../../core/bulk-publish.js';
import { InternalErrorException, LimitExceededException, ResourceConflictException, ServiceError, TooManyRequestsException } from '../../errors.js';
import type {
  ChangeEvent, ClaimedOutboxEntry, DatasetKey, DatasetRecord, DeviceRecord, OutboxBacklog, OutboxEntry, PushTarget, StreamTarget, IdentityPoolRecord, IdentityPoolUsage, IdentityRecord, IdentityUsage, IssuedCredentialsRecord, Login,
  LoginOwnedElsewhere, PoolRoles, PoolSyncSettings, RecordCursor, RecordsPage, Store, StoredRecord, UpdateRecordsRequest, UpdateRecordsResult,
} from '../store.js';
import { EXPIRED_CREDENTIALS_RETENTION_MS } from '../store.js';
import { postgresMigrations } from './migrations.js';
import { toDataset, toPool, toRecord, toSettings, type DatasetRow, type PoolRow, type RecordRow } from '../rows.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Most connections this process opens (default 10). */
  maxConnections?: number;
  /** Schema to use instead of the connection's default (tests use one per run). */
  schema?: string;
  /** Called when an idle pooled connection fails (the pool replaces it). */
  onBackgroundError?: (error: Error) => void;
}

type Queryable = pg.Pool | pg.PoolClient;

const BIGINT_OID = 20;
// Counters and epoch-ms times fit a double exactly; the driver would hand them over as strings.
const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === BIGINT_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) };

/** Lock key for the advisory lock that serializes one identity's writers. */
const identityLockKey = (identityPoolId: string, identityId: string) => `${identityPoolId}/${identityId}`;
const MIGRATION_LOCK = 'cognisync:migrations';
/** NOTIFY channel of committed changes: delivered at commit to every process's LISTEN connection. */
const CHANGES_CHANNEL = 'cognisync_changes';

const DEVICE_COLUMNS = 'identity_pool_id AS "identityPoolId", identity_id AS "identityId", device_id AS "deviceId", platform, token, creation_date AS "creationDate"';
const RECORD_COLUMNS = 'key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date';

/** SQLSTATEs and driver failures that mean "busy, retry" vs "database unreachable". */
const BUSY_CODES = new Set(['40001', '40P01', '55P03', '53300', '57014']);
const UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/** Store failures become AWS-shaped errors: busy → TooManyRequestsException, unreachable → InternalErrorException. */
function toServiceError(error: unknown): unknown {
  if (error instanceof ServiceError) return error;
  const code = (error as { code?: string }).code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (BUSY_CODES.has(code) || /timeout exceeded when trying to connect/i.test(message)) {
    return new TooManyRequestsException('The data store is busy; retry the request.');
  }
  if (UNAVAILABLE_CODES.has(code) || /Connection terminated|connection.*(closed|ended)/i.test(message)) {
    return new InternalErrorException('The data store is unavailable; retry the request.');
  }
  return error;
}

export class PostgresStore implements Store {
  private readonly pool: pg.Pool;
  private readonly connectionString: string;
  private readonly schema: string | undefined;

  constructor(options: PostgresStoreOptions) {
    this.connectionString = options.connectionString;
    this.schema = options.schema;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      types,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    });
    // An idle connection that dies (database restart) must not crash the process; the pool reconnects.
    this.pool.on('error', (error) => options.onBackgroundError?.(error));
  }

  /**
   * Runs `fn` on a checked-out pooled client. pg-pool listens for 'error' only on idle clients, so a connection
   * lost while a client is checked out (database restart, network cut mid-transaction) would be an unhandled
   * 'error' event and crash the process. The listener here keeps it handled (the pending query rejects with the
   * same error) and the broken client is discarded on release instead of returning to the pool.
   */
  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken = error;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** Runs `fn` on a pooled client inside a transaction; failures are mapped to AWS errors. */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    try {
      return await this.withClient(async (client) => {
        await client.query(begin);
        try {
          const result = await fn(client);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      });
    } catch (error) {
      throw toServiceError(error);
    }
  }

  private read<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.transaction(fn, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], on: Queryable = this.pool): Promise<R[]> {
    try {
      return (await on.query<R>(sql, params)).rows;
    } catch (error) {
      throw toServiceError(error);
    }
  }

  private async lockIdentity(client: pg.PoolClient, identityPoolId: string, identityId: string): Promise<void> {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [identityLockKey(identityPoolId, identityId)]);
  }

  async migrate(): Promise<void> {
    await this.withClient(async (client) => {
      try {
        // Session-level lock: a second process starting now waits here, then finds nothing left to do.
        await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
        const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
        for (const migration of postgresMigrations) {
          if (applied.has(migration.version)) continue;
          await client.query('BEGIN');
          try {
            await client.query(migration.sql);
            await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [MIGRATION_LOCK]).catch(() => undefined);
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async ping(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async getOrCreateSetting(name: string, value: string): Promise<string> {
    await this.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
    return (await this.query<{ value: string }>('SELECT value FROM settings WHERE name = $1', [name]))[0]!.value;
  }

  async createIdentityPool(pool: IdentityPoolRecord, maxPools: number): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', ['cognisync:pools']);
      const [{ n }] = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM identity_pools')).rows as [{ n: number }];
      if (n >= maxPools) throw new LimitExceededException(`The maximum of ${maxPools} identity pools has been reached`);
      await client.query(
        'INSERT INTO identity_pools (identity_pool_id, identity_pool_name, description, creation_date, last_modified_date) VALUES ($1, $2, $3, $4, $5)',
        [pool.identityPoolId, pool.identityPoolName, JSON.stringify(pool.description), pool.creationDate, pool.lastModifiedDate],
      );
    });
  }

  async getIdentityPool(identityPoolId: string): Promise<IdentityPoolRecord | undefined> {
    const [row] = await this.query<PoolRow>('SELECT * FROM identity_pools WHERE identity_pool_id = $1', [identityPoolId]);
    return row && toPool(row);
  }

  async listIdentityPools(afterId: string | undefined, limit: number): Promise<IdentityPoolRecord[]> {
    const rows = await this.query<PoolRow>('SELECT * FROM identity_pools WHERE identity_pool_id > $1 ORDER BY identity_pool_id LIMIT $2', [afterId ?? '', limit]);
    return rows.map(toPool);
  }

  async updateIdentityPool(pool: Omit<IdentityPoolRecord, 'creationDate'>): Promise<boolean> {
    const rows = await this.query(
      'UPDATE identity_pools SET identity_pool_name = $1, description = $2, last_modified_date = $3 WHERE identity_pool_id = $4 RETURNING 1',
      [pool.identityPoolName, JSON.stringify(pool.description), pool.lastModifiedDate, pool.identityPoolId],
    );
    return rows.length > 0;
  }

  async deleteIdentityPool(identityPoolId: string): Promise<boolean> {
    return this.transaction(async (client) => {
      for (const table of ['subscriptions', 'devices', 'datasets', 'issued_credentials', 'identity_logins', 'identities']) {
        await client.query(`DELETE FROM ${table} WHERE identity_pool_id = $1`, [identityPoolId]);
      }
      return ((await client.query('DELETE FROM identity_pools WHERE identity_pool_id = $1', [identityPoolId])).rowCount ?? 0) > 0;
    });
  }

  async getPoolSyncSettings(identityPoolId: string): Promise<PoolSyncSettings | undefined> {
    const [row] = await this.query<PoolRow>('SELECT * FROM identity_pools WHERE identity_pool_id = $1', [identityPoolId]);
    return row && toSettings(row);
  }

  /** Reads the pool row FOR UPDATE, lets `change` compute the new settings, returns them (undefined: no pool). */
  private updatePoolRow<T>(identityPoolId: string, change: (row: PoolRow, client: pg.PoolClient) => Promise<T>): Promise<T | undefined> {
    return this.transaction(async (client) => {
      const [row] = (await client.query<PoolRow>('SELECT * FROM identity_pools WHERE identity_pool_id = $1 FOR UPDATE', [identityPoolId])).rows;
      return row ? change(row, client) : undefined;
    });
  }

  async setPoolConfiguration(identityPoolId: string, changes: Pick<PoolSyncSettings, 'pushSync' | 'cognitoStreams'>): Promise<PoolSyncSettings | undefined> {
    return this.updatePoolRow(identityPoolId, async (row, client) => {
      const settings = { ...toSettings(row), ...changes };
      await client.query('UPDATE identity_pools SET push_sync = $1, cognito_streams = $2 WHERE identity_pool_id = $3', [
        settings.pushSync ? JSON.stringify(settings.pushSync) : null,
        settings.cognitoStreams ? JSON.stringify(settings.cognitoStreams) : null,
        identityPoolId,
      ]);
      return settings;
    });
  }

  async setCognitoEvents(identityPoolId: string, changes: Record<string, string>): Promise<void> {
    await this.updatePoolRow(identityPoolId, async (row, client) => {
      const events = toSettings(row).cognitoEvents;
      for (const [type, fn] of Object.entries(changes)) {
        if (fn === '') delete events[type];
        else events[type] = fn;
      }
      await client.query('UPDATE identity_pools SET cognito_events = $1 WHERE identity_pool_id = $2', [JSON.stringify(events), identityPoolId]);
    });
  }

  async startBulkPublish(identityPoolId: string, decide: (settings: PoolSyncSettings) => BulkPublishState, now: number): Promise<BulkPublishState | undefined> {
    return this.updatePoolRow(identityPoolId, async (row, client) => {
      const settings = toSettings(row);
      const next = decide(settings);
      await client.query('UPDATE identity_pools SET bulk_publish = $1 WHERE identity_pool_id = $2', [JSON.stringify(next), identityPoolId]);
      if (next.status === 'IN_PROGRESS') await this.insertOutbox(client, [bulkPublishJob(identityPoolId, settings)], now);
      return next;
    });
  }

  async setBulkPublishState(identityPoolId: string, state: BulkPublishState): Promise<void> {
    await this.query('UPDATE identity_pools SET bulk_publish = $1 WHERE identity_pool_id = $2', [JSON.stringify(state), identityPoolId]);
  }

  private async datasetRow(key: DatasetKey, on: Queryable): Promise<DatasetRow | undefined> {
    const [row] = await this.query<DatasetRow>('SELECT * FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3', [key.identityPoolId, key.identityId, key.datasetName], on);
    return row;
  }

  async describeDataset(key: DatasetKey): Promise<DatasetRecord | undefined> {
    const row = await this.datasetRow(key, this.pool);
    return row && row.live ? toDataset(row) : undefined;
  }

  async listDatasets(identityPoolId: string, identityId: string, afterName: string | undefined, limit: number): Promise<DatasetRecord[]> {
    const rows = await this.query<DatasetRow>(
      'SELECT * FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND live AND dataset_name > $3 ORDER BY dataset_name LIMIT $4',
      [identityPoolId, identityId, afterName ?? '', limit],
    );
    return rows.map(toDataset);
  }

  private async subscribedDevices(client: Queryable, key: DatasetKey): Promise<DeviceRecord[]> {
    return this.query<DeviceRecord>(
      `SELECT d.identity_pool_id AS "identityPoolId", d.identity_id AS "identityId", d.device_id AS "deviceId", d.platform, d.token, d.creation_date AS "creationDate"
       FROM subscriptions s JOIN devices d ON d.identity_pool_id = s.identity_pool_id AND d.identity_id = s.identity_id AND d.device_id = s.device_id
       WHERE s.identity_pool_id = $1 AND s.identity_id = $2 AND s.dataset_name = $3 ORDER BY d.device_id`,
      [key.identityPoolId, key.identityId, key.datasetName],
      client,
    );
  }

  async deleteDataset(key: DatasetKey, now: number, stream?: StreamTarget, push?: PushTarget): Promise<DatasetRecord | undefined> {
    return this.transaction(async (client) => {
      await this.lockIdentity(client, key.identityPoolId, key.identityId);
      const row = await this.datasetRow(key, client);
      if (!row || !row.live) return undefined;
      await client.query('DELETE FROM records WHERE dataset_id = $1', [row.dataset_id]);
      await client.query(
        'UPDATE datasets SET live = false, deleted_at_sync_count = sync_count, data_storage = 0, num_records = 0, last_modified_date = $1 WHERE dataset_id = $2',
        [now, row.dataset_id],
      );
      if (stream) await this.insertOutbox(client, streamEntries(stream, key, 'remove', [], row.sync_count, now), now);
      if (push) await this.insertOutbox(client, pushEntries(push, key, await this.subscribedDevices(client, key), 'DatasetDeleted', row.sync_count, undefined), now);
      await this.notifyChange(client, { identityPoolId: key.identityPoolId, identityId: key.identityId, datasetName: key.datasetName, syncCount: row.sync_count });
      return toDataset(row);
    });
  }

  async getRecords(key: DatasetKey, keys: readonly string[]): Promise<Map<string, StoredRecord>> {
    const rows = await this.query<RecordRow>(
      `SELECT r.key, r.value, r.sync_count, r.last_modified_date, r.last_modified_by, r.device_last_modified_date FROM records r JOIN datasets d ON d.dataset_id = r.dataset_id
       WHERE d.identity_pool_id = $1 AND d.identity_id = $2 AND d.dataset_name = $3 AND d.live AND r.key = ANY($4::text[])`,
      [key.identityPoolId, key.identityId, key.datasetName, [...keys]],
    );
    return new Map(rows.map((row) => [row.key, toRecord(row)]));
  }

  async listPoolDatasets(identityPoolId: string, after: { identityId: string; datasetName: string } | undefined, limit: number): Promise<DatasetRecord[]> {
    const rows = await this.query<DatasetRow>(
      `SELECT * FROM datasets WHERE identity_pool_id = $1 AND live AND (identity_id, dataset_name) > ($2::text COLLATE "C", $3::text COLLATE "C")
       ORDER BY identity_id, dataset_name LIMIT $4`,
      [identityPoolId, after?.identityId ?? '', after?.datasetName ?? '', limit],
    );
    return rows.map(toDataset);
  }

  async listRecords(key: DatasetKey, lastSyncCount: number, after: RecordCursor | undefined, limit: number): Promise<RecordsPage> {
    return this.read(async (client) => {
      const merged = await client.query<{ dataset_name: string }>(
        'SELECT dataset_name FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND merged_base_name = $3 AND live ORDER BY dataset_name',
        [key.identityPoolId, key.identityId, key.datasetName],
      );
      const mergedDatasetNames = merged.rows.map((r) => r.dataset_name);
      const row = await this.datasetRow(key, client);
      if (!row || !row.live) return { dataset: undefined, mergedDatasetNames, deletedAtSyncCount: row?.deleted_at_sync_count ?? 0, records: [], next: undefined };
      const rows = (
        await client.query<RecordRow>(
          `SELECT ${RECORD_COLUMNS} FROM records WHERE dataset_id = $1 AND sync_count > $2 AND (sync_count, key) > ($3, $4::text COLLATE "C")
           ORDER BY sync_count, key LIMIT $5`,
          [row.dataset_id, lastSyncCount, after?.syncCount ?? 0, after?.key ?? '', limit + 1],
        )
      ).rows;
      const more = rows.length > limit;
      const records = (more ? rows.slice(0, limit) : rows).map(toRecord);
      const last = records[records.length - 1];
      return { dataset: toDataset(row), mergedDatasetNames, deletedAtSyncCount: row.deleted_at_sync_count, records, next: more && last ? { syncCount: last.syncCount, key: last.key } : undefined };
    });
  }

  async updateRecords(request: UpdateRecordsRequest): Promise<UpdateRecordsResult> {
    const { identityPoolId, identityId, datasetName } = request;
    return this.transaction(async (client) => {
      await this.lockIdentity(client, identityPoolId, identityId);
      const row = await this.datasetRow(request, client);
      const live = Boolean(row?.live);
      const current = new Map<string, StoredRecord>();
      if (row && live && request.patches.length > 0) {
        const found = await client.query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM records WHERE dataset_id = $1 AND key = ANY($2::text[])`, [row.dataset_id, request.patches.map((p) => p.key)]);
        for (const record of found.rows) current.set(record.key, toRecord(record));
      }
      const otherLiveDatasets = live
        ? 0
        : (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND live', [identityPoolId, identityId])).rows[0]!.n;
      const applied = applyRecordPatches({
        dataset: { live, syncCount: row?.sync_count ?? 0, dataStorage: row?.data_storage ?? 0, numRecords: row?.num_records ?? 0 },
        otherLiveDatasets,
        current,
        patches: request.patches,
        now: request.now,
        modifiedBy: request.modifiedBy,
        limits: request.limits,
      });
      const creationDate = live && row ? row.creation_date : request.now;
      const { syncCount, dataStorage, numRecords } = applied.dataset;
      let datasetId: number;
      if (row) {
        datasetId = row.dataset_id;
        await client.query(
          `UPDATE datasets SET live = true, creation_date = $1, last_modified_date = $2, last_modified_by = $3, sync_count = $4, data_storage = $5, num_records = $6,
           sync_sessions_count = sync_sessions_count + 1 WHERE dataset_id = $7`,
          [creationDate, request.now, request.modifiedBy, syncCount, dataStorage, numRecords, datasetId],
        );
      } else {
        const inserted = await client.query<{ dataset_id: number }>(
          `INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count)
           VALUES ($1, $2, $3, true, $4, $5, $6, $7, $8, $9, 1) RETURNING dataset_id`,
          [identityPoolId, identityId, datasetName, creationDate, request.now, request.modifiedBy, syncCount, dataStorage, numRecords],
        );
        datasetId = inserted.rows[0]!.dataset_id;
      }
      if (applied.records.length > 0) {
        const r = applied.records;
        await client.query(
          `INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[])
           ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count, last_modified_date = excluded.last_modified_date,
           last_modified_by = excluded.last_modified_by, device_last_modified_date = excluded.device_last_modified_date`,
          [datasetId, r.map((x) => x.key), r.map((x) => x.value), r.map((x) => x.syncCount), r.map((x) => x.lastModifiedDate), r.map((x) => x.lastModifiedBy), r.map((x) => x.deviceLastModifiedDate)],
        );
      }
      if (request.stream) await this.insertOutbox(client, streamEntries(request.stream, request, 'replace', applied.records, syncCount, request.now), request.now);
      if (request.push) await this.insertOutbox(client, pushEntries(request.push, request, await this.subscribedDevices(client, request), 'DatasetUpdated', syncCount, request.deviceId), request.now);
      await this.notifyChange(client, { identityPoolId, identityId, datasetName, syncCount, ...(request.deviceId ? { deviceId: request.deviceId } : {}) });
      return {
        dataset: { identityPoolId, identityId, datasetName, creationDate, lastModifiedDate: request.now, lastModifiedBy: request.modifiedBy, syncCount, dataStorage, numRecords },
        records: applied.records,
      };
    });
  }

  async describeIdentityUsage(identityPoolId: string, identityId: string): Promise<IdentityUsage> {
    const [usage] = await this.query<{ n: number; bytes: number | null; last: number | null }>(
      'SELECT count(*)::int AS n, sum(data_storage)::bigint AS bytes, max(last_modified_date) AS last FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND live',
      [identityPoolId, identityId],
    );
    return { identityPoolId, identityId, datasetCount: usage!.n, dataStorage: usage!.bytes ?? 0, lastModifiedDate: usage!.last ?? undefined };
  }

  private async poolUsage(identityPoolId: string, on: Queryable): Promise<IdentityPoolUsage> {
    const [usage] = await this.query<{ sessions: number | null; bytes: number | null; last: number | null }>(
      `SELECT sum(sync_sessions_count)::bigint AS sessions, sum(CASE WHEN live THEN data_storage ELSE 0 END)::bigint AS bytes, max(last_modified_date) AS last
       FROM datasets WHERE identity_pool_id = $1`,
      [identityPoolId],
      on,
    );
    return { identityPoolId, syncSessionsCount: usage!.sessions ?? 0, dataStorage: usage!.bytes ?? 0, lastModifiedDate: usage!.last ?? undefined };
  }

  async describeIdentityPoolUsage(identityPoolId: string): Promise<IdentityPoolUsage> {
    return this.poolUsage(identityPoolId, this.pool);
  }

  async listIdentityPoolUsage(afterId: string | undefined, limit: number): Promise<IdentityPoolUsage[]> {
    return this.read(async (client) => {
      const pools = await client.query<{ identity_pool_id: string }>('SELECT identity_pool_id FROM identity_pools WHERE identity_pool_id > $1 ORDER BY identity_pool_id LIMIT $2', [afterId ?? '', limit]);
      const usages: IdentityPoolUsage[] = [];
      for (const pool of pools.rows) usages.push(await this.poolUsage(pool.identity_pool_id, client));
      return usages;
    });
  }

  async registerDevice(device: DeviceRecord): Promise<DeviceRecord> {
    await this.query(
      'INSERT INTO devices (identity_pool_id, identity_id, device_id, platform, token, creation_date) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
      [device.identityPoolId, device.identityId, device.deviceId, device.platform, device.token, device.creationDate],
    );
    const [row] = await this.query<DeviceRecord>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND platform = $3 AND token = $4`, [
      device.identityPoolId, device.identityId, device.platform, device.token,
    ]);
    return row!;
  }

  async getDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    const [row] = await this.query<DeviceRecord>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $3`, [identityPoolId, identityId, deviceId]);
    return row;
  }

  async subscribe(key: DatasetKey, deviceId: string, now: number): Promise<void> {
    await this.query('INSERT INTO subscriptions (identity_pool_id, identity_id, dataset_name, device_id, creation_date) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [
      key.identityPoolId, key.identityId, key.datasetName, deviceId, now,
    ]);
  }

  async unsubscribe(key: DatasetKey, deviceId: string): Promise<void> {
    await this.query('DELETE FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 AND device_id = $4', [key.identityPoolId, key.identityId, key.datasetName, deviceId]);
  }

  async deleteDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('DELETE FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $3', [identityPoolId, identityId, deviceId]);
      await client.query('DELETE FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $3', [identityPoolId, identityId, deviceId]);
    });
  }

  async listSubscriptions(key: DatasetKey): Promise<string[]> {
    const rows = await this.query<{ device_id: string }>('SELECT device_id FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 ORDER BY device_id', [
      key.identityPoolId, key.identityId, key.datasetName,
    ]);
    return rows.map((r) => r.device_id);
  }

  async createIdentity(identity: IdentityRecord): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('INSERT INTO identities (identity_id, identity_pool_id, creation_date, last_modified_date) VALUES ($1, $2, $3, $4)', [
        identity.identityId, identity.identityPoolId, identity.creationDate, identity.lastModifiedDate,
      ]);
      for (const login of identity.logins) {
        await client.query('INSERT INTO identity_logins (identity_pool_id, provider_name, user_identifier, identity_id) VALUES ($1, $2, $3, $4)', [
          identity.identityPoolId, login.providerName, login.userIdentifier, identity.identityId,
        ]);
      }
    });
  }

  private async identityRecord(row: { identity_id: string; identity_pool_id: string; creation_date: number; last_modified_date: number }, on: Queryable): Promise<IdentityRecord> {
    const logins = await this.query<{ provider_name: string; user_identifier: string }>(
      'SELECT provider_name, user_identifier FROM identity_logins WHERE identity_id = $1 ORDER BY provider_name, user_identifier',
      [row.identity_id],
      on,
    );
    return {
      identityId: row.identity_id,
      identityPoolId: row.identity_pool_id,
      creationDate: row.creation_date,
      lastModifiedDate: row.last_modified_date,
      logins: logins.map((login) => ({ providerName: login.provider_name, userIdentifier: login.user_identifier })),
    };
  }

  async getIdentity(identityId: string): Promise<IdentityRecord | undefined> {
    return this.read(async (client) => {
      const [row] = (await client.query('SELECT * FROM identities WHERE identity_id = $1', [identityId])).rows;
      return row ? this.identityRecord(row, client) : undefined;
    });
  }

  async findIdentityByLogin(identityPoolId: string, login: Login): Promise<string | undefined> {
    const [row] = await this.query<{ identity_id: string }>(
      'SELECT identity_id FROM identity_logins WHERE identity_pool_id = $1 AND provider_name = $2 AND user_identifier = $3',
      [identityPoolId, login.providerName, login.userIdentifier],
    );
    return row?.identity_id;
  }

  async linkLogin(identityPoolId: string, identityId: string, login: Login, now: number): Promise<LoginOwnedElsewhere | undefined> {
    return this.transaction(async (client) => {
      const inserted = await client.query(
        'INSERT INTO identity_logins (identity_pool_id, provider_name, user_identifier, identity_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [identityPoolId, login.providerName, login.userIdentifier, identityId],
      );
      if ((inserted.rowCount ?? 0) > 0) {
        await client.query('UPDATE identities SET last_modified_date = $1 WHERE identity_id = $2', [now, identityId]);
        return undefined;
      }
      const [owner] = (await client.query<{ identity_id: string }>(
        'SELECT identity_id FROM identity_logins WHERE identity_pool_id = $1 AND provider_name = $2 AND user_identifier = $3',
        [identityPoolId, login.providerName, login.userIdentifier],
      )).rows;
      return owner && owner.identity_id !== identityId ? { ownedBy: owner.identity_id } : undefined;
    });
  }

  async unlinkLogins(identityId: string, providerName: string, userIdentifier: string | undefined, now: number): Promise<number> {
    return this.transaction(async (client) => {
      const result = userIdentifier === undefined
        ? await client.query('DELETE FROM identity_logins WHERE identity_id = $1 AND provider_name = $2', [identityId, providerName])
        : await client.query('DELETE FROM identity_logins WHERE identity_id = $1 AND provider_name = $2 AND user_identifier = $3', [identityId, providerName, userIdentifier]);
      const removed = result.rowCount ?? 0;
      if (removed > 0) await client.query('UPDATE identities SET last_modified_date = $1 WHERE identity_id = $2', [now, identityId]);
      return removed;
    });
  }

  async listIdentities(identityPoolId: string, afterId: string | undefined, limit: number): Promise<IdentityRecord[]> {
    return this.read(async (client) => {
      const rows = (await client.query('SELECT * FROM identities WHERE identity_pool_id = $1 AND identity_id > $2 ORDER BY identity_id LIMIT $3', [identityPoolId, afterId ?? '', limit])).rows;
      const identities: IdentityRecord[] = [];
      for (const row of rows) identities.push(await this.identityRecord(row, client));
      return identities;
    });
  }

  private async removeIdentity(client: pg.PoolClient, identityId: string): Promise<boolean> {
    for (const table of ['subscriptions', 'devices', 'datasets', 'issued_credentials', 'identity_logins']) {
      await client.query(`DELETE FROM ${table} WHERE identity_id = $1`, [identityId]);
    }
    return ((await client.query('DELETE FROM identities WHERE identity_id = $1', [identityId])).rowCount ?? 0) > 0;
  }

  async deleteIdentity(identityId: string): Promise<boolean> {
    return this.transaction(async (client) => {
      const [row] = (await client.query<{ identity_pool_id: string }>('SELECT identity_pool_id FROM identities WHERE identity_id = $1', [identityId])).rows;
      if (row) await this.lockIdentity(client, row.identity_pool_id, identityId);
      return this.removeIdentity(client, identityId);
    });
  }

  async mergeIdentities(identityPoolId: string, sourceIdentityId: string, destinationIdentityId: string, now: number): Promise<void> {
    if (sourceIdentityId === destinationIdentityId) return;
    await this.transaction(async (client) => {
      // Always lock in the same order, so two merges of the same pair cannot deadlock.
      for (const id of [sourceIdentityId, destinationIdentityId].sort()) await this.lockIdentity(client, identityPoolId, id);
      const clashes = await client.query<{ dataset_name: string; live: boolean }>(
        `SELECT d.dataset_name, d.live FROM datasets d JOIN datasets s ON s.identity_pool_id = d.identity_pool_id
         AND d.dataset_name = s.dataset_name || '.' || s.identity_id WHERE d.identity_pool_id = $1 AND d.identity_id = $2 AND s.identity_id = $3 AND s.live`,
        [identityPoolId, destinationIdentityId, sourceIdentityId],
      );
      for (const clash of clashes.rows) {
        if (clash.live) throw new ResourceConflictException(`Identity ${destinationIdentityId} already has a dataset named ${clash.dataset_name}; cannot merge.`);
        await client.query('DELETE FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3', [identityPoolId, destinationIdentityId, clash.dataset_name]);
      }
      await client.query('UPDATE identity_logins SET identity_id = $1 WHERE identity_id = $2', [destinationIdentityId, sourceIdentityId]);
      await client.query(
        `UPDATE datasets SET identity_id = $1, merged_base_name = dataset_name, dataset_name = dataset_name || '.' || identity_id
         WHERE identity_pool_id = $2 AND identity_id = $3 AND live`,
        [destinationIdentityId, identityPoolId, sourceIdentityId],
      );
      await client.query(
        `UPDATE devices d SET identity_id = $1 WHERE d.identity_id = $2 AND NOT EXISTS
         (SELECT 1 FROM devices e WHERE e.identity_pool_id = d.identity_pool_id AND e.identity_id = $1 AND e.platform = d.platform AND e.token = d.token)`,
        [destinationIdentityId, sourceIdentityId],
      );
      await this.removeIdentity(client, sourceIdentityId);
      await client.query('UPDATE identities SET last_modified_date = $1 WHERE identity_id = $2', [now, destinationIdentityId]);
    });
  }

  async saveIssuedCredentials(credentials: IssuedCredentialsRecord): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('DELETE FROM issued_credentials WHERE identity_id = $1 AND expiration < $2', [credentials.identityId, Date.now() - EXPIRED_CREDENTIALS_RETENTION_MS]);
      await client.query('INSERT INTO issued_credentials (access_key_id, identity_pool_id, identity_id, expiration) VALUES ($1, $2, $3, $4)', [
        credentials.accessKeyId, credentials.identityPoolId, credentials.identityId, credentials.expiration,
      ]);
    });
  }

  async getIssuedCredentials(accessKeyId: string): Promise<IssuedCredentialsRecord | undefined> {
    const [row] = await this.query<{ access_key_id: string; identity_pool_id: string; identity_id: string; expiration: number }>(
      'SELECT * FROM issued_credentials WHERE access_key_id = $1',
      [accessKeyId],
    );
    return row && { accessKeyId: row.access_key_id, identityPoolId: row.identity_pool_id, identityId: row.identity_id, expiration: row.expiration };
  }

  async getPoolRoles(identityPoolId: string): Promise<PoolRoles | undefined> {
    const [row] = await this.query<{ roles: string | null }>('SELECT roles FROM identity_pools WHERE identity_pool_id = $1', [identityPoolId]);
    return row ? (row.roles ? (JSON.parse(row.roles) as PoolRoles) : {}) : undefined;
  }

  async setPoolRoles(identityPoolId: string, roles: PoolRoles): Promise<boolean> {
    return (await this.query('UPDATE identity_pools SET roles = $1 WHERE identity_pool_id = $2 RETURNING 1', [JSON.stringify(roles), identityPoolId])).length > 0;
  }

  private async insertOutbox(client: Queryable, entries: readonly OutboxEntry[], now: number): Promise<void> {
    if (entries.length === 0) return;
    await client.query(
      `INSERT INTO outbox (kind, partition_key, payload, bulk_pool_id, created_at, next_attempt_at)
       SELECT kind, partition_key, payload, bulk_pool_id, $5, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
       WITH ORDINALITY AS e(kind, partition_key, payload, bulk_pool_id, n) ORDER BY n`,
      [entries.map((e) => e.kind), entries.map((e) => e.partitionKey), entries.map((e) => JSON.stringify(e.payload)), entries.map((e) => e.bulkPoolId ?? null), now],
    );
  }

  async enqueueOutbox(entries: readonly OutboxEntry[], now: number): Promise<void> {
    await this.transaction((client) => this.insertOutbox(client, entries, now));
  }

  async claimOutbox(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedOutboxEntry[]> {
    return this.transaction(async (client) => {
      // SKIP LOCKED: two processes claiming at once take disjoint entries; the lease keeps them disjoint after commit.
      const rows = await client.query<{ outbox_id: number; kind: OutboxEntry['kind']; partition_key: string; payload: string; bulk_pool_id: string | null; attempts: number; created_at: number }>(
        `SELECT outbox_id, kind, partition_key, payload, bulk_pool_id, attempts, created_at FROM outbox o
         WHERE next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partition_key = o.partition_key AND p.outbox_id < o.outbox_id)
         ORDER BY outbox_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [now, limit],
      );
      if (rows.rows.length === 0) return [];
      await client.query('UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE outbox_id = ANY($3::bigint[])', [owner, now + leaseMs, rows.rows.map((r) => r.outbox_id)]);
      return rows.rows.map((row) => ({
        outboxId: row.outbox_id,
        kind: row.kind,
        partitionKey: row.partition_key,
        payload: JSON.parse(row.payload) as unknown,
        ...(row.bulk_pool_id ? { bulkPoolId: row.bulk_pool_id } : {}),
        attempts: row.attempts,
        createdAt: row.created_at,
      }));
    });
  }

  async completeOutbox(outboxIds: readonly number[]): Promise<void> {
    if (outboxIds.length > 0) await this.query('DELETE FROM outbox WHERE outbox_id = ANY($1::bigint[])', [[...outboxIds]]);
  }

  async retryOutbox(outboxId: number, nextAttemptAt: number, error?: string): Promise<void> {
    if (error === undefined) {
      await this.query('UPDATE outbox SET next_attempt_at = $1, claimed_by = NULL, claimed_until = NULL WHERE outbox_id = $2', [nextAttemptAt, outboxId]);
    } else {
      await this.query('UPDATE outbox SET next_attempt_at = $1, claimed_by = NULL, claimed_until = NULL, attempts = attempts + 1, last_error = $2 WHERE outbox_id = $3', [
        nextAttemptAt, error.slice(0, 2000), outboxId,
      ]);
    }
  }

  async advanceOutbox(outboxId: number, next: readonly OutboxEntry[], now: number): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('DELETE FROM outbox WHERE outbox_id = $1', [outboxId]);
      await this.insertOutbox(client, next, now);
    });
  }

  async countBulkOutbox(identityPoolId: string, kind?: OutboxEntry['kind']): Promise<number> {
    const rows = kind
      ? await this.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE bulk_pool_id = $1 AND kind = $2', [identityPoolId, kind])
      : await this.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE bulk_pool_id = $1', [identityPoolId]);
    return rows[0]!.n;
  }

  async dropBulkOutbox(identityPoolId: string): Promise<void> {
    await this.query('DELETE FROM outbox WHERE bulk_pool_id = $1', [identityPoolId]);
  }

  async outboxBacklog(): Promise<OutboxBacklog> {
    const [row] = await this.query<{ n: number; oldest: number | null }>('SELECT count(*)::int AS n, min(created_at) AS oldest FROM outbox');
    return { pending: row!.n, oldestCreatedAt: row!.oldest ?? undefined };
  }

  /** Queued in the transaction; PostgreSQL delivers it to every listener when (and only if) it commits. */
  private async notifyChange(client: pg.PoolClient, event: ChangeEvent): Promise<void> {
    await client.query('SELECT pg_notify($1, $2)', [this.channel(), JSON.stringify(event)]);
  }

  /** One channel per schema, so test schemas sharing a database do not hear each other. */
  private channel(): string {
    return this.schema ? `${CHANGES_CHANNEL}_${this.schema}` : CHANGES_CHANNEL;
  }

  async watchChanges(listener: (event: ChangeEvent) => void): Promise<() => Promise<void>> {
    let client: pg.Client | undefined;
    let stopped = false;
    let retryTimer: NodeJS.Timeout | undefined;
    // A dedicated connection (LISTEN needs one); when it drops, reconnect with backoff.
    const connect = async (delayMs: number): Promise<void> => {
      if (stopped) return;
      const next = new pg.Client({ connectionString: this.connectionString });
      next.on('notification', (message) => {
        if (!message.payload) return;
        try {
          listener(JSON.parse(message.payload) as ChangeEvent);
        } catch {
          // A malformed payload is not ours; ignore it.
        }
      });
      next.on('error', () => {
        next.end().catch(() => undefined);
        if (client === next && !stopped) retryTimer = setTimeout(() => void connect(Math.min(delayMs * 2, 10_000)), delayMs);
      });
      try {
        await next.connect();
        await next.query(`LISTEN ${this.channel()}`);
        client = next;
      } catch {
        await next.end().catch(() => undefined);
        if (!stopped) retryTimer = setTimeout(() => void connect(Math.min(delayMs * 2, 10_000)), delayMs);
      }
    };
    await connect(200);
    return async () => {
      stopped = true;
      clearTimeout(retryTimer);
      await client?.end().catch(() => undefined);
    };
  }
}
