// The embedded store: better-sqlite3 (synchronous, in-process) in WAL mode behind the async Store contract.
// Writes run in BEGIN IMMEDIATE transactions, so several processes on one file serialize cleanly; the writes of one
// turn of the event loop share one (group commit, see write()). A file-backed store checkpoints its WAL on a worker
// thread (wal-checkpointer.ts), off the event loop.
import { EventEmitter } from 'node:events';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { mergedDatasetNames } from '../../core/merged-datasets.js';
import { changedSinceRead, providerClash } from '../../core/provider-rule.js';
import { lockDataDir } from './data-dir-lock.js';
import { refuseNewerSchema } from '../schema-version.js';
import { applyRecordPatches, deletedSyncCount, textLength } from '../../core/record-patches.js';
import { RESTORE_SYNC_COUNT_GAP, RESTORED_SETTING } from '../../core/restore.js';
import { tombstoneCut, type TombstoneDrop } from '../../core/tombstones.js';
import { bulkPublishJob, pushEntries, streamEntries } from '../../outbox/entries.js';
import type { BulkPublishState } from '../../core/bulk-publish.js';
import { LimitExceededException, ResourceConflictException, ResourceNotFoundException } from '../../errors.js';
import type {
  ChangeEvent, ClaimedOutboxEntry, DatasetKey, DatasetRecord, DeviceRecord, OutboxBacklog, OutboxEntry, PushTarget, StreamTarget, IdentityPoolRecord, IdentityPoolUsage, IdentityRecord, IdentityUsage, IssuedCredentials, IssuedCredentialsRecord, Login,
  LinkExpectation, LinkRefusal, LoginOwnedElsewhere, ProviderRule, PoolRoles, PoolSyncSettings, RecordCursor, RecordsPage, Store, StoredRecord, UpdateRecordsRequest, UpdateRecordsResult,
} from '../store.js';
import { deviceNotRegistered, EXPIRED_CREDENTIALS_RETENTION_MS, revokedWhileWriting } from '../store.js';
import { migrationSql, sqliteMigrations } from './migrations.js';
import { WalCheckpointer } from './wal-checkpointer.js';
import { sqliteRefusesWrites, WRITE_PROBE_SETTING, WriteHealth, writeProbeValue } from '../write-health.js';
import { toDataset, toIssuedCredentials, toPool, toSettings, type DatasetRow, type IssuedCredentialsRow, type PoolRow } from '../rows.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for tests. */
  filename: string;
  synchronous?: 'FULL' | 'NORMAL';
  /** Refuse to open (DataDirInUseError) while another process holds this lock file, and hold it until close(). */
  lockFilename?: string;
}

interface IdentityRow {
  identity_id: string;
  identity_pool_id: string;
  creation_date: number;
  last_modified_date: number;
  inaccessible: number;
  tokens_not_before: number;
}

/**
 * A record row as an array (the statements run in raw mode): better-sqlite3 builds an object per row through
 * V8's slow property path: reading a 100-record page that way took 1.7× as long (133 vs 79 µs).
 */
type RecordTuple = [key: string, value: string | null, syncCount: number, lastModifiedDate: number, lastModifiedBy: string, deviceLastModifiedDate: number];

/**
 * A page's LIMIT. Not a bare `LIMIT ?`: with one, SQLite 3.53 (as bundled by better-sqlite3 12) prepared the statement
 * again on every run (`perf` showed sqlite3Reprepare under every ListRecords: 10 % of the server's CPU). An expression
 * keeps the one prepared plan, the same index search. In a micro-benchmark, ListRecords(1 change)'s read took 17 µs
 * with `LIMIT ?` and 5 µs with this; a 100-record page 168 and 117 µs.
 */
const LIMIT = 'LIMIT CAST(? AS INTEGER)';
/**
 * Most writes one group commit takes (see write()), and most characters of record keys and values: the thread is
 * the store's for all of them at once, so a transaction stays within a few ms however large the writes are.
 */
const MAX_WRITES_PER_TRANSACTION = 64;
const MAX_TRANSACTION_SIZE = 256 * 1024;
/** Access keys whose credentials lookups are kept (see issuedCache): about 2 MB. */
const ISSUED_CACHE_SIZE = 10_000;

const toStoredRecord = (row: RecordTuple): StoredRecord => ({
  key: row[0],
  value: row[1],
  syncCount: row[2],
  lastModifiedDate: row[3],
  lastModifiedBy: row[4],
  deviceLastModifiedDate: row[5],
});

/** The two rows read on nearly every request, also as arrays (see RecordTuple), mapped in JavaScript. */
type DatasetTuple = [
  dataset_id: number, identity_pool_id: string, identity_id: string, dataset_name: string, live: number, creation_date: number, last_modified_date: number,
  last_modified_by: string, sync_count: number, data_storage: number, num_records: number, deleted_at_sync_count: number, restored_from_sync_count: number,
  restored_to_sync_count: number, tombstones: number, tombstone_bytes: number, tombstones_dropped_through: number,
];

const toDatasetRow = (t: DatasetTuple): DatasetRow => ({
  dataset_id: t[0],
  identity_pool_id: t[1],
  identity_id: t[2],
  dataset_name: t[3],
  live: t[4],
  creation_date: t[5],
  last_modified_date: t[6],
  last_modified_by: t[7],
  sync_count: t[8],
  data_storage: t[9],
  num_records: t[10],
  deleted_at_sync_count: t[11],
  restored_from_sync_count: t[12],
  restored_to_sync_count: t[13],
  tombstones: t[14],
  tombstone_bytes: t[15],
  tombstones_dropped_through: t[16],
});

/**
 * See Store.markRestored and core/restore.ts (the jump is max(sync_count + gap, now)). A deleted dataset's
 * deletion count moves with it, so the deletion stays its last change.
 */
const MARK_RESTORED = `UPDATE datasets SET
  restored_from_sync_count = CASE WHEN restored_to_sync_count > 0 THEN restored_from_sync_count ELSE sync_count END,
  restored_to_sync_count = max(sync_count + @gap, @now),
  deleted_at_sync_count = CASE WHEN live THEN deleted_at_sync_count ELSE max(sync_count + @gap, @now) END,
  sync_count = max(sync_count + @gap, @now)`;

type CredentialsTuple = [
  access_key_id: string, identity_pool_id: string, identity_id: string, expiration: number, push_sync: string | null, cognito_streams: string | null,
  cognito_events: string, bulk_publish: string,
];

const toCredentialsRow = (t: CredentialsTuple): IssuedCredentialsRow => ({
  access_key_id: t[0],
  identity_pool_id: t[1],
  identity_id: t[2],
  expiration: t[3],
  push_sync: t[4],
  cognito_streams: t[5],
  cognito_events: t[6],
  bulk_publish: t[7],
});

