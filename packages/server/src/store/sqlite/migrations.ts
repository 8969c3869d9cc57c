// Versioned SQLite schema. Each step runs once, in order, inside a transaction, recorded in schema_migrations.
export interface Migration {
  version: number;
  name: string;
  /** The step; as a function, written for the schema it finds (`hasColumn`), when builds reached it by different paths. */
  sql: string | ((hasColumn: HasColumn) => string);
}

/** Whether a table of the database has a column (PRAGMA table_info). */
export type HasColumn = (table: string, column: string) => boolean;

/** A step's SQL for the database `hasColumn` describes. */
export function migrationSql(migration: Migration, hasColumn: HasColumn): string {
  return typeof migration.sql === 'string' ? migration.sql : migration.sql(hasColumn);
}

export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE identity_pools (
        identity_pool_id TEXT PRIMARY KEY,
        identity_pool_name TEXT NOT NULL,
        description TEXT NOT NULL,
        push_sync TEXT,
        cognito_streams TEXT,
        cognito_events TEXT NOT NULL DEFAULT '{}',
        bulk_publish TEXT NOT NULL DEFAULT '{"status":"NOT_STARTED"}',
        creation_date INTEGER NOT NULL,
        last_modified_date INTEGER NOT NULL
      ) WITHOUT ROWID;

      -- A dataset row outlives DeleteDataset (live = 0) so its SyncCount never repeats and
      -- devices that synced before the deletion can be told so.
      CREATE TABLE datasets (
        dataset_id INTEGER PRIMARY KEY,
        identity_pool_id TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        dataset_name TEXT NOT NULL,
        live INTEGER NOT NULL,
        creation_date INTEGER NOT NULL,
        last_modified_date INTEGER NOT NULL,
        last_modified_by TEXT NOT NULL,
        sync_count INTEGER NOT NULL,
        data_storage INTEGER NOT NULL,
        num_records INTEGER NOT NULL,
        deleted_at_sync_count INTEGER NOT NULL DEFAULT 0,
        sync_sessions_count INTEGER NOT NULL DEFAULT 0,
        UNIQUE (identity_pool_id, identity_id, dataset_name)
      );

      CREATE TABLE records (
        dataset_id INTEGER NOT NULL REFERENCES datasets (dataset_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT,
        sync_count INTEGER NOT NULL,
        last_modified_date INTEGER NOT NULL,
        last_modified_by TEXT NOT NULL,
        device_last_modified_date INTEGER NOT NULL,
        PRIMARY KEY (dataset_id, key)
      ) WITHOUT ROWID;
      -- ListRecords(lastSyncCount) reads changes through this index, never by scanning the dataset.
      CREATE INDEX records_by_sync_count ON records (dataset_id, sync_count, key);

      CREATE TABLE devices (
        identity_pool_id TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        platform TEXT NOT NULL,
        token TEXT NOT NULL,
        creation_date INTEGER NOT NULL,
        PRIMARY KEY (identity_pool_id, identity_id, device_id),
        UNIQUE (identity_pool_id, identity_id, platform, token)
      ) WITHOUT ROWID;

      CREATE TABLE subscriptions (
        identity_pool_id TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        dataset_name TEXT NOT NULL,
        device_id TEXT NOT NULL,
        creation_date INTEGER NOT NULL,
        PRIMARY KEY (identity_pool_id, identity_id, dataset_name, device_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'identities, logins, issued credentials, merged datasets, pool roles',
    sql: `
      CREATE TABLE identities (
        identity_id TEXT PRIMARY KEY,
        identity_pool_id TEXT NOT NULL,
        creation_date INTEGER NOT NULL,
        last_modified_date INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX identities_by_pool ON identities (identity_pool_id, identity_id);

      -- One row per linked login; a login belongs to at most one identity of a pool.
      CREATE TABLE identity_logins (
        identity_pool_id TEXT NOT NULL,
        provider_name TEXT NOT NULL,
        user_identifier TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        PRIMARY KEY (identity_pool_id, provider_name, user_identifier)
      ) WITHOUT ROWID;
      CREATE INDEX identity_logins_by_identity ON identity_logins (identity_id);

      -- Secrets are not stored: they are derived from the access key id with the master key.
      CREATE TABLE issued_credentials (
        access_key_id TEXT PRIMARY KEY,
        identity_pool_id TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        expiration INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX issued_credentials_by_identity ON issued_credentials (identity_id, expiration);

      -- Set on datasets a merge brought in: the name they are reported under in MergedDatasetNames.
      ALTER TABLE datasets ADD COLUMN merged_base_name TEXT;
      ALTER TABLE identity_pools ADD COLUMN roles TEXT;
    `,
  },
  {
    version: 3,
    name: 'transactional outbox',
    sql: `
      -- Work for the delivery workers, written in the same transaction as the change it describes.
      -- AUTOINCREMENT: ids never repeat, so id order is write order within a partition.
      CREATE TABLE outbox (
        outbox_id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        partition_key TEXT NOT NULL,
        payload TEXT NOT NULL,
        bulk_pool_id TEXT,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        claimed_by TEXT,
        claimed_until INTEGER
      );
      CREATE INDEX outbox_by_partition ON outbox (partition_key, outbox_id);
      CREATE INDEX outbox_by_bulk_pool ON outbox (bulk_pool_id) WHERE bulk_pool_id IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'records as a rowid table',
    sql: `
      -- A WITHOUT ROWID table keeps a row inside its B-tree page only up to ~1,000 bytes (4 KiB pages); a record
      -- with a ~1 KB value spilled the rest into an overflow page of its own. A 1 MB dataset took ~4.7 MB on disk,
      -- and reading it whole took ~5x the CPU. A rowid table keeps such rows in its pages.
      CREATE TABLE records_rowid (
        dataset_id INTEGER NOT NULL REFERENCES datasets (dataset_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT,
        sync_count INTEGER NOT NULL,
        last_modified_date INTEGER NOT NULL,
        last_modified_by TEXT NOT NULL,
        device_last_modified_date INTEGER NOT NULL,
        PRIMARY KEY (dataset_id, key)
      );
      INSERT INTO records_rowid (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
        SELECT dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date FROM records ORDER BY dataset_id, sync_count, key;
      DROP TABLE records;
      ALTER TABLE records_rowid RENAME TO records;
      -- ListRecords(lastSyncCount) reads changes through this index, never by scanning the dataset.
      CREATE INDEX records_by_sync_count ON records (dataset_id, sync_count, key);
    `,
  },
  {
    version: 5,
    name: 'inaccessible identities',
    sql: `
      -- An identity whose last login was unlinked (see IdentityRecord.inaccessible). Identities that lost their
      -- last login before this migration cannot be told apart from never-authenticated ones and stay as they were.
      ALTER TABLE identities ADD COLUMN inaccessible INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 6,
    name: 'restore marks',
    sql: `
      -- Where the dataset's SyncCount was when its database was marked restored from a backup (core/restore.ts).
      ALTER TABLE datasets ADD COLUMN restored_from_sync_count INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 7,
    name: 'restore spans and token cut-off',
    sql: (hasColumn) => `
      -- Where the restore mark moved the SyncCount to: (restored_from_sync_count, restored_to_sync_count) is the span
      -- it skipped; 0 if never marked (core/restore.ts). A build of 2026-12-07 (4c6469e) added it in migration 6,
      -- and its databases keep theirs.
      ${hasColumn('datasets', 'restored_to_sync_count') ? '' : 'ALTER TABLE datasets ADD COLUMN restored_to_sync_count INTEGER NOT NULL DEFAULT 0;'}
      -- Cognito tokens of the identity issued before this time (epoch ms) prove nothing: set when its last login was
      -- unlinked (identity-access.ts); 0 if never.
      ALTER TABLE identities ADD COLUMN tokens_not_before INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 8,
    name: 'logins and credentials only of existing identities',
    sql: `
      -- A login linked, or credentials issued, while DeleteIdentities removed the identity outlived it (the
      -- operation read the identity, then wrote after the deletion): the credentials still signed requests, and the
      -- login's user could never sign in again (a 500). The store now checks that the identity exists in the
      -- write's own transaction (SQLite has one writer; PostgreSQL's migration 6 adds foreign keys instead, since
      -- adding one here means rebuilding both tables). What the race left behind goes.
      DELETE FROM identity_logins WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.identity_id = identity_logins.identity_id);
      DELETE FROM issued_credentials WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.identity_id = issued_credentials.identity_id);
    `,
  },
  {
    version: 9,
    name: 'restore spans of the first restore marks',
    sql: `
      -- The first restore marks (12a1bec, 2026-12-07) moved a dataset's SyncCount from restored_from_sync_count by
      -- 1,000,000 and stored no end; migration 7 then read their spans as never restored, and devices that synced
      -- after the backup were no longer told. The end is where that mark moved the count to.
      UPDATE datasets SET restored_to_sync_count = restored_from_sync_count + 1000000 WHERE restored_from_sync_count > 0 AND restored_to_sync_count = 0;
    `,
  },
  {
    version: 10,
    name: 'bounded tombstones',
    sql: `
      -- A dataset's tombstones, oldest first, without reading its live records (core/tombstones.ts).
      CREATE INDEX records_tombstones ON records (dataset_id, sync_count) WHERE value IS NULL;
      -- How many it holds and the UTF-8 bytes of their keys, kept by every write; and the SyncCount through which the
      -- oldest were dropped (0 if never). A dataset past the bounds drops its oldest at its next write that removes a
      -- record.
      ALTER TABLE datasets ADD COLUMN tombstones INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE datasets ADD COLUMN tombstone_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE datasets ADD COLUMN tombstones_dropped_through INTEGER NOT NULL DEFAULT 0;
      UPDATE datasets SET
        tombstones = (SELECT count(*) FROM records r WHERE r.dataset_id = datasets.dataset_id AND r.value IS NULL),
        tombstone_bytes = (SELECT coalesce(sum(length(CAST(r.key AS BLOB))), 0) FROM records r WHERE r.dataset_id = datasets.dataset_id AND r.value IS NULL)
        WHERE live = 1;
    `,
  },
  {
    version: 11,
    name: 'stream payloads',
    sql: `
      -- The records of a change too large for one Kinesis record, served at its kinesisSyncRecordsURL (payloadType
      -- S3Url, as AWS did through S3) until it expires (outbox/stream-payloads.ts).
      -- One per outbox entry, however often its delivery is tried (outbox_id).
      CREATE TABLE stream_payloads (payload_id TEXT PRIMARY KEY, outbox_id INTEGER NOT NULL UNIQUE, body TEXT NOT NULL, expires_at INTEGER NOT NULL);
      CREATE INDEX stream_payloads_expiry ON stream_payloads (expires_at);
    `,
  },
];
