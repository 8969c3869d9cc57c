// SqliteStore: the LocalStore contract on one SQLite file (better-sqlite3), safe to share between processes.
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';
import { LockTimeoutError } from '../../errors.ts';
import { byKey, newDatasetFields, sameRecord, type DatasetMetadata, type LocalRecord, type PushedVersion } from '../../records.ts';
import { NamedMutex } from '../mutex.ts';
import { sleep } from '../../sleep.ts';
import type { LocalStore, LockOptions, StoreBatch } from '../store.ts';

export interface SqliteStoreOptions {
  /**
   * SQLite `synchronous` mode. FULL (default) makes every resolved put survive power loss, not only a crash;
   * a device writes little, so the cost is small.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a cross-process sync lock stays valid without renewal (default 30 s). Holders renew it every third. */
  lockLeaseMs?: number;
  /** How long to wait for SQLite's write lock before SQLITE_BUSY (default 5 s). */
  busyTimeoutMs?: number;
}

/** A record's UTF-8 key + value bytes in SQL (the database encoding is UTF-8, so a blob cast is the UTF-8 form). */
function bytes(row: string): string {
  return `(length(CAST(${row}.key AS BLOB)) + length(CAST(${row}.value AS BLOB)))`;
}

const schemaVersion = 2;
const schema = `
CREATE TABLE IF NOT EXISTS datasets (
  identity_id TEXT NOT NULL, dataset_name TEXT NOT NULL,
  last_sync_count INTEGER NOT NULL, deleted INTEGER NOT NULL, merged_into TEXT,
  creation_date INTEGER NOT NULL, last_modified_date INTEGER NOT NULL, last_modified_by TEXT NOT NULL,
  last_sync_date INTEGER NOT NULL, remote_data_storage INTEGER NOT NULL, remote_num_records INTEGER NOT NULL,
  PRIMARY KEY (identity_id, dataset_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  identity_id TEXT NOT NULL, dataset_name TEXT NOT NULL, key TEXT NOT NULL,
  value TEXT, sync_count INTEGER NOT NULL, modified INTEGER NOT NULL,
  device_last_modified_date INTEGER NOT NULL, last_modified_date INTEGER NOT NULL, last_modified_by TEXT NOT NULL,
  pushing INTEGER NOT NULL, pushing_value TEXT, pushing_device_last_modified_date INTEGER, pushing_earlier TEXT,
  PRIMARY KEY (identity_id, dataset_name, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
-- Schema 2: the modified records of a dataset without a scan, and its usage kept by triggers on every record write.
CREATE INDEX IF NOT EXISTS records_modified ON records (identity_id, dataset_name, key) WHERE modified = 1;
CREATE TABLE IF NOT EXISTS dataset_usage (
  identity_id TEXT NOT NULL, dataset_name TEXT NOT NULL, num_records INTEGER NOT NULL, data_storage INTEGER NOT NULL,
  PRIMARY KEY (identity_id, dataset_name)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS records_usage_insert AFTER INSERT ON records WHEN new.value IS NOT NULL BEGIN
  INSERT INTO dataset_usage VALUES (new.identity_id, new.dataset_name, 1, ${bytes('new')})
    ON CONFLICT DO UPDATE SET num_records = num_records + 1, data_storage = data_storage + excluded.data_storage;
END;
CREATE TRIGGER IF NOT EXISTS records_usage_delete AFTER DELETE ON records WHEN old.value IS NOT NULL BEGIN
  UPDATE dataset_usage SET num_records = num_records - 1, data_storage = data_storage - ${bytes('old')}
    WHERE identity_id = old.identity_id AND dataset_name = old.dataset_name;
  DELETE FROM dataset_usage WHERE identity_id = old.identity_id AND dataset_name = old.dataset_name AND num_records = 0;
END;
CREATE TRIGGER IF NOT EXISTS records_usage_update AFTER UPDATE OF value ON records WHEN old.value IS NOT new.value BEGIN
  INSERT INTO dataset_usage VALUES (new.identity_id, new.dataset_name,
      (new.value IS NOT NULL) - (old.value IS NOT NULL), coalesce(${bytes('new')}, 0) - coalesce(${bytes('old')}, 0))
    ON CONFLICT DO UPDATE SET num_records = num_records + excluded.num_records, data_storage = data_storage + excluded.data_storage;
  DELETE FROM dataset_usage WHERE identity_id = new.identity_id AND dataset_name = new.dataset_name AND num_records = 0;
END;
`;
/** Counts a dataset's usage from its records, for files written by schema 1 (before the triggers kept it). */
const backfillUsage = `
DELETE FROM dataset_usage;
INSERT INTO dataset_usage SELECT identity_id, dataset_name, count(*), sum(${bytes('records')}) FROM records WHERE value IS NOT NULL GROUP BY 1, 2;
`;