interface OutboxRow {
  outbox_id: number;
  kind: OutboxEntry['kind'];
  partition_key: string;
  payload: string;
  bulk_pool_id: string | null;
  attempts: number;
  created_at: number;
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  /** The data dir's lock (see data-dir-lock.ts), when this store was opened for a server. */
  private readonly lock: Database.Database | undefined;
  private statements: ReturnType<SqliteStore['prepare']> | undefined;
  /** Committed changes, for watchChanges (SQLite is one process, so an in-process emitter is the bus). */
  private readonly changes = new EventEmitter().setMaxListeners(0);
  /** One transaction wrapper for every call: db.transaction() builds four wrapper functions each time it is called. */
  private readonly inTransaction: Database.Transaction<(fn: () => unknown) => unknown>;
  private readonly checkpointer: WalCheckpointer | undefined;
  /** Writes waiting for the next group commit (see write()). */
  private queuedWrites: Array<{ fn: () => unknown; size: number; keepsCredentials: boolean; resolve: (value: unknown) => void; reject: (error: unknown) => void }> = [];
  /**
   * Credentials lookups by access key (every signed request makes one; it was about 7 % of a small request's CPU),
   * kept only while nothing that could change them has been written. Exact, not a time-to-live: this process is the
   * only writer of its data dir (data-dir-lock.ts), every write on this connection but UpdateRecords' (which touches
   * no credentials, identities or pools) empties it when it commits, and so does any change to the database the
   * connection's change counter shows outside those writes, before the next lookup or batch. A deleted key, a deleted
   * identity or pool, or changed pool settings are seen by the next request, as without it.
   */
  private readonly issuedCache = new Map<string, IssuedCredentials>();
  /** SQLite's total_changes() of this connection when the cache was last known to be current. */
  private knownChanges = 0;
  /** Set while commitQueued() runs; close() waits for it. */
  private committing: Promise<void> | undefined;
  /** Whether writes still commit, for ping (see write-health.ts); its probe stores the time of the last one. */
  private readonly writeHealth = new WriteHealth(sqliteRefusesWrites, () => this.write(() => this.sql.putSetting.run(WRITE_PROBE_SETTING, writeProbeValue())));

