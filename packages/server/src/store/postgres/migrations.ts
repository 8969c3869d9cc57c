// Versioned PostgreSQL schema, applied under an advisory lock so that processes starting together
// migrate once. Text columns that order pages use COLLATE "C" (byte order, like SQLite's BINARY).
export interface PostgresMigration {
  version: number;
  name: string;
  sql: string;
}

export const postgresMigrations: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );

      CREATE TABLE identity_pools (
        identity_pool_id TEXT COLLATE "C" PRIMARY KEY,
        identity_pool_name TEXT NOT NULL,
        description TEXT NOT NULL,
        push_sync TEXT,
        cognito_streams TEXT,
        cognito_events TEXT NOT NULL DEFAULT '{}',
        bulk_publish TEXT NOT NULL DEFAULT '{"status":"NOT_STARTED"}',
        roles TEXT,
        creation_date BIGINT NOT NULL,
        last_modified_date BIGINT NOT NULL
      );

      CREATE TABLE datasets (
        dataset_id BIGSERIAL PRIMARY KEY,
        identity_pool_id TEXT COLLATE "C" NOT NULL,
        identity_id TEXT COLLATE "C" NOT NULL,
        dataset_name TEXT COLLATE "C" NOT NULL,
        live BOOLEAN NOT NULL,
        creation_date BIGINT NOT NULL,
        last_modified_date BIGINT NOT NULL,
        last_modified_by TEXT NOT NULL,
        sync_count BIGINT NOT NULL,
        data_storage BIGINT NOT NULL,
        num_records BIGINT NOT NULL,
        deleted_at_sync_count BIGINT NOT NULL DEFAULT 0,
        sync_sessions_count BIGINT NOT NULL DEFAULT 0,
        merged_base_name TEXT COLLATE "C",
        UNIQUE (identity_pool_id, identity_id, dataset_name)
      );
      CREATE INDEX datasets_by_identity ON datasets (identity_id);

      CREATE TABLE records (
        dataset_id BIGINT NOT NULL REFERENCES datasets (dataset_id) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL,
        value TEXT,
        sync_count BIGINT NOT NULL,
        last_modified_date BIGINT NOT NULL,
        last_modified_by TEXT NOT NULL,
        device_last_modified_date BIGINT NOT NULL,
        PRIMARY KEY (dataset_id, key)
      );
      CREATE INDEX records_by_sync_count ON records (dataset_id, sync_count, key);

      CREATE TABLE devices (
        identity_pool_id TEXT COLLATE "C" NOT NULL,
        identity_id TEXT COLLATE "C" NOT NULL,
        device_id TEXT COLLATE "C" NOT NULL,
        platform TEXT NOT NULL,
        token TEXT NOT NULL,
        creation_date BIGINT NOT NULL,
        PRIMARY KEY (identity_pool_id, identity_id, device_id),
        UNIQUE (identity_pool_id, identity_id, platform, token)
      );
      CREATE INDEX devices_by_identity ON devices (identity_id);

      CREATE TABLE subscriptions (
        identity_pool_id TEXT COLLATE "C" NOT NULL,
        identity_id TEXT COLLATE "C" NOT NULL,
        dataset_name TEXT COLLATE "C" NOT NULL,
        device_id TEXT COLLATE "C" NOT NULL,
        creation_date BIGINT NOT NULL,
        PRIMARY KEY (identity_pool_id, identity_id, dataset_name, device_id)
      );
      CREATE INDEX subscriptions_by_identity ON subscriptions (identity_id);

      CREATE TABLE identities (
        identity_id TEXT COLLATE "C" PRIMARY KEY,
        identity_pool_id TEXT COLLATE "C" NOT NULL,
        creation_date BIGINT NOT NULL,
        last_modified_date BIGINT NOT NULL
      );
      CREATE INDEX identities_by_pool ON identities (identity_pool_id, identity_id);

      CREATE TABLE identity_logins (
        identity_pool_id TEXT COLLATE "C" NOT NULL,
        provider_name TEXT COLLATE "C" NOT NULL,
        user_identifier TEXT COLLATE "C" NOT NULL,
        identity_id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (identity_pool_id, provider_name, user_identifier)
      );
      CREATE INDEX identity_logins_by_identity ON identity_logins (identity_id);

      CREATE TABLE issued_credentials (
        access_key_id TEXT PRIMARY KEY,
        identity_pool_id TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        expiration BIGINT NOT NULL
      );
      CREATE INDEX issued_credentials_by_identity ON issued_credentials (identity_id, expiration);
      CREATE INDEX issued_credentials_by_pool ON issued_credentials (identity_pool_id);
    `,
  },
  {
    version: 2,
    name: 'transactional outbox',
    sql: `
      CREATE TABLE outbox (
        outbox_id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        partition_key TEXT COLLATE "C" NOT NULL,
        payload TEXT NOT NULL,
        bulk_pool_id TEXT,
        created_at BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        last_error TEXT,
        claimed_by TEXT,
        claimed_until BIGINT
      );
      CREATE INDEX outbox_by_partition ON outbox (partition_key, outbox_id);
      CREATE INDEX outbox_by_bulk_pool ON outbox (bulk_pool_id) WHERE bulk_pool_id IS NOT NULL;
    `,
  },
  {
    version: 3,
    name: 'inaccessible identities',
    sql: `
      -- As SQLite's migration 5: an identity whose last login was unlinked.
      ALTER TABLE identities ADD COLUMN inaccessible BOOLEAN NOT NULL DEFAULT false;
    `,
  },
  {
    version: 4,
    name: 'restore marks',
    sql: `
      -- As SQLite's migration 6.
      ALTER TABLE datasets ADD COLUMN restored_from_sync_count BIGINT NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 5,
    name: 'restore spans and token cut-off',
    sql: `
      -- As SQLite's migration 7 (IF NOT EXISTS: a build of 2026-12-07, 4c6469e, added the column in migration 4).
      ALTER TABLE datasets ADD COLUMN IF NOT EXISTS restored_to_sync_count BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE identities ADD COLUMN tokens_not_before BIGINT NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 6,
    name: 'logins and credentials only of existing identities',
    sql: `
      -- A login linked, or credentials issued, while DeleteIdentities removed the identity outlived it: the
      -- credentials still signed requests, and the login's user could never sign in again (a 500). The keys make
      -- such a write fail (ResourceNotFoundException) or go with the identity. Orphans left by the race go first, with
      -- the tables locked against writers first (older processes still serving during a rolling upgrade could
      -- otherwise add an orphan between the DELETE and the check, or deadlock on the lock the ALTER upgrades to).
      LOCK TABLE identities, identity_logins, issued_credentials IN SHARE ROW EXCLUSIVE MODE;
      DELETE FROM identity_logins l WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.identity_id = l.identity_id);
      DELETE FROM issued_credentials c WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.identity_id = c.identity_id);
      ALTER TABLE identity_logins ADD CONSTRAINT identity_logins_identity FOREIGN KEY (identity_id) REFERENCES identities (identity_id) ON DELETE CASCADE;
      ALTER TABLE issued_credentials ADD CONSTRAINT issued_credentials_identity FOREIGN KEY (identity_id) REFERENCES identities (identity_id) ON DELETE CASCADE;
    `,
  },
  {
    version: 7,
    name: 'restore spans of the first restore marks',
    sql: `
      -- As SQLite's migration 9.
      UPDATE datasets SET restored_to_sync_count = restored_from_sync_count + 1000000 WHERE restored_from_sync_count > 0 AND restored_to_sync_count = 0;
    `,
  },
  {
    version: 8,
    name: 'identities only of existing pools',
    sql: `
      -- An identity created while DeleteIdentityPool removed its pool outlived it (with its logins), unreachable. The key
      -- makes such a creation fail (ResourceNotFoundException); SQLite checks in the write. Orphans go first, their
      -- logins and credentials with them (migration 6's keys). Locked first, as in migration 6.
      LOCK TABLE identity_pools, identities, identity_logins, issued_credentials IN SHARE ROW EXCLUSIVE MODE;
      DELETE FROM identities i WHERE NOT EXISTS (SELECT 1 FROM identity_pools p WHERE p.identity_pool_id = i.identity_pool_id);
      ALTER TABLE identities ADD CONSTRAINT identities_pool FOREIGN KEY (identity_pool_id) REFERENCES identity_pools (identity_pool_id) ON DELETE CASCADE;
    `,
  },
  {
    version: 9,
    name: 'bounded tombstones',
    sql: `
      -- As SQLite's migration 10.
      CREATE INDEX records_tombstones ON records (dataset_id, sync_count) WHERE value IS NULL;
      ALTER TABLE datasets ADD COLUMN tombstones BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE datasets ADD COLUMN tombstone_bytes BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE datasets ADD COLUMN tombstones_dropped_through BIGINT NOT NULL DEFAULT 0;
      UPDATE datasets d SET tombstones = t.n, tombstone_bytes = t.bytes
        FROM (SELECT dataset_id, count(*) AS n, sum(octet_length(key)) AS bytes FROM records WHERE value IS NULL GROUP BY dataset_id) t
        WHERE d.dataset_id = t.dataset_id AND d.live;
    `,
  },
  {
    version: 10,
    name: 'stream payloads',
    sql: `
      -- As SQLite's migration 11.
      CREATE TABLE stream_payloads (payload_id TEXT COLLATE "C" PRIMARY KEY, outbox_id BIGINT NOT NULL UNIQUE, body TEXT NOT NULL, expires_at BIGINT NOT NULL);
      CREATE INDEX stream_payloads_expiry ON stream_payloads (expires_at);
    `,
  },
];