interface DatasetRow {
  identity_id: string;
  dataset_name: string;
  last_sync_count: number;
  deleted: number;
  merged_into: string | null;
  creation_date: number;
  last_modified_date: number;
  last_modified_by: string;
  last_sync_date: number;
  remote_data_storage: number;
  remote_num_records: number;
}

interface RecordRow {
  key: string;
  value: string | null;
  sync_count: number;
  modified: number;
  device_last_modified_date: number;
  last_modified_date: number;
  last_modified_by: string;
  pushing: number;
  pushing_value: string | null;
  pushing_device_last_modified_date: number | null;
  /** JSON of PushJournal.earlier; NULL when there is none. */
  pushing_earlier: string | null;
}

const toDataset = (row: DatasetRow): DatasetMetadata => ({
  identityId: row.identity_id,
  datasetName: row.dataset_name,
  lastSyncCount: row.last_sync_count,
  deleted: row.deleted === 1,
  mergedInto: row.merged_into,
  creationDate: row.creation_date,
  lastModifiedDate: row.last_modified_date,
  lastModifiedBy: row.last_modified_by,
  lastSyncDate: row.last_sync_date,
  remoteDataStorage: row.remote_data_storage,
  remoteNumRecords: row.remote_num_records,
});

const toRecord = (row: RecordRow): LocalRecord => ({
  key: row.key,
  value: row.value,
  syncCount: row.sync_count,
  modified: row.modified === 1,
  deviceLastModifiedDate: row.device_last_modified_date,
  lastModifiedDate: row.last_modified_date,
  lastModifiedBy: row.last_modified_by,
  pushing:
    row.pushing === 1
      ? {
          value: row.pushing_value,
          deviceLastModifiedDate: row.pushing_device_last_modified_date ?? 0,
          ...(row.pushing_earlier ? { earlier: JSON.parse(row.pushing_earlier) as PushedVersion[] } : {}),
        }
      : null,
});

/** Whether a process id on this host is still running (a lock held by a dead process is free at once). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** better-sqlite3 is an optional peer dependency: load it only when a SqliteStore is made. */
function loadDriver(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    throw new Error('SqliteStore needs the better-sqlite3 package (npm install better-sqlite3@12)', { cause: error });
  }
}

/**
 * A store in one SQLite file (WAL). Any number of SqliteStores, in this process or others, may open the same file:
 * writes are serialized by SQLite (`BEGIN IMMEDIATE`), and the sync lock is a lease row that a crashed holder loses.
 */
export class SqliteStore implements LocalStore {
  readonly db: BetterSqlite3.Database;
  private readonly mutex = new NamedMutex();
  private readonly leaseMs: number;
  private readonly host = hostname();
  private readonly statements;