  constructor(options: SqliteStoreOptions) {
    const synchronous = options.synchronous ?? 'NORMAL';
    if (options.filename !== ':memory:') createPrivateDatabaseFile(options.filename);
    this.lock = options.lockFilename ? lockDataDir(options.lockFilename, dirname(options.filename)) : undefined;
    this.db = new Database(options.filename);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.inTransaction = this.db.transaction((fn: () => unknown) => fn());
    if (options.filename !== ':memory:') this.checkpointer = new WalCheckpointer(this.db, options.filename, synchronous);
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const apply = this.db.transaction(() => {
      const applied = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
      refuseNewerSchema(applied, sqliteMigrations);
      for (const migration of sqliteMigrations) {
        if (applied.has(migration.version)) continue;
        this.db.exec(migrationSql(migration, (table, column) => (this.db.pragma(`table_info(${table})`) as Array<{ name: string }>).some((c) => c.name === column)));
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, Date.now());
      }
    });
    apply.immediate();
    this.statements = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE name = ?'),
      insertSetting: db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
      putSetting: db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
      countPools: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM identity_pools'),
      insertPool: db.prepare('INSERT INTO identity_pools (identity_pool_id, identity_pool_name, description, creation_date, last_modified_date) VALUES (?, ?, ?, ?, ?)'),
      getPool: db.prepare<[string], PoolRow>('SELECT * FROM identity_pools WHERE identity_pool_id = ?'),
      listPools: db.prepare<[string, number], PoolRow>(`SELECT * FROM identity_pools WHERE identity_pool_id > ? ORDER BY identity_pool_id ${LIMIT}`),
      updatePool: db.prepare('UPDATE identity_pools SET identity_pool_name = ?, description = ?, last_modified_date = ? WHERE identity_pool_id = ?'),
      deletePool: db.prepare('DELETE FROM identity_pools WHERE identity_pool_id = ?'),
      deletePoolDatasets: db.prepare('DELETE FROM datasets WHERE identity_pool_id = ?'),
      deletePoolDevices: db.prepare('DELETE FROM devices WHERE identity_pool_id = ?'),
      deletePoolSubscriptions: db.prepare('DELETE FROM subscriptions WHERE identity_pool_id = ?'),
      setPoolConfiguration: db.prepare('UPDATE identity_pools SET push_sync = ?, cognito_streams = ? WHERE identity_pool_id = ?'),
      setPoolEvents: db.prepare('UPDATE identity_pools SET cognito_events = ? WHERE identity_pool_id = ?'),
      setPoolBulkPublish: db.prepare('UPDATE identity_pools SET bulk_publish = ? WHERE identity_pool_id = ?'),
      getDataset: db
        .prepare<[string, string, string], DatasetTuple>(
          `SELECT dataset_id, identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records,
           deleted_at_sync_count, restored_from_sync_count, restored_to_sync_count, tombstones, tombstone_bytes, tombstones_dropped_through FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND dataset_name = ?`,
        )
        .raw(true),
      listDatasets: db.prepare<[string, string, string, number], DatasetRow>(
        `SELECT * FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND live = 1 AND dataset_name > ? ORDER BY dataset_name ${LIMIT}`,
      ),
      countLiveDatasets: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND live = 1'),
      insertDataset: db.prepare(
        `INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count, restored_to_sync_count)
         VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 1, ?)`,
      ),
      updateDataset: db.prepare(
        `UPDATE datasets SET live = 1, creation_date = ?, last_modified_date = ?, last_modified_by = ?, sync_count = ?, data_storage = ?, num_records = ?,
         tombstones = ?, tombstone_bytes = ?, sync_sessions_count = sync_sessions_count + 1 WHERE dataset_id = ?`,
      ),
      markDatasetDeleted: db.prepare(
        'UPDATE datasets SET live = 0, sync_count = ?, deleted_at_sync_count = ?, data_storage = 0, num_records = 0, tombstones = 0, tombstone_bytes = 0, last_modified_date = ? WHERE dataset_id = ?',
      ),
      deleteDatasetRecords: db.prepare('DELETE FROM records WHERE dataset_id = ?'),
      // core/tombstones.ts: a dataset's tombstones from the oldest (through the partial index records_tombstones), the
      // drop of those through a SyncCount, and the dataset's count of what is left.
      tombstonesOldestFirst: db
        .prepare<[number], [number, number]>('SELECT sync_count, length(CAST(key AS BLOB)) FROM records WHERE dataset_id = ? AND value IS NULL ORDER BY sync_count')
        .raw(true),
      dropTombstones: db.prepare('DELETE FROM records WHERE dataset_id = ? AND value IS NULL AND sync_count <= ?'),
      // Counted again rather than decremented: counts that drifted (a process of an earlier build writing during a rolling
      // upgrade does not keep them) are right again after each drop.
      markTombstonesDropped: db.prepare(
        `UPDATE datasets SET tombstones = (SELECT count(*) FROM records WHERE dataset_id = @id AND value IS NULL),
         tombstone_bytes = (SELECT coalesce(sum(length(CAST(key AS BLOB))), 0) FROM records WHERE dataset_id = @id AND value IS NULL),
         tombstones_dropped_through = max(tombstones_dropped_through, @through) WHERE dataset_id = @id`,
      ),
      getRecord: db.prepare<[number, string], RecordTuple>('SELECT key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date FROM records WHERE dataset_id = ? AND key = ?').raw(true),
      upsertRecord: db.prepare(
        `INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count, last_modified_date = excluded.last_modified_date,
         last_modified_by = excluded.last_modified_by, device_last_modified_date = excluded.device_last_modified_date`,
      ),
      listRecords: db.prepare<[number, number, number, string, number], RecordTuple>(
        `SELECT key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date FROM records
         WHERE dataset_id = ? AND sync_count > ? AND (sync_count, key) > (?, ?) ORDER BY sync_count, key ${LIMIT}`,
      ).raw(true),
      identityUsage: db.prepare<[string, string], { n: number; bytes: number | null; last: number | null }>(
        'SELECT count(*) AS n, sum(data_storage) AS bytes, max(last_modified_date) AS last FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND live = 1',
      ),
      poolUsage: db.prepare<[string], { sessions: number | null; bytes: number | null; last: number | null }>(
        'SELECT sum(sync_sessions_count) AS sessions, sum(CASE WHEN live = 1 THEN data_storage ELSE 0 END) AS bytes, max(last_modified_date) AS last FROM datasets WHERE identity_pool_id = ?',
      ),
      getDeviceByToken: db.prepare<[string, string, string, string], DeviceRecord>(
        `SELECT identity_pool_id AS identityPoolId, identity_id AS identityId, device_id AS deviceId, platform, token, creation_date AS creationDate
         FROM devices WHERE identity_pool_id = ? AND identity_id = ? AND platform = ? AND token = ?`,
      ),
      getDevice: db.prepare<[string, string, string], DeviceRecord>(
        `SELECT identity_pool_id AS identityPoolId, identity_id AS identityId, device_id AS deviceId, platform, token, creation_date AS creationDate
         FROM devices WHERE identity_pool_id = ? AND identity_id = ? AND device_id = ?`,
      ),
      insertDevice: db.prepare('INSERT INTO devices (identity_pool_id, identity_id, device_id, platform, token, creation_date) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      subscribe: db.prepare('INSERT INTO subscriptions (identity_pool_id, identity_id, dataset_name, device_id, creation_date) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      otherSubscriptions: db.prepare<[string, string, string, string], { n: number }>(
        'SELECT count(*) AS n FROM subscriptions WHERE identity_pool_id = ? AND identity_id = ? AND device_id = ? AND dataset_name <> ?',
      ),
      devicesBeyond: db.prepare<[string, string, string, number], { device_id: string }>(
        'SELECT device_id FROM devices WHERE identity_pool_id = ? AND identity_id = ? AND device_id <> ? ORDER BY creation_date DESC, device_id DESC LIMIT -1 OFFSET ?',
      ),
      unsubscribe: db.prepare('DELETE FROM subscriptions WHERE identity_pool_id = ? AND identity_id = ? AND dataset_name = ? AND device_id = ?'),
      listSubscriptions: db.prepare<[string, string, string], { device_id: string }>(
        'SELECT device_id FROM subscriptions WHERE identity_pool_id = ? AND identity_id = ? AND dataset_name = ? ORDER BY device_id',
      ),
      subscribedDevices: db.prepare<[string, string, string], DeviceRecord>(
        `SELECT d.identity_pool_id AS identityPoolId, d.identity_id AS identityId, d.device_id AS deviceId, d.platform, d.token, d.creation_date AS creationDate
         FROM subscriptions s JOIN devices d ON d.identity_pool_id = s.identity_pool_id AND d.identity_id = s.identity_id AND d.device_id = s.device_id
         WHERE s.identity_pool_id = ? AND s.identity_id = ? AND s.dataset_name = ? ORDER BY d.device_id`,
      ),
      deleteDevice: db.prepare('DELETE FROM devices WHERE identity_pool_id = ? AND identity_id = ? AND device_id = ?'),
      deleteDeviceSubscriptions: db.prepare('DELETE FROM subscriptions WHERE identity_pool_id = ? AND identity_id = ? AND device_id = ?'),
      mergedDatasetNames: db.prepare<[string, string, string], { dataset_name: string }>(
        'SELECT dataset_name FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND merged_base_name = ? AND live = 1 ORDER BY dataset_name',
      ),
      insertIdentity: db.prepare('INSERT INTO identities (identity_id, identity_pool_id, creation_date, last_modified_date) VALUES (?, ?, ?, ?)'),
      getIdentity: db.prepare<[string], IdentityRow>('SELECT * FROM identities WHERE identity_id = ?'),
      /** After a link, or a merge that may bring logins: an identity with a login is accessible. */
      touchLinkedIdentity: db.prepare(
        'UPDATE identities SET last_modified_date = ?, inaccessible = inaccessible AND NOT EXISTS (SELECT 1 FROM identity_logins l WHERE l.identity_id = identities.identity_id) WHERE identity_id = ?',
      ),
      /** After an unlink: inaccessible once no login is left, its Cognito tokens so far void (returns the flag). */
      touchUnlinkedIdentity: db.prepare<[{ now: number; id: string }], { inaccessible: number }>(
        `UPDATE identities SET last_modified_date = @now,
           inaccessible = NOT EXISTS (SELECT 1 FROM identity_logins l WHERE l.identity_id = identities.identity_id),
           tokens_not_before = CASE WHEN EXISTS (SELECT 1 FROM identity_logins l WHERE l.identity_id = identities.identity_id) THEN tokens_not_before ELSE @now END
         WHERE identity_id = @id RETURNING inaccessible`,
      ),
      listIdentities: db.prepare<[string, string, number, number], IdentityRow>(
        `SELECT * FROM identities WHERE identity_pool_id = ? AND identity_id > ? AND inaccessible <= ? ORDER BY identity_id ${LIMIT}`,
      ),
      deleteIdentity: db.prepare('DELETE FROM identities WHERE identity_id = ?'),
      deletePoolIdentities: db.prepare('DELETE FROM identities WHERE identity_pool_id = ?'),
      identityLogins: db.prepare<[string], { provider_name: string; user_identifier: string }>(
        'SELECT provider_name, user_identifier FROM identity_logins WHERE identity_id = ? ORDER BY provider_name, user_identifier',
      ),
      loginOwner: db.prepare<[string, string, string], { identity_id: string }>(
        'SELECT identity_id FROM identity_logins WHERE identity_pool_id = ? AND provider_name = ? AND user_identifier = ?',
      ),
      insertLogin: db.prepare('INSERT INTO identity_logins (identity_pool_id, provider_name, user_identifier, identity_id) VALUES (?, ?, ?, ?)'),
      deleteProviderLogins: db.prepare('DELETE FROM identity_logins WHERE identity_id = ? AND provider_name = ?'),
      deleteUserLogin: db.prepare('DELETE FROM identity_logins WHERE identity_id = ? AND provider_name = ? AND user_identifier = ?'),
      deleteIdentityLogins: db.prepare('DELETE FROM identity_logins WHERE identity_id = ?'),
      deletePoolLogins: db.prepare('DELETE FROM identity_logins WHERE identity_pool_id = ?'),
      moveLogins: db.prepare('UPDATE identity_logins SET identity_id = ? WHERE identity_id = ?'),
      issuedCredentialsExist: db.prepare<[string], { found: number }>('SELECT 1 AS found FROM issued_credentials WHERE access_key_id = ?'),
      insertCredentials: db.prepare('INSERT INTO issued_credentials (access_key_id, identity_pool_id, identity_id, expiration) VALUES (?, ?, ?, ?)'),
      purgeExpiredCredentials: db.prepare('DELETE FROM issued_credentials WHERE identity_id = ? AND expiration < ?'),
      totalChanges: db.prepare<[], number>('SELECT total_changes()').pluck(),
      getCredentials: db
        .prepare<[string], CredentialsTuple>(
          `SELECT c.access_key_id, c.identity_pool_id, c.identity_id, c.expiration, p.push_sync, p.cognito_streams, p.cognito_events, p.bulk_publish
             FROM issued_credentials c JOIN identity_pools p ON p.identity_pool_id = c.identity_pool_id WHERE c.access_key_id = ?`,
        )
        .raw(true),
      deleteIdentityCredentials: db.prepare('DELETE FROM issued_credentials WHERE identity_id = ?'),
      deletePoolCredentials: db.prepare('DELETE FROM issued_credentials WHERE identity_pool_id = ?'),
      deleteIdentityDatasets: db.prepare('DELETE FROM datasets WHERE identity_id = ?'),
      deleteIdentityDevices: db.prepare('DELETE FROM devices WHERE identity_id = ?'),
      deleteIdentitySubscriptions: db.prepare('DELETE FROM subscriptions WHERE identity_id = ?'),
      liveDatasetNames: db.prepare<[string, string], { dataset_id: number; dataset_name: string }>(
        'SELECT dataset_id, dataset_name FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND live = 1',
      ),
      datasetLiveness: db.prepare<[string, string, string], { live: number }>('SELECT live FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND dataset_name = ?'),
      deleteDatasetByName: db.prepare('DELETE FROM datasets WHERE identity_pool_id = ? AND identity_id = ? AND dataset_name = ?'),
      // A dataset merged once already keeps the name it was merged from: merged again (A into B, then B into C), C's
      // \`settings\` still reports \`settings.A.B\` beside \`settings.B\` (QA: it reported only the latter).
      mergeDataset: db.prepare('UPDATE datasets SET identity_id = ?, merged_base_name = COALESCE(merged_base_name, dataset_name), dataset_name = ? WHERE dataset_id = ?'),
      moveDevices: db.prepare('UPDATE OR IGNORE devices SET identity_id = ? WHERE identity_id = ?'),
      getPoolRoles: db.prepare<[string], { roles: string | null }>('SELECT roles FROM identity_pools WHERE identity_pool_id = ?'),
      setPoolRoles: db.prepare('UPDATE identity_pools SET roles = ? WHERE identity_pool_id = ?'),
      listPoolDatasets: db.prepare<[string, string, string, number], DatasetRow>(
        `SELECT * FROM datasets WHERE identity_pool_id = ? AND live = 1 AND (identity_id, dataset_name) > (?, ?) ORDER BY identity_id, dataset_name ${LIMIT}`,
      ),
      insertOutbox: db.prepare('INSERT INTO outbox (kind, partition_key, payload, bulk_pool_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)'),
      dueOutbox: db.prepare<[number, number, number], OutboxRow>(
        `SELECT outbox_id, kind, partition_key, payload, bulk_pool_id, attempts, created_at FROM outbox o
         WHERE next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partition_key = o.partition_key AND p.outbox_id < o.outbox_id)
         ORDER BY outbox_id ${LIMIT}`,
      ),
      leaseOutbox: db.prepare('UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE outbox_id = ?'),
      deleteOutbox: db.prepare('DELETE FROM outbox WHERE outbox_id = ?'),
      retryOutbox: db.prepare('UPDATE outbox SET next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL WHERE outbox_id = ?'),
      failOutbox: db.prepare('UPDATE outbox SET next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL, attempts = attempts + 1, last_error = ? WHERE outbox_id = ?'),
      countBulkOutbox: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM outbox WHERE bulk_pool_id = ?'),
      countBulkOutboxOfKind: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM outbox WHERE bulk_pool_id = ? AND kind = ?'),
      dropBulkOutbox: db.prepare('DELETE FROM outbox WHERE bulk_pool_id = ?'),
      putStreamPayload: db.prepare('INSERT INTO stream_payloads (payload_id, outbox_id, body, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (outbox_id) DO NOTHING'),
      streamPayloadOfEntry: db.prepare<[number], { payload_id: string }>('SELECT payload_id FROM stream_payloads WHERE outbox_id = ?'),
      getStreamPayload: db.prepare<[string, number], { body: string }>('SELECT body FROM stream_payloads WHERE payload_id = ? AND expires_at > ?'),
      dropExpiredStreamPayloads: db.prepare('DELETE FROM stream_payloads WHERE expires_at <= ?'),
      // Two statements: the count reads the smallest index rather than the table's payloads (min(created_at) in the same
      // statement made it read the whole table), and the oldest entry is the first by id, entries being numbered in
      // the order they are made.
      countOutbox: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM outbox'),
      oldestOutbox: db.prepare<[], { created_at: number }>('SELECT created_at FROM outbox ORDER BY outbox_id LIMIT 1'),
    };
  }

  private datasetRow(identityPoolId: string, identityId: string, datasetName: string): DatasetRow | undefined {
    const tuple = this.sql.getDataset.get(identityPoolId, identityId, datasetName);
    return tuple && toDatasetRow(tuple);
  }

  private get sql() {
    if (!this.statements) throw new Error('SqliteStore used before migrate()');
    return this.statements;
  }

  /**
   * Runs `fn` in a BEGIN IMMEDIATE transaction (writers take the lock up front; no upgrade deadlocks), together with
   * the other writes asked for in this turn of the event loop (group commit): they run one after another, each in a
   * savepoint of one transaction, so they share its commit and the WAL frames of the pages they all touch, and a write
   * that throws rolls back to its savepoint and fails alone. Each write resolves only after that commit. Writes are
   * held back while the checkpoint worker has paused them for a moment to let the WAL start over.
   */
  private write<T>(fn: () => T, size = 0, keepsCredentials = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queuedWrites.push({ fn, size, keepsCredentials, resolve: resolve as (value: unknown) => void, reject });
      this.committing ??= this.commitQueued();
    });
  }

  /**
   * Commits the queued writes in order, at most MAX_WRITES_PER_TRANSACTION and MAX_TRANSACTION_SIZE (unless one
   * write alone is larger) at a time, until none is left. It ends in the same step as it finds the queue empty, so
   * a write asked for by the continuation of one it has just answered starts the next round.
   */
  private async commitQueued(): Promise<void> {
    try {
      // The rest of this turn asks for its writes first.
      await new Promise((resolve) => setImmediate(resolve));
      for (;;) {
        while (this.checkpointer?.writesPaused) await this.checkpointer.writesPaused;
        this.commitBatch(this.takeBatch());
        if (this.queuedWrites.length === 0) return;
        // Let the callers of this batch go on (and ask for more) before the next batch takes the thread.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.committing = undefined;
    }
  }

  private takeBatch(): SqliteStore['queuedWrites'] {
    let take = 1;
    let size = this.queuedWrites[0]!.size;
    while (take < this.queuedWrites.length && take < MAX_WRITES_PER_TRANSACTION && size + this.queuedWrites[take]!.size <= MAX_TRANSACTION_SIZE) size += this.queuedWrites[take++]!.size;
    return this.queuedWrites.splice(0, take);
  }

  /** One transaction for `batch`, each write in a savepoint (a lone write needs none); then each is answered. */
  private commitBatch(batch: SqliteStore['queuedWrites']): void {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    // Changes made outside write() since the last lookup (none are expected) must not be taken into knownChanges.
    this.checkIssuedCache();
    try {
      if (batch.length === 1) {
        outcomes.push({ ok: true, value: this.inTransaction.immediate(batch[0]!.fn) });
      } else {
        this.inTransaction.immediate(() => {
          for (const write of batch) {
            try {
              // A transaction function called inside a transaction runs in a savepoint.
              outcomes.push({ ok: true, value: this.inTransaction(write.fn) });
            } catch (error) {
              this.writeHealth.failed(error);
              outcomes.push({ ok: false, error });
            }
          }
        });
      }
    } catch (error) {
      // Nothing was committed (BEGIN or COMMIT failed, or the lone write threw): every write of the batch fails.
      this.writeHealth.failed(error);
      this.issuedWritten(batch);
      for (const write of batch) write.reject(error);
      return;
    }
    this.issuedWritten(batch);
    this.checkpointer?.noteWrites(batch.length);
    batch.forEach((write, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(outcome.error);
    });
  }

  /** Runs `fn` in a deferred (read) transaction, so its queries see one snapshot. */
  private read<T>(fn: () => T): T {
    return this.inTransaction.deferred(fn) as T;
  }

  async markRestored(now: number): Promise<number> {
    return this.write(() => {
      this.sql.putSetting.run(RESTORED_SETTING, String(now));
      return this.db.prepare(MARK_RESTORED).run({ gap: RESTORE_SYNC_COUNT_GAP, now }).changes;
    });
  }

  async close(): Promise<void> {
    await this.committing;
    // The worker's connection closes first, so this one is the last: SQLite then checkpoints and removes the WAL.
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
    if (this.lock?.open) this.lock.close();
  }

  /** Ready when the database answers and, after a write failed for the storage's sake, a probe write commits (write-health.ts). */
  async ping(): Promise<boolean> {
    try {
      this.db.prepare('SELECT 1').get();
      return await this.writeHealth.canWrite();
    } catch {
      return false;
    }
  }

  async getOrCreateSetting(name: string, value: string): Promise<string> {
    return this.write(() => {
      this.sql.insertSetting.run(name, value);
      return this.sql.getSetting.get(name)!.value;
    });
  }

  async createIdentityPool(pool: IdentityPoolRecord, maxPools: number): Promise<void> {
    await this.write(() => {
      if (this.sql.countPools.get()!.n >= maxPools) throw new LimitExceededException(`The maximum of ${maxPools} identity pools has been reached`);
      this.sql.insertPool.run(pool.identityPoolId, pool.identityPoolName, JSON.stringify(pool.description), pool.creationDate, pool.lastModifiedDate);
    });
  }

  async getIdentityPool(identityPoolId: string): Promise<IdentityPoolRecord | undefined> {
    const row = this.sql.getPool.get(identityPoolId);
    return row && toPool(row);
  }

  async listIdentityPools(afterId: string | undefined, limit: number): Promise<IdentityPoolRecord[]> {
    return this.sql.listPools.all(afterId ?? '', limit).map(toPool);
  }

  async updateIdentityPool(pool: Omit<IdentityPoolRecord, 'creationDate'>): Promise<boolean> {
    const result = this.sql.updatePool.run(pool.identityPoolName, JSON.stringify(pool.description), pool.lastModifiedDate, pool.identityPoolId);
    return result.changes > 0;
  }

  async deleteIdentityPool(identityPoolId: string): Promise<boolean> {
    return this.write(() => {
      this.sql.deletePoolSubscriptions.run(identityPoolId);
      this.sql.deletePoolDevices.run(identityPoolId);
      this.sql.deletePoolDatasets.run(identityPoolId);
      this.sql.deletePoolCredentials.run(identityPoolId);
      this.sql.deletePoolLogins.run(identityPoolId);
      this.sql.deletePoolIdentities.run(identityPoolId);
      return this.sql.deletePool.run(identityPoolId).changes > 0;
    });
  }

  async getPoolSyncSettings(identityPoolId: string): Promise<PoolSyncSettings | undefined> {
    const row = this.sql.getPool.get(identityPoolId);
    return row && toSettings(row);
  }

  async setPoolConfiguration(identityPoolId: string, changes: Pick<PoolSyncSettings, 'pushSync' | 'cognitoStreams'>): Promise<PoolSyncSettings | undefined> {
    return this.write(() => {
      const row = this.sql.getPool.get(identityPoolId);
      if (!row) return undefined;
      const settings = { ...toSettings(row), ...changes };
      this.sql.setPoolConfiguration.run(
        settings.pushSync ? JSON.stringify(settings.pushSync) : null,
        settings.cognitoStreams ? JSON.stringify(settings.cognitoStreams) : null,
        identityPoolId,
      );
      return settings;
    });
  }

  async setCognitoEvents(identityPoolId: string, changes: Record<string, string>): Promise<void> {
    await this.write(() => {
      const row = this.sql.getPool.get(identityPoolId);
      if (!row) return;
      const events = toSettings(row).cognitoEvents;
      for (const [type, fn] of Object.entries(changes)) {
        if (fn === '') delete events[type];
        else events[type] = fn;
      }
      this.sql.setPoolEvents.run(JSON.stringify(events), identityPoolId);
    });
  }

  async startBulkPublish(identityPoolId: string, decide: (settings: PoolSyncSettings) => BulkPublishState, now: number): Promise<BulkPublishState | undefined> {
    return this.write(() => {
      const row = this.sql.getPool.get(identityPoolId);
      if (!row) return undefined;
      const settings = toSettings(row);
      const next = decide(settings);
      this.sql.setPoolBulkPublish.run(JSON.stringify(next), identityPoolId);
      if (next.status === 'IN_PROGRESS') this.insertOutbox([bulkPublishJob(identityPoolId, settings)], now);
      return next;
    });
  }

  async setBulkPublishState(identityPoolId: string, state: BulkPublishState): Promise<void> {
    this.sql.setPoolBulkPublish.run(JSON.stringify(state), identityPoolId);
  }

  async describeDataset(key: DatasetKey): Promise<DatasetRecord | undefined> {
    const row = this.datasetRow(key.identityPoolId, key.identityId, key.datasetName);
    return row && row.live ? toDataset(row) : undefined;
  }

  async listDatasets(identityPoolId: string, identityId: string, afterName: string | undefined, limit: number): Promise<DatasetRecord[]> {
    return this.sql.listDatasets.all(identityPoolId, identityId, afterName ?? '', limit).map(toDataset);
  }

  async deleteDataset(key: DatasetKey, now: number, stream?: StreamTarget, push?: PushTarget): Promise<DatasetRecord | undefined> {
    const deleted = await this.write(() => {
      const row = this.datasetRow(key.identityPoolId, key.identityId, key.datasetName);
      if (!row || !row.live) return undefined;
      this.sql.deleteDatasetRecords.run(row.dataset_id);
      // The deletion is a change of its own, at the next SyncCount (see deletedSyncCount).
      const syncCount = deletedSyncCount(row.sync_count);
      this.sql.markDatasetDeleted.run(syncCount, syncCount, now, row.dataset_id);
      if (stream) this.insertOutbox(streamEntries(stream, key, 'remove', [], syncCount, now), now);
      if (push) this.insertOutbox(pushEntries(push, key, this.sql.subscribedDevices.all(key.identityPoolId, key.identityId, key.datasetName), 'DatasetDeleted', syncCount, undefined), now);
      return toDataset(row);
    });
    if (deleted) this.changes.emit('change', { identityPoolId: key.identityPoolId, identityId: key.identityId, datasetName: key.datasetName, syncCount: deletedSyncCount(deleted.syncCount) } satisfies ChangeEvent);
    return deleted;
  }

  async getRecords(key: DatasetKey, keys: readonly string[]): Promise<Map<string, StoredRecord>> {
    return this.read(() => {
      const found = new Map<string, StoredRecord>();
      const row = this.datasetRow(key.identityPoolId, key.identityId, key.datasetName);
      if (!row || !row.live) return found;
      for (const recordKey of keys) {
        const record = this.sql.getRecord.get(row.dataset_id, recordKey);
        if (record) found.set(recordKey, toStoredRecord(record));
      }
      return found;
    });
  }

  async listPoolDatasets(identityPoolId: string, after: { identityId: string; datasetName: string } | undefined, limit: number): Promise<DatasetRecord[]> {
    return this.sql.listPoolDatasets.all(identityPoolId, after?.identityId ?? '', after?.datasetName ?? '', limit).map(toDataset);
  }

  async listRecords(key: DatasetKey, lastSyncCount: number, after: RecordCursor | undefined, limit: number): Promise<RecordsPage> {
    // One read transaction so the dataset row and its records are one snapshot.
    return this.read((): RecordsPage => {
      const row = this.datasetRow(key.identityPoolId, key.identityId, key.datasetName);
      const mergedDatasetNames = this.sql.mergedDatasetNames.all(key.identityPoolId, key.identityId, key.datasetName).map((r) => r.dataset_name);
      const restored = { from: row?.restored_from_sync_count ?? 0, to: row?.restored_to_sync_count ?? 0 };
      const tombstonesDroppedThrough = row?.tombstones_dropped_through ?? 0;
      if (!row || !row.live) return { dataset: undefined, mergedDatasetNames, deletedAtSyncCount: row?.deleted_at_sync_count ?? 0, restored, tombstonesDroppedThrough, records: [], next: undefined };
      const rows = this.sql.listRecords.all(row.dataset_id, lastSyncCount, after?.syncCount ?? 0, after?.key ?? '', limit + 1);
      const more = rows.length > limit;
      const records = (more ? rows.slice(0, limit) : rows).map(toStoredRecord);
      const last = records[records.length - 1];
      return { dataset: toDataset(row), mergedDatasetNames, deletedAtSyncCount: row.deleted_at_sync_count, restored, tombstonesDroppedThrough, records, next: more && last ? { syncCount: last.syncCount, key: last.key } : undefined };
    });
  }

  async updateRecords(request: UpdateRecordsRequest): Promise<UpdateRecordsResult> {
    // Keeps the credentials cache: it reads credentials, identities and pools, and writes only datasets, records and the outbox.
    const result = await this.write((): UpdateRecordsResult => {
      const { identityPoolId, identityId, datasetName } = request;
      const row = this.datasetRow(identityPoolId, identityId, datasetName);
      const live = Boolean(row?.live);
      if (!live && request.issuedAccessKeyId !== undefined && !this.sql.issuedCredentialsExist.get(request.issuedAccessKeyId)) throw revokedWhileWriting(identityId);
      const current = new Map<string, StoredRecord>();
      if (row && live) {
        for (const patch of request.patches) {
          const record = this.sql.getRecord.get(row.dataset_id, patch.key);
          if (record) current.set(patch.key, toStoredRecord(record));
        }
      }
      // A dataset created after a restore starts past its mark (core/restore.ts).
      const restoredTo = row ? row.restored_to_sync_count : Number(this.sql.getSetting.get(RESTORED_SETTING)?.value ?? 0);
      const restored = { from: row?.restored_from_sync_count ?? 0, to: restoredTo };
      const applied = applyRecordPatches({
        dataset: { live, syncCount: row?.sync_count ?? restoredTo, dataStorage: row?.data_storage ?? 0, numRecords: row?.num_records ?? 0, deletedAtSyncCount: row?.deleted_at_sync_count ?? 0, restored,
          tombstones: row?.tombstones ?? 0, tombstoneBytes: row?.tombstone_bytes ?? 0, tombstonesDroppedThrough: row?.tombstones_dropped_through ?? 0 },
        otherLiveDatasets: live ? 0 : this.sql.countLiveDatasets.get(identityPoolId, identityId)!.n,
        current,
        sessionSyncCount: request.sessionSyncCount,
        patches: request.patches,
        now: request.now,
        modifiedBy: request.modifiedBy,
        limits: request.limits,
      });
      const creationDate = live && row ? row.creation_date : request.now;
      let datasetId: number;
      const { syncCount, dataStorage, numRecords } = applied.dataset;
      if (row) {
        datasetId = row.dataset_id;
        this.sql.updateDataset.run(creationDate, request.now, request.modifiedBy, syncCount, dataStorage, numRecords, applied.dataset.tombstones, applied.dataset.tombstoneBytes, datasetId);
      } else {
        // The pool may have been deleted since the request read it (a DeleteIdentityPool earlier in this transaction, or
        // committed since): a dataset created now would outlive it, out of reach.
        this.requirePoolInWrite(identityPoolId);
        const inserted = this.sql.insertDataset.run(identityPoolId, identityId, datasetName, creationDate, request.now, request.modifiedBy, syncCount, dataStorage, numRecords, restoredTo);
        datasetId = Number(inserted.lastInsertRowid);
      }
      for (const record of applied.records) {
        this.sql.upsertRecord.run(datasetId, record.key, record.value, record.syncCount, record.lastModifiedDate, record.lastModifiedBy, record.deviceLastModifiedDate);
      }
      if (applied.dropTombstones) this.dropOldestTombstones(datasetId, applied.dropTombstones, syncCount);
      if (request.stream) this.insertOutbox(streamEntries(request.stream, request, 'replace', applied.records, syncCount, request.now), request.now);
      if (request.push) {
        const devices = this.sql.subscribedDevices.all(identityPoolId, identityId, datasetName);
        this.insertOutbox(pushEntries(request.push, request, devices, 'DatasetUpdated', syncCount, request.deviceId), request.now);
      }
      return {
        dataset: { identityPoolId, identityId, datasetName, creationDate, lastModifiedDate: request.now, lastModifiedBy: request.modifiedBy, syncCount, dataStorage, numRecords },
        records: applied.answer,
      };
    }, textLength(request.patches), true);
    const { identityPoolId, identityId, datasetName } = request;
    this.changes.emit('change', { identityPoolId, identityId, datasetName, syncCount: result.dataset.syncCount, ...(request.deviceId ? { deviceId: request.deviceId } : {}) } satisfies ChangeEvent);
    return result;
  }

  /** Drops at least `drop` of the dataset's oldest tombstones, older than the write at `written` (core/tombstones.ts). */
  private dropOldestTombstones(datasetId: number, drop: TombstoneDrop, written: number): void {
    const cut = tombstoneCut(this.sql.tombstonesOldestFirst.iterate(datasetId), drop, written);
    if (cut === undefined) return;
    this.sql.dropTombstones.run(datasetId, cut);
    this.sql.markTombstonesDropped.run({ id: datasetId, through: cut });
  }

  async watchChanges(listener: (event: ChangeEvent) => void): Promise<() => Promise<void>> {
    this.changes.on('change', listener);
    return async () => {
      this.changes.off('change', listener);
    };
  }

  async describeIdentityUsage(identityPoolId: string, identityId: string): Promise<IdentityUsage> {
    const usage = this.sql.identityUsage.get(identityPoolId, identityId)!;
    return { identityPoolId, identityId, datasetCount: usage.n, dataStorage: usage.bytes ?? 0, lastModifiedDate: usage.last ?? undefined };
  }

  async describeIdentityPoolUsage(identityPoolId: string): Promise<IdentityPoolUsage> {
    const usage = this.sql.poolUsage.get(identityPoolId)!;
    return { identityPoolId, syncSessionsCount: usage.sessions ?? 0, dataStorage: usage.bytes ?? 0, lastModifiedDate: usage.last ?? undefined };
  }

  async listIdentityPoolUsage(afterId: string | undefined, limit: number): Promise<IdentityPoolUsage[]> {
    return this.db.transaction(() =>
      this.sql.listPools.all(afterId ?? '', limit).map((pool) => {
        const usage = this.sql.poolUsage.get(pool.identity_pool_id)!;
        return { identityPoolId: pool.identity_pool_id, syncSessionsCount: usage.sessions ?? 0, dataStorage: usage.bytes ?? 0, lastModifiedDate: usage.last ?? undefined };
      }),
    ).deferred();
  }

  async registerDevice(device: DeviceRecord, maxDevices = Number.MAX_SAFE_INTEGER): Promise<DeviceRecord> {
    return this.write(() => {
      // Deleted (with its pool, or alone) or merged into another since the request read it: its devices went or moved.
      this.requirePoolInWrite(device.identityPoolId);
      this.requireIdentityInWrite(device.identityId);
      this.sql.insertDevice.run(device.identityPoolId, device.identityId, device.deviceId, device.platform, device.token, device.creationDate);
      const registered = this.sql.getDeviceByToken.get(device.identityPoolId, device.identityId, device.platform, device.token)!;
      for (const { device_id: evicted } of this.sql.devicesBeyond.all(device.identityPoolId, device.identityId, registered.deviceId, maxDevices - 1)) {
        this.sql.deleteDeviceSubscriptions.run(device.identityPoolId, device.identityId, evicted);
        this.sql.deleteDevice.run(device.identityPoolId, device.identityId, evicted);
      }
      return registered;
    });
  }

  async getDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    return this.sql.getDevice.get(identityPoolId, identityId, deviceId);
  }

  async subscribe(key: DatasetKey, deviceId: string, now: number, maxSubscriptions = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    return this.write(() => {
      this.requirePoolInWrite(key.identityPoolId);
      this.requireIdentityInWrite(key.identityId);
      // Unregistered since the request read it (a newer registration evicted it, or it moved with a merge).
      if (!this.sql.getDevice.get(key.identityPoolId, key.identityId, deviceId)) throw deviceNotRegistered(key.identityId, deviceId);
      if (this.sql.otherSubscriptions.get(key.identityPoolId, key.identityId, deviceId, key.datasetName)!.n >= maxSubscriptions) return false;
      this.sql.subscribe.run(key.identityPoolId, key.identityId, key.datasetName, deviceId, now);
      return true;
    });
  }

  async unsubscribe(key: DatasetKey, deviceId: string): Promise<void> {
    this.sql.unsubscribe.run(key.identityPoolId, key.identityId, key.datasetName, deviceId);
  }

  async deleteDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<void> {
    await this.write(() => {
      this.sql.deleteDeviceSubscriptions.run(identityPoolId, identityId, deviceId);
      this.sql.deleteDevice.run(identityPoolId, identityId, deviceId);
    });
  }

  async listSubscriptions(key: DatasetKey): Promise<string[]> {
    return this.sql.listSubscriptions.all(key.identityPoolId, key.identityId, key.datasetName).map((r) => r.device_id);
  }

  /** Inside a write: ResourceNotFoundException when the pool no longer exists (deleted since the request read it). */
  private requirePoolInWrite(identityPoolId: string): void {
    if (!this.sql.getPool.get(identityPoolId)) throw new ResourceNotFoundException(`IdentityPool '${identityPoolId}' not found.`);
  }

  async createIdentity(identity: IdentityRecord): Promise<LoginOwnedElsewhere | undefined> {
    return this.write(() => {
      this.requirePoolInWrite(identity.identityPoolId);
      for (const login of identity.logins) {
        const owner = this.sql.loginOwner.get(identity.identityPoolId, login.providerName, login.userIdentifier)?.identity_id;
        if (owner) return { ownedBy: owner };
      }
      this.sql.insertIdentity.run(identity.identityId, identity.identityPoolId, identity.creationDate, identity.lastModifiedDate);
      for (const login of identity.logins) this.sql.insertLogin.run(identity.identityPoolId, login.providerName, login.userIdentifier, identity.identityId);
      return undefined;
    });
  }

  /** Inside a write: the provider of one of `adding` that the identity holds another user of (ProviderRule), if any. */
  private providerInUse(identityId: string, adding: readonly Login[], rule: ProviderRule): string | undefined {
    return providerClash(this.loginsOf(identityId), adding, rule);
  }

  private loginsOf(identityId: string): Login[] {
    return this.sql.identityLogins.all(identityId).map((l) => ({ providerName: l.provider_name, userIdentifier: l.user_identifier }));
  }

  /** Inside a write: the identity must still exist (one writer, so it does until the write commits). */
  private requireIdentityInWrite(identityId: string): void {
    if (!this.sql.getIdentity.get(identityId)) throw new ResourceNotFoundException(`Identity '${identityId}' not found.`);
  }

  async getIdentity(identityId: string): Promise<IdentityRecord | undefined> {
    const row = this.sql.getIdentity.get(identityId);
    return row && this.toIdentity(row);
  }

  private toIdentity(row: IdentityRow): IdentityRecord {
    return {
      identityId: row.identity_id,
      identityPoolId: row.identity_pool_id,
      creationDate: row.creation_date,
      lastModifiedDate: row.last_modified_date,
      logins: this.loginsOf(row.identity_id),
      ...(row.inaccessible ? { inaccessible: true } : {}),
      ...(row.tokens_not_before ? { tokensNotBefore: row.tokens_not_before } : {}),
    };
  }

  async findIdentityByLogin(identityPoolId: string, login: Login): Promise<string | undefined> {
    return this.sql.loginOwner.get(identityPoolId, login.providerName, login.userIdentifier)?.identity_id;
  }

  async linkLogins(identityPoolId: string, identityId: string, logins: readonly Login[], now: number, rule: ProviderRule, expect?: LinkExpectation): Promise<LinkRefusal | undefined> {
    return this.write(() => {
      this.requireIdentityInWrite(identityId);
      if (expect && changedSinceRead(this.loginsOf(identityId), expect, logins)) return { changedMeanwhile: true };
      const unlinked: Login[] = [];
      for (const login of logins) {
        const owner = this.sql.loginOwner.get(identityPoolId, login.providerName, login.userIdentifier)?.identity_id;
        if (owner && owner !== identityId) return { ownedBy: owner };
        if (!owner && !unlinked.some((l) => l.providerName === login.providerName && l.userIdentifier === login.userIdentifier)) unlinked.push(login);
      }
      if (unlinked.length === 0) return undefined;
      const providerInUse = this.providerInUse(identityId, unlinked, rule);
      if (providerInUse) return { providerInUse };
      for (const login of unlinked) this.sql.insertLogin.run(identityPoolId, login.providerName, login.userIdentifier, identityId);
      this.sql.touchLinkedIdentity.run(now, identityId);
      return undefined;
    });
  }

  async unlinkLogins(identityId: string, providerName: string, userIdentifier: string | undefined, now: number): Promise<number> {
    return this.write(() => {
      const removed = userIdentifier === undefined
        ? this.sql.deleteProviderLogins.run(identityId, providerName).changes
        : this.sql.deleteUserLogin.run(identityId, providerName, userIdentifier).changes;
      if (removed > 0 && this.sql.touchUnlinkedIdentity.get({ now, id: identityId })?.inaccessible) this.sql.deleteIdentityCredentials.run(identityId);
      return removed;
    });
  }

  async listIdentities(identityPoolId: string, afterId: string | undefined, limit: number, hideDisabled = false): Promise<IdentityRecord[]> {
    return this.db.transaction(() => this.sql.listIdentities.all(identityPoolId, afterId ?? '', hideDisabled ? 0 : 1, limit).map((row) => this.toIdentity(row))).deferred();
  }

  async deleteIdentity(identityId: string): Promise<boolean> {
    return this.write(() => this.removeIdentity(identityId));
  }

  private removeIdentity(identityId: string): boolean {
    this.sql.deleteIdentitySubscriptions.run(identityId);
    this.sql.deleteIdentityDevices.run(identityId);
    this.sql.deleteIdentityDatasets.run(identityId);
    this.sql.deleteIdentityCredentials.run(identityId);
    this.sql.deleteIdentityLogins.run(identityId);
    return this.sql.deleteIdentity.run(identityId).changes > 0;
  }

  async mergeIdentities(identityPoolId: string, sourceIdentityId: string, destinationIdentityId: string, now: number, rule: ProviderRule): Promise<void> {
    if (sourceIdentityId === destinationIdentityId) return;
    await this.write(() => {
      this.requireIdentityInWrite(sourceIdentityId);
      this.requireIdentityInWrite(destinationIdentityId);
      const providerInUse = this.providerInUse(destinationIdentityId, this.loginsOf(sourceIdentityId), rule);
      if (providerInUse) throw new ResourceConflictException(`Two different users of ${providerInUse} cannot belong to one identity.`);
      const datasets = this.sql.liveDatasetNames.all(identityPoolId, sourceIdentityId);
      const mergedNames = mergedDatasetNames(datasets.map((d) => d.dataset_name), sourceIdentityId);
      for (const mergedName of mergedNames.values()) {
        const clash = this.sql.datasetLiveness.get(identityPoolId, destinationIdentityId, mergedName);
        if (clash?.live) throw new ResourceConflictException(`Identity ${destinationIdentityId} already has a dataset named ${mergedName}; cannot merge.`);
        if (clash) this.sql.deleteDatasetByName.run(identityPoolId, destinationIdentityId, mergedName);
      }
      this.sql.moveLogins.run(destinationIdentityId, sourceIdentityId);
      for (const dataset of datasets) this.sql.mergeDataset.run(destinationIdentityId, mergedNames.get(dataset.dataset_name)!, dataset.dataset_id);
      this.sql.moveDevices.run(destinationIdentityId, sourceIdentityId);
      this.removeIdentity(sourceIdentityId);
      this.sql.touchLinkedIdentity.run(now, destinationIdentityId);
    });
  }

  async saveIssuedCredentials(credentials: IssuedCredentialsRecord): Promise<void> {
    await this.write(() => {
      this.requireIdentityInWrite(credentials.identityId);
      this.sql.purgeExpiredCredentials.run(credentials.identityId, Date.now() - EXPIRED_CREDENTIALS_RETENTION_MS);
      this.sql.insertCredentials.run(credentials.accessKeyId, credentials.identityPoolId, credentials.identityId, credentials.expiration);
    });
  }

  async getIssuedCredentials(accessKeyId: string): Promise<IssuedCredentials | undefined> {
    this.checkIssuedCache();
    const cached = this.issuedCache.get(accessKeyId);
    if (cached) return cached;
    const row = this.sql.getCredentials.get(accessKeyId);
    if (!row) return undefined;
    const issued = Object.freeze(toIssuedCredentials(toCredentialsRow(row)));
    // Oldest first out: a Map iterates in insertion order.
    if (this.issuedCache.size >= ISSUED_CACHE_SIZE) this.issuedCache.delete(this.issuedCache.keys().next().value!);
    this.issuedCache.set(accessKeyId, issued);
    return issued;
  }

  /** Empties the credentials cache if this connection changed anything since it was last known current. */
  private checkIssuedCache(): void {
    const changes = this.sql.totalChanges.get()!;
    if (changes === this.knownChanges) return;
    this.issuedCache.clear();
    this.knownChanges = changes;
  }

  /** After a batch's transaction: what it changed is known; unless every write of it keeps credentials, the cache goes. */
  private issuedWritten(batch: SqliteStore['queuedWrites']): void {
    if (!batch.every((write) => write.keepsCredentials)) this.issuedCache.clear();
    this.knownChanges = this.sql.totalChanges.get()!;
  }

  async getPoolRoles(identityPoolId: string): Promise<PoolRoles | undefined> {
    const row = this.sql.getPoolRoles.get(identityPoolId);
    return row ? (row.roles ? (JSON.parse(row.roles) as PoolRoles) : {}) : undefined;
  }

  async setPoolRoles(identityPoolId: string, roles: PoolRoles): Promise<boolean> {
    return this.sql.setPoolRoles.run(JSON.stringify(roles), identityPoolId).changes > 0;
  }

  private insertOutbox(entries: readonly OutboxEntry[], now: number): void {
    for (const entry of entries) this.sql.insertOutbox.run(entry.kind, entry.partitionKey, JSON.stringify(entry.payload), entry.bulkPoolId ?? null, now, now);
  }

  async enqueueOutbox(entries: readonly OutboxEntry[], now: number): Promise<void> {
    await this.write(() => this.insertOutbox(entries, now));
  }

  async claimOutbox(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedOutboxEntry[]> {
    return this.write(() =>
      this.sql.dueOutbox.all(now, now, limit).map((row) => {
        this.sql.leaseOutbox.run(owner, now + leaseMs, row.outbox_id);
        return toOutboxEntry(row);
      }),
    );
  }

  async completeOutbox(outboxIds: readonly number[]): Promise<void> {
    await this.write(() => {
      for (const id of outboxIds) this.sql.deleteOutbox.run(id);
    });
  }

  async retryOutbox(outboxId: number, nextAttemptAt: number, error?: string): Promise<void> {
    if (error === undefined) this.sql.retryOutbox.run(nextAttemptAt, outboxId);
    else this.sql.failOutbox.run(nextAttemptAt, error.slice(0, 2000), outboxId);
  }

  async advanceOutbox(outboxId: number, next: readonly OutboxEntry[], now: number, unchanged: ReadonlyArray<DatasetKey & { syncCount: number }> = []): Promise<boolean> {
    // One writer at a time: no write is in flight while this transaction checks and inserts.
    return this.write(() => {
      if (unchanged.some((d) => this.datasetRow(d.identityPoolId, d.identityId, d.datasetName)?.sync_count !== d.syncCount)) return false;
      this.sql.deleteOutbox.run(outboxId);
      this.insertOutbox(next, now);
      return true;
    });
  }

  async countBulkOutbox(identityPoolId: string, kind?: OutboxEntry['kind']): Promise<number> {
    return (kind ? this.sql.countBulkOutboxOfKind.get(identityPoolId, kind) : this.sql.countBulkOutbox.get(identityPoolId))!.n;
  }

  async dropBulkOutbox(identityPoolId: string): Promise<void> {
    this.sql.dropBulkOutbox.run(identityPoolId);
  }

  async outboxBacklog(): Promise<OutboxBacklog> {
    return this.read(() => ({ pending: this.sql.countOutbox.get()!.n, oldestCreatedAt: this.sql.oldestOutbox.get()?.created_at }));
  }

  async putStreamPayload(outboxId: number, payloadId: string, body: string, expiresAt: number): Promise<string> {
    return this.write(() => {
      this.sql.putStreamPayload.run(payloadId, outboxId, body, expiresAt);
      return this.sql.streamPayloadOfEntry.get(outboxId)!.payload_id;
    }, body.length);
  }

  async getStreamPayload(payloadId: string, now: number): Promise<string | undefined> {
    return this.read(() => this.sql.getStreamPayload.get(payloadId, now)?.body);
  }

  async dropExpiredStreamPayloads(now: number): Promise<number> {
    return this.write(() => this.sql.dropExpiredStreamPayloads.run(now).changes);
  }
}

const toOutboxEntry = (row: OutboxRow): ClaimedOutboxEntry => ({
  outboxId: row.outbox_id,
  kind: row.kind,
  partitionKey: row.partition_key,
  payload: JSON.parse(row.payload) as unknown,
  ...(row.bulk_pool_id ? { bulkPoolId: row.bulk_pool_id } : {}),
  attempts: row.attempts,
  createdAt: row.created_at,
});

/**
 * The database holds the generated developer secret and the SyncSessionToken secret in clear (decisions.md: treat
 * it like the master key), so a new data dir is created 0700 and a new database file 0600 before SQLite opens it:
 * SQLite gives `-wal`, `-shm` and `-journal` the database file's permissions, where it would otherwise create all
 * of them 0644 under the usual umask 022. A data dir or database an operator created is left as it is, never
 * chmod-ed: its permissions are their choice (a shared group, say).
 */
function createPrivateDatabaseFile(filename: string): void {
  mkdirSync(dirname(filename), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(filename, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}