  constructor(readonly path: string, options: SqliteStoreOptions = {}) {
    const Database = loadDriver();
    this.db = new Database(path);
    this.leaseMs = options.lockLeaseMs ?? 30_000;
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
    this.db.transaction(() => {
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version > schemaVersion) throw new Error(`${path} was written by a newer @cognisync/client (schema ${version})`);
      this.db.exec(schema);
      // Added to schema 2 in place (no new version, so an older client still opens the file and ignores it): a file
      // it created lacks the column.
      const columns = this.db.pragma('table_info(records)') as Array<{ name: string }>;
      if (!columns.some((column) => column.name === 'pushing_earlier')) this.db.exec('ALTER TABLE records ADD COLUMN pushing_earlier TEXT');
      if (version < 2) this.db.exec(backfillUsage);
      this.db.pragma(`user_version = ${schemaVersion}`);
    }).immediate();
    const db = this.db;
    this.statements = {
      getDataset: db.prepare<[string, string], DatasetRow>('SELECT * FROM datasets WHERE identity_id = ? AND dataset_name = ?'),
      listDatasets: db.prepare<[string], DatasetRow>('SELECT * FROM datasets WHERE identity_id = ? ORDER BY dataset_name'),
      getRecord: db.prepare<[string, string, string], RecordRow>('SELECT * FROM records WHERE identity_id = ? AND dataset_name = ? AND key = ?'),
      listRecords: db.prepare<[string, string], RecordRow>('SELECT * FROM records WHERE identity_id = ? AND dataset_name = ?'),
      // The keys travel as one JSON array: one statement for any number of keys.
      getRecords: db.prepare<[string, string, string], RecordRow>(
        'SELECT * FROM records WHERE identity_id = ? AND dataset_name = ? AND key IN (SELECT value FROM json_each(?))',
      ),
      // Without statistics the planner would walk the primary key over the whole dataset instead.
      listModifiedRecords: db.prepare<[string, string], RecordRow>(
        'SELECT * FROM records INDEXED BY records_modified WHERE identity_id = ? AND dataset_name = ? AND modified = 1',
      ),
      getDatasetUsage: db.prepare<[string, string], { num_records: number; data_storage: number }>(
        'SELECT num_records, data_storage FROM dataset_usage WHERE identity_id = ? AND dataset_name = ?',
      ),
      purge: db.prepare('DELETE FROM records WHERE identity_id = ? AND dataset_name = ?'),
      removeRecord: db.prepare('DELETE FROM records WHERE identity_id = ? AND dataset_name = ? AND key = ?'),
      // An upsert, not INSERT OR REPLACE: a REPLACE deletes the old row without firing the usage delete trigger.
      putRecord: db.prepare(
        `INSERT INTO records (identity_id, dataset_name, key, value, sync_count, modified, device_last_modified_date,
           last_modified_date, last_modified_by, pushing, pushing_value, pushing_device_last_modified_date, pushing_earlier)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count, modified = excluded.modified,
           device_last_modified_date = excluded.device_last_modified_date, last_modified_date = excluded.last_modified_date,
           last_modified_by = excluded.last_modified_by, pushing = excluded.pushing, pushing_value = excluded.pushing_value,
           pushing_device_last_modified_date = excluded.pushing_device_last_modified_date, pushing_earlier = excluded.pushing_earlier`,
      ),
      putDataset: db.prepare(
        `INSERT OR REPLACE INTO datasets (identity_id, dataset_name, last_sync_count, deleted, merged_into, creation_date,
           last_modified_date, last_modified_by, last_sync_date, remote_data_storage, remote_num_records)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteDataset: db.prepare('DELETE FROM datasets WHERE identity_id = ? AND dataset_name = ?'),
      getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE name = ?'),
      setSetting: db.prepare('INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)'),
      deleteSetting: db.prepare('DELETE FROM settings WHERE name = ?'),
      getLock: db.prepare<[string], { owner: string; host: string; pid: number; expires_at: number }>('SELECT * FROM locks WHERE name = ?'),
      putLock: db.prepare('INSERT OR REPLACE INTO locks (name, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?)'),
      renewLock: db.prepare('UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?'),
      releaseLock: db.prepare('DELETE FROM locks WHERE name = ? AND owner = ?'),
    };
  }

  async getDataset(identityId: string, datasetName: string) {
    const row = this.statements.getDataset.get(identityId, datasetName);
    return row && toDataset(row);
  }

  async listDatasets(identityId: string) {
    return this.statements.listDatasets.all(identityId).map(toDataset);
  }

  async getRecord(identityId: string, datasetName: string, key: string) {
    const row = this.statements.getRecord.get(identityId, datasetName, key);
    return row && toRecord(row);
  }

  async listRecords(identityId: string, datasetName: string) {
    // Sorted here: SQLite's BINARY collation orders by UTF-8 bytes, the contract by UTF-16 code units.
    return this.statements.listRecords.all(identityId, datasetName).map(toRecord).sort(byKey);
  }

  async getRecords(identityId: string, datasetName: string, keys: readonly string[]) {
    if (!keys.length) return [];
    return this.statements.getRecords.all(identityId, datasetName, JSON.stringify(keys)).map(toRecord).sort(byKey);
  }

  async listModifiedRecords(identityId: string, datasetName: string) {
    return this.statements.listModifiedRecords.all(identityId, datasetName).map(toRecord).sort(byKey);
  }

  async getDatasetUsage(identityId: string, datasetName: string) {
    const row = this.statements.getDatasetUsage.get(identityId, datasetName);
    return { numRecords: row?.num_records ?? 0, dataStorage: row?.data_storage ?? 0 };
  }

  async commit(batch: StoreBatch): Promise<boolean> {
    const s = this.statements;
    const apply = this.db.transaction((): boolean => {
      for (const change of batch.datasets ?? []) {
        for (const { key, record } of change.expect ?? []) {
          const row = s.getRecord.get(change.identityId, change.datasetName, key);
          if (!sameRecord(row && toRecord(row), record)) return false;
        }
      }
      for (const [name, value] of Object.entries(batch.expectSettings ?? {})) if ((s.getSetting.get(name)?.value ?? null) !== value) return false;
      const now = Date.now();
      for (const change of batch.datasets ?? []) {
        const { identityId, datasetName } = change;
        if (change.purge) s.purge.run(identityId, datasetName);
        for (const key of change.remove ?? []) s.removeRecord.run(identityId, datasetName, key);
        for (const r of change.put ?? []) {
          s.putRecord.run(identityId, datasetName, r.key, r.value, r.syncCount, r.modified ? 1 : 0, r.deviceLastModifiedDate, r.lastModifiedDate,
            r.lastModifiedBy, r.pushing ? 1 : 0, r.pushing?.value ?? null, r.pushing?.deviceLastModifiedDate ?? null,
            r.pushing?.earlier?.length ? JSON.stringify(r.pushing.earlier) : null);
        }
        if (change.metadata === null) s.deleteDataset.run(identityId, datasetName);
        else if (change.metadata || change.put?.length) {
          const current = s.getDataset.get(identityId, datasetName);
          const d = { ...(current ? toDataset(current) : { identityId, datasetName, ...newDatasetFields(now) }), ...change.metadata };
          s.putDataset.run(identityId, datasetName, d.lastSyncCount, d.deleted ? 1 : 0, d.mergedInto, d.creationDate, d.lastModifiedDate,
            d.lastModifiedBy, d.lastSyncDate, d.remoteDataStorage, d.remoteNumRecords);
        }
      }
      for (const [name, value] of Object.entries(batch.settings ?? {})) {
        if (value === null) s.deleteSetting.run(name);
        else s.setSetting.run(name, value);
      }
      return true;
    });
    // IMMEDIATE takes the write lock before the expectations are read, so no other process can slip in between.
    return apply.immediate();
  }

  async getSetting(name: string) {
    return this.statements.getSetting.get(name)?.value;
  }

  withLock<T>(name: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    return this.mutex.run(name, async () => {
      const owner = `${this.host}:${process.pid}:${crypto.randomUUID()}`;
      let wait = 10;
      while (!this.tryLease(name, owner)) {
        if (Date.now() >= deadline) throw new LockTimeoutError(`Lock ${name} of ${this.path} is held by another process (waited ${timeoutMs} ms)`);
        await sleep(Math.min(wait, Math.max(1, deadline - Date.now())), signal);
        wait = Math.min(wait * 2, 250);
      }
      const renew = setInterval(() => {
        try {
          this.statements.renewLock.run(Date.now() + this.leaseMs, name, owner);
        } catch {
          // A busy database delays one renewal; the lease is three renewals long.
        }
      }, Math.max(10, Math.floor(this.leaseMs / 3)));
      renew.unref?.();
      try {
        return await fn();
      } finally {
        clearInterval(renew);
        if (this.db.open) this.statements.releaseLock.run(name, owner);
      }
    }, timeoutMs, signal);
  }

  /** Takes the lease if it is free, expired, or held by a dead process on this host. */
  private tryLease(name: string, owner: string): boolean {
    return this.db.transaction((): boolean => {
      const now = Date.now();
      const held = this.statements.getLock.get(name);
      const free = !held || held.expires_at <= now || (held.host === this.host && held.pid !== process.pid && !processAlive(held.pid));
      if (!free) return false;
      this.statements.putLock.run(name, owner, this.host, process.pid, now + this.leaseMs);
      return true;
    }).immediate();
  }

  async close() {
    if (this.db.open) this.db.close();
  }
}
