// The scale-out store: PostgreSQL through a bounded `pg` pool, for several stateless cognisync processes
// on one database. Round trips dominate its cost (each one a loopback send that wakes a backend on the same
// cores), so hot operations are one statement each where one statement can do it: a single statement is atomic
// and sees one snapshot, needing neither BEGIN/COMMIT nor REPEATABLE READ. Every statement is a named prepared one.
// The credentials lookup and UpdateRecords' optimistic read, which every such request makes, are sent for all the
// requests of one turn of the event loop at once (BATCHED).
// Concurrency rules:
// - Records are written only by whoever holds their dataset's row lock (UPDATE or FOR UPDATE on `datasets`).
// - UpdateRecords on a live dataset is optimistic: it reads without locks, then writes dataset row, records and outbox
//   in one statement whose UPDATE compares the dataset's SyncCount with the one read (the count rises with every
//   write, so an unchanged count means unchanged records); a loser reads again.
// - Change events are sent right after the commit, not inside the writing transaction (see ChangeNotifier).
// - Whatever changes how many live datasets an identity has, or renames them (creating or reviving a dataset,
//   merging, deleting the identity), first takes a transaction-scoped advisory lock on (pool, identity), so the
//   dataset-count limit is decided on a stable count; different identities never wait for each other.
import DataLoader from 'dataloader';
import pg from 'pg';
import { mergedDatasetNames } from '../../core/merged-datasets.js';
import { changedSinceRead, providerClash } from '../../core/provider-rule.js';
import { refuseNewerSchema } from '../schema-version.js';
import { applyRecordPatches, deletedSyncCount, textLength } from '../../core/record-patches.js';
import { RESTORE_SYNC_COUNT_GAP, RESTORED_SETTING } from '../../core/restore.js';
import { tombstoneCut, type TombstoneDrop } from '../../core/tombstones.js';
import { bulkPublishJob, pushEntries, streamEntries } from '../../outbox/entries.js';
import type { BulkPublishState } from '../../core/bulk-publish.js';
import { InternalErrorException, LimitExceededException, ResourceConflictException, ResourceNotFoundException, ServiceError, TooManyRequestsException } from '../../errors.js';
import type {
  ChangeEvent, ClaimedOutboxEntry, DatasetKey, DatasetRecord, DeviceRecord, OutboxBacklog, OutboxEntry, PushTarget, StreamTarget, IdentityPoolRecord, IdentityPoolUsage, IdentityRecord, IdentityUsage, IssuedCredentials, IssuedCredentialsRecord, Login,
  LinkExpectation, LinkRefusal, LoginOwnedElsewhere, ProviderRule, PoolRoles, PoolSyncSettings, RecordCursor, RecordsPage, Store, StoredRecord, UpdateRecordsRequest, UpdateRecordsResult,
} from '../store.js';
import { deviceNotRegistered, EXPIRED_CREDENTIALS_RETENTION_MS, revokedWhileWriting, type RestoredSpan } from '../store.js';
import { postgresMigrations } from './migrations.js';
import { postgresRefusesWrites, WRITE_PROBE_SETTING, WriteHealth, writeProbeValue } from '../write-health.js';
import { toDataset, toIssuedCredentials, toPool, toRecord, toSettings, type DatasetRow, type IssuedCredentialsRow, type PoolRow, type RecordRow } from '../rows.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Most connections this process opens (default 10). */
  maxConnections?: number;
  /** Schema to use instead of the connection's default (tests use one per run). */
  schema?: string;
  /**
   * How long a statement may go unanswered before it fails and its connection is dropped (default 60 s; 0: no limit).
   * Migrations and marking a restore take as long as they need.
   */
  queryTimeoutMs?: number;
  /**
   * Called when an idle pooled connection fails (the pool replaces it), and when work after a committed write fails
   * (a change notification, the bound on a dataset's tombstones): the request still succeeds.
   */
  onBackgroundError?: (error: Error) => void;
  /** Called when migrate() finds the database restored or copied since a cognisync last opened it, and marks it. */
  onMarkedRestored?: (note: string) => void;
}

type Queryable = pg.Pool | pg.PoolClient;

const BIGINT_OID = 20;
// Counters and epoch-ms times fit a double exactly; the driver would hand them over as strings.
const parseBigint = (value: string) => Number(value);
const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === BIGINT_OID ? parseBigint : pg.types.getTypeParser(oid, format as 'text')) };

/** Lock key for the advisory lock that serializes one identity's writers. */
const identityLockKey = (identityPoolId: string, identityId: string) => `${identityPoolId}/${identityId}`;
const MIGRATION_LOCK = 'cognisync:migrations';
/**
 * A statement with its own read timeout in place of the pool's query_timeout, which pg reads per query too (its
 * types leave it out). Without `timeoutMs`: statements that may run long on a large database (migrations, marking a
 * restore), as long as they need.
 */
function withReadTimeout(text: string, values: unknown[] = [], timeoutMs = 2 ** 31 - 1): pg.QueryConfig {
  return { text, values, query_timeout: timeoutMs } as pg.QueryConfig;
}
/**
 * TCP keepalive on every connection, first probe after this long idle: a connection whose other end vanished (a
 * partition, a failover that leaves old connections silent) is noticed by the kernel instead of being kept forever.
 */
const KEEPALIVE_DELAY_MS = 10_000;
/** How often the LISTEN connection, which otherwise only receives, asks the database for an answer. */
const LISTEN_PROBE_MS = 15_000;
/** How long closing waits for the database to see its connections end before it cuts them. */
const CLOSE_WAIT_MS = 2000;

/** Resolves true once `promise` settles, false after CLOSE_WAIT_MS if it has not. */
async function settlesInTime(promise: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_WAIT_MS)));
  const settled = await Promise.race([promise.then(() => true, () => true), late]);
  clearTimeout(timer);
  return settled;
}

/**
 * Ends a connection: a polite end waits for the database to close its side, which one gone silent never does, and a
 * stop (SIGTERM) would wait with it. After CLOSE_WAIT_MS the socket is cut.
 */
async function endConnection(client: pg.Client): Promise<void> {
  if (!(await settlesInTime(client.end()))) client.connection.stream.destroy();
}
/** The settings entry holding the database's origin when a process last opened it (see markIfRestored). */
const DATABASE_ORIGIN_SETTING = 'database-origin';
/** NOTIFY channel of committed changes, heard by every process's LISTEN connection. */
const CHANGES_CHANNEL = 'cognisync_changes';

const DEVICE_COLUMNS = 'identity_pool_id AS "identityPoolId", identity_id AS "identityId", device_id AS "deviceId", platform, token, creation_date AS "creationDate"';
const RECORD_COLUMNS = 'key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date';
// Named columns, never `*`: a prepared statement's result shape must not change under it when a migration adds a column.
const POOL_COLUMNS = 'identity_pool_id, identity_pool_name, description, push_sync, cognito_streams, cognito_events, bulk_publish, creation_date, last_modified_date';
const DATASET_COLUMNS =
  'dataset_id, identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, deleted_at_sync_count, restored_from_sync_count, restored_to_sync_count, tombstones, tombstone_bytes, tombstones_dropped_through';

const statementNames = new Map<string, string>();

/**
 * Every statement runs as a named prepared statement, its name fixed by its text: each pooled connection parses
 * and plans it once, and later executions send only Bind/Execute. (The texts are a fixed set: no SQL is built
 * from request data.)
 */
function run<R extends pg.QueryResultRow = pg.QueryResultRow>(on: Queryable, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `cognisync_${statementNames.size + 1}`));
  return on.query<R>({ name, text, values });
}

/** Outbox entries as the four parallel arrays the statements below unnest (in order, so ids follow it). */
const outboxColumns = (entries: readonly OutboxEntry[]) => [
  entries.map((e) => e.kind),
  entries.map((e) => e.partitionKey),
  entries.map((e) => JSON.stringify(e.payload)),
  entries.map((e) => e.bulkPoolId ?? null),
];

/** Records as the six parallel arrays the statements below unnest (key, value, SyncCount, dates, modified by). */
const recordColumns = (records: readonly StoredRecord[]) => [
  records.map((r) => r.key),
  records.map((r) => r.value),
  records.map((r) => r.syncCount),
  records.map((r) => r.lastModifiedDate),
  records.map((r) => r.lastModifiedBy),
  records.map((r) => r.deviceLastModifiedDate),
];

/** CTE `queued`: the outbox entries in parameters $first..$first+3 (outboxColumns), once per row of CTE `dataset`. */
const queueOutbox = (first: number, createdAt: string) => `queued AS (
  INSERT INTO outbox (kind, partition_key, payload, bulk_pool_id, created_at, next_attempt_at)
  SELECT e.kind, e.partition_key, e.payload, e.bulk_pool_id, ${createdAt}, ${createdAt}
  FROM dataset, unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::text[]) WITH ORDINALITY AS e (kind, partition_key, payload, bulk_pool_id, n)
  ORDER BY e.n)`;

/** UpdateRecords tries this many lock-free read-and-compare-and-set rounds before it queues behind the identity's lock. */
const OPTIMISTIC_ATTEMPTS = 3;

/**
 * For each of several UpdateRecords at once (request n: pool $1[n], identity $2[n], dataset $3[n], patched keys as a
 * JSON array $4[n]), from one snapshot: the dataset row, with the current version of each patched key (one row per
 * key, its record columns null when it has none; one row with them null when no key is patched). No row for a
 * request whose dataset does not exist. The LIMIT 1 keeps each key a lookup of the (dataset, key) index: planned as
 * a join, the batch read each dataset's whole record set.
 */
const READ_FOR_WRITE = `SELECT q.n, d.dataset_id, d.live, d.creation_date, d.sync_count, d.data_storage, d.num_records, d.deleted_at_sync_count, d.restored_from_sync_count, d.restored_to_sync_count, d.tombstones, d.tombstone_bytes,
  d.tombstones_dropped_through,
  r.key, r.value, r.sync_count AS record_sync_count, r.last_modified_date AS record_last_modified_date, r.last_modified_by AS record_last_modified_by, r.device_last_modified_date
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS q (pool, identity, name, keys, n)
  JOIN datasets d ON d.identity_pool_id = q.pool AND d.identity_id = q.identity AND d.dataset_name = q.name
  LEFT JOIN LATERAL json_array_elements_text(q.keys::json) AS w (key) ON true
  LEFT JOIN LATERAL (SELECT ${RECORD_COLUMNS} FROM records r WHERE r.dataset_id = d.dataset_id AND r.key = w.key LIMIT 1) r ON true`;

/**
 * Under the identity's lock: the dataset row, locked (one null row when there is none), and how many other live
 * datasets the identity has. A separate statement from the lock, so its snapshot sees what earlier holders committed.
 */
const LOCK_DATASET = `WITH target AS (
    SELECT dataset_id, live, creation_date, sync_count, data_storage, num_records, deleted_at_sync_count, restored_from_sync_count, restored_to_sync_count, tombstones, tombstone_bytes,
    tombstones_dropped_through FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 FOR UPDATE)
  SELECT target.*, (SELECT count(*)::int FROM datasets o WHERE o.identity_pool_id = $1 AND o.identity_id = $2 AND o.live AND o.dataset_name <> $3) AS other_live
  FROM (VALUES (1)) AS one (x) LEFT JOIN target ON true`;

/**
 * The rest of a dataset's first write after CTE `dataset` (the dataset row inserted): insert the records ($10–$15)
 * and queue the outbox entries ($16–$19).
 */
/**
 * The pool ($1) still exists, its row held (FOR KEY SHARE) until the statement's transaction ends: a write that creates
 * rows of a pool waits for a DeleteIdentityPool in progress (which locks the row FOR UPDATE first) and then finds it
 * gone, or the deletion waits for it and then deletes what it wrote. Without it, datasets, records and devices created
 * while the pool was being deleted outlived it, out of reach (QA: 10 rounds of 10).
 */
const POOL_STILL_THERE = 'EXISTS (SELECT 1 FROM identity_pools WHERE identity_pool_id = $1 FOR KEY SHARE)';

const WRITE_RECORDS = `, written AS (
    INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
    SELECT dataset.dataset_id, r.* FROM dataset, unnest($10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::text[], $15::bigint[]) AS r
    ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count, last_modified_date = excluded.last_modified_date,
    last_modified_by = excluded.last_modified_by, device_last_modified_date = excluded.device_last_modified_date),
  ${queueOutbox(16, '$4')}
  SELECT dataset_id FROM dataset`;

/**
 * The writes of several UpdateRecords on live datasets in one statement (one round trip, one commit): update n is
 * parameter element n of $1–$15, its records are the elements of $16–$22 whose $16 is n, its outbox entries those of
 * $23–$27 whose $23 is n (queued in array order, so ids follow it). Each update is a compare-and-set on its dataset
 * row: still the row read ($4), under the same key ($1–$3), as live as read ($5), at the SyncCount read ($6), with
 * its tombstones dropped through the count read ($15). Every committed write raises the SyncCount, DeleteDataset clears
 * `live`, and dropping tombstones raises that count, so an unchanged row means unchanged records.
 * An update whose row changed writes nothing, records and outbox included, and the others still commit. Returns
 * the n of each update that took effect. A concurrent writer's UPDATE waits for this one's row lock, then re-checks.
 */
const UPDATE_DATASETS_AND_RECORDS = `WITH q AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bool[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
      $13::bigint[], $14::bigint[], $15::bigint[])
      WITH ORDINALITY AS q (pool, identity, name, dataset_id, was_live, was_sync_count, now, modified_by, sync_count, data_storage, num_records, creation_date,
        tombstones, tombstone_bytes, was_dropped_through, n)),
  dataset AS (
    UPDATE datasets d SET live = true, creation_date = q.creation_date, last_modified_date = q.now, last_modified_by = q.modified_by, sync_count = q.sync_count,
    data_storage = q.data_storage, num_records = q.num_records, tombstones = q.tombstones, tombstone_bytes = q.tombstone_bytes,
    sync_sessions_count = d.sync_sessions_count + 1
    FROM q WHERE d.dataset_id = q.dataset_id AND d.identity_pool_id = q.pool AND d.identity_id = q.identity AND d.dataset_name = q.name
    AND d.live = q.was_live AND d.sync_count = q.was_sync_count AND d.tombstones_dropped_through = q.was_dropped_through
    RETURNING d.dataset_id, q.n, q.now),
  written AS (
    INSERT INTO records (dataset_id, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
    SELECT dataset.dataset_id, r.key, r.value, r.sync_count, r.last_modified_date, r.last_modified_by, r.device_last_modified_date
    FROM unnest($16::bigint[], $17::text[], $18::text[], $19::bigint[], $20::bigint[], $21::text[], $22::bigint[])
      AS r (n, key, value, sync_count, last_modified_date, last_modified_by, device_last_modified_date)
    JOIN dataset ON dataset.n = r.n
    ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value, sync_count = excluded.sync_count, last_modified_date = excluded.last_modified_date,
    last_modified_by = excluded.last_modified_by, device_last_modified_date = excluded.device_last_modified_date),
  queued AS (
    INSERT INTO outbox (kind, partition_key, payload, bulk_pool_id, created_at, next_attempt_at)
    SELECT e.kind, e.partition_key, e.payload, e.bulk_pool_id, dataset.now, dataset.now
    FROM unnest($23::bigint[], $24::text[], $25::text[], $26::text[], $27::text[]) WITH ORDINALITY AS e (n, kind, partition_key, payload, bulk_pool_id, position)
    JOIN dataset ON dataset.n = e.n
    ORDER BY e.position)
  SELECT n FROM dataset`;

/**
 * A dataset's first write (only under the identity's lock, so no one else creates it meanwhile). It takes the count
 * one past where a dataset created now starts (0, or the restore mark: core/restore.ts), so that start is $6 - 1.
 */
const INSERT_DATASET_AND_RECORDS = `WITH dataset AS (
    INSERT INTO datasets (identity_pool_id, identity_id, dataset_name, live, creation_date, last_modified_date, last_modified_by, sync_count, data_storage, num_records, sync_sessions_count, restored_to_sync_count)
    SELECT $1, $2, $3, true, $9, $4, $5, $6, $7, $8, 1, $6::bigint - 1 WHERE ${POOL_STILL_THERE} RETURNING dataset_id)${WRITE_RECORDS}`;

/** DeleteDataset after locking the row ($1): records, dataset state (its new SyncCount $3) and outbox ($4–$7) at once. */
const DELETE_DATASET = `WITH removed AS (DELETE FROM records WHERE dataset_id = $1),
  dataset AS (
    UPDATE datasets SET live = false, sync_count = $3, deleted_at_sync_count = $3, data_storage = 0, num_records = 0, tombstones = 0, tombstone_bytes = 0,
    last_modified_date = $2 WHERE dataset_id = $1
    RETURNING dataset_id),
  ${queueOutbox(4, '$2')}
  SELECT dataset_id FROM dataset`;

/** A dataset's ($1) tombstones older than SyncCount $2, from the oldest, each its SyncCount and key bytes (core/tombstones.ts). */
const TOMBSTONES_OLDEST_FIRST = 'SELECT sync_count, octet_length(key) AS bytes FROM records WHERE dataset_id = $1 AND value IS NULL AND sync_count < $2 ORDER BY sync_count';

/**
 * Drops a dataset's ($1) tombstones through SyncCount $2 (under the dataset's row lock: a write that stamped one of
 * them anew meanwhile keeps it, since the DELETE checks the row's new version), then counts what is left and
 * remembers the count dropped through (COUNT_TOMBSTONES_DROPPED, a statement of its own so that it sees the DELETE).
 * Counted again rather than decremented: counts that drifted (a process of an earlier build writing during a rolling
 * upgrade does not keep them) are right again after each drop. Concurrent compare-and-set writes that read the dataset
 * before fail and read again (the count dropped through is part of their compare), so the counts stay exact.
 */
const DROP_TOMBSTONES = 'DELETE FROM records WHERE dataset_id = $1 AND value IS NULL AND sync_count <= $2';
const COUNT_TOMBSTONES_DROPPED = `UPDATE datasets SET tombstones = (SELECT count(*) FROM records WHERE dataset_id = $1 AND value IS NULL),
  tombstone_bytes = (SELECT coalesce(sum(octet_length(key)), 0) FROM records WHERE dataset_id = $1 AND value IS NULL),
  tombstones_dropped_through = GREATEST(tombstones_dropped_through, $2) WHERE dataset_id = $1`;

const D_DATASET_COLUMNS = DATASET_COLUMNS.split(', ').map((column) => `d.${column}`).join(', ');

/**
 * ListRecords' page in one statement: always one row, the dataset's columns null when it has none; the merged
 * dataset names; the page ($7 rows at most) as JSON arrays in (SyncCount, key) order, null when empty.
 */
const LIST_RECORDS = `SELECT ${D_DATASET_COLUMNS},
  (SELECT array_agg(m.dataset_name ORDER BY m.dataset_name) FROM datasets m WHERE m.identity_pool_id = $1 AND m.identity_id = $2 AND m.merged_base_name = $3 AND m.live)
    AS merged_dataset_names,
  (SELECT json_agg(json_build_array(r.key, r.value, r.sync_count, r.last_modified_date, r.last_modified_by, r.device_last_modified_date) ORDER BY r.sync_count, r.key)
    FROM (SELECT ${RECORD_COLUMNS} FROM records WHERE dataset_id = d.dataset_id AND d.live AND sync_count > $4 AND (sync_count, key) > ($5, $6::text COLLATE "C")
      ORDER BY sync_count, key LIMIT $7) r) AS records
  FROM (VALUES (1)) AS one (x) LEFT JOIN datasets d ON d.identity_pool_id = $1 AND d.identity_id = $2 AND d.dataset_name = $3`;

interface DatasetVersionRow {
  dataset_id: number;
  live: boolean;
  creation_date: number;
  sync_count: number;
  data_storage: number;
  num_records: number;
  deleted_at_sync_count: number;
  restored_from_sync_count: number;
  restored_to_sync_count: number;
  tombstones: number;
  tombstone_bytes: number;
  tombstones_dropped_through: number;
}

/** The dataset state an UpdateRecords write starts from (and compares against). */
interface DatasetVersion {
  datasetId: number;
  live: boolean;
  creationDate: number;
  syncCount: number;
  dataStorage: number;
  numRecords: number;
  deletedAtSyncCount: number;
  restored: RestoredSpan;
  tombstones: number;
  tombstoneBytes: number;
  tombstonesDroppedThrough: number;
}

const datasetVersion = (row: DatasetVersionRow): DatasetVersion => ({
  datasetId: row.dataset_id,
  live: row.live,
  creationDate: row.creation_date,
  syncCount: row.sync_count,
  dataStorage: row.data_storage,
  numRecords: row.num_records,
  deletedAtSyncCount: row.deleted_at_sync_count,
  restored: { from: row.restored_from_sync_count, to: row.restored_to_sync_count },
  tombstones: row.tombstones,
  tombstoneBytes: row.tombstone_bytes,
  tombstonesDroppedThrough: row.tombstones_dropped_through,
});

interface ReadForWriteRow extends DatasetVersionRow {
  key: string | null;
  value: string | null;
  record_sync_count: number;
  record_last_modified_date: number;
  record_last_modified_by: string;
  device_last_modified_date: number;
}

type LockedDatasetRow = { [K in keyof DatasetVersionRow]: DatasetVersionRow[K] | null } & { other_live: number };

type ListRecordsRow = { [K in keyof DatasetRow]: DatasetRow[K] | null } & {
  merged_dataset_names: string[] | null;
  records: Array<[key: string, value: string | null, syncCount: number, lastModifiedDate: number, lastModifiedBy: string, deviceLastModifiedDate: number]> | null;
};

const POOL_USAGE_COLUMNS =
  'sum(sync_sessions_count)::bigint AS sessions, sum(CASE WHEN live THEN data_storage ELSE 0 END)::bigint AS bytes, max(last_modified_date) AS last';

interface PoolUsageRow {
  sessions: number | null;
  bytes: number | null;
  last: number | null;
}

const toPoolUsage = (identityPoolId: string, usage: PoolUsageRow): IdentityPoolUsage => ({
  identityPoolId,
  syncSessionsCount: usage.sessions ?? 0,
  dataStorage: usage.bytes ?? 0,
  lastModifiedDate: usage.last ?? undefined,
});

/** An identity with its logins (one statement, so one snapshot), from `identities i`. */
const IDENTITY_COLUMNS = `i.identity_id, i.identity_pool_id, i.creation_date, i.last_modified_date, i.inaccessible, i.tokens_not_before,
  (SELECT json_agg(json_build_array(l.provider_name, l.user_identifier) ORDER BY l.provider_name, l.user_identifier) FROM identity_logins l WHERE l.identity_id = i.identity_id) AS logins`;

interface IdentityRow {
  identity_id: string;
  identity_pool_id: string;
  creation_date: number;
  last_modified_date: number;
  inaccessible: boolean;
  tokens_not_before: number;
  logins: Array<[providerName: string, userIdentifier: string]> | null;
}

const toIdentity = (row: IdentityRow): IdentityRecord => ({
  identityId: row.identity_id,
  identityPoolId: row.identity_pool_id,
  creationDate: row.creation_date,
  lastModifiedDate: row.last_modified_date,
  logins: (row.logins ?? []).map(([providerName, userIdentifier]) => ({ providerName, userIdentifier })),
  ...(row.inaccessible ? { inaccessible: true } : {}),
  ...(row.tokens_not_before ? { tokensNotBefore: row.tokens_not_before } : {}),
});

/** After a link, or a merge that may bring logins: an identity with a login is accessible. */
const TOUCH_LINKED_IDENTITY = `UPDATE identities i SET last_modified_date = $1,
  inaccessible = i.inaccessible AND NOT EXISTS (SELECT 1 FROM identity_logins l WHERE l.identity_id = i.identity_id) WHERE i.identity_id = $2`;
/** After an unlink: inaccessible once no login is left, its Cognito tokens so far void. */
const TOUCH_UNLINKED_IDENTITY = `UPDATE identities i SET last_modified_date = $1,
  inaccessible = NOT EXISTS (SELECT 1 FROM identity_logins l WHERE l.identity_id = i.identity_id),
  tokens_not_before = CASE WHEN EXISTS (SELECT 1 FROM identity_logins l WHERE l.identity_id = i.identity_id) THEN i.tokens_not_before ELSE $1 END
  WHERE i.identity_id = $2 RETURNING i.inaccessible`;

/** See Store.markRestored (as SQLite's), with the settings entry new datasets start from. */
const MARK_RESTORED = `WITH mark AS (
    INSERT INTO settings (name, value) VALUES ($3, $2::bigint::text) ON CONFLICT (name) DO UPDATE SET value = excluded.value)
  UPDATE datasets SET
    restored_from_sync_count = CASE WHEN restored_to_sync_count > 0 THEN restored_from_sync_count ELSE sync_count END,
    restored_to_sync_count = GREATEST(sync_count + $1::bigint, $2::bigint),
    deleted_at_sync_count = CASE WHEN live THEN deleted_at_sync_count ELSE GREATEST(sync_count + $1::bigint, $2::bigint) END,
    sync_count = GREATEST(sync_count + $1::bigint, $2::bigint)
  RETURNING dataset_id`;

/**
 * Where the database's contents come from: the cluster (its system identifier), the cluster's timeline (the first 8
 * hex digits of the current WAL file's name), the database's oid and the settings table's. A restore changes it:
 * pg_restore into a new database (a new database oid) or over the old one with --clean (new tables), a
 * point-in-time recovery from an archive or a promoted replica (a new timeline), a new cluster (pg_upgrade: a new
 * system identifier); so does a copy (CREATE DATABASE … TEMPLATE). Restarts, renames and VACUUM FULL do not, and
 * neither does a base backup or a disk snapshot put back and started without archive recovery: it carries the same
 * pg_control (identifier and timeline) and the same oids. Readable by any role; it fails on a standby (read-only,
 * where cognisync cannot run anyway).
 */
const DATABASE_ORIGIN = `SELECT concat_ws('/', s.system_identifier, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), d.oid, 'settings'::regclass::oid) AS origin
  FROM pg_control_system() s, pg_database d WHERE d.datname = current_database()`;

/** Sends the queued change events in order, one notification each, in one statement. */
const NOTIFY_CHANGES = 'SELECT pg_notify($1, e.payload) FROM unnest($2::text[]) WITH ORDINALITY AS e (payload, n) ORDER BY e.n';

/**
 * Announces committed changes (pg_notify) right after their commit, in the order they committed here, batching
 * whatever queues while a send is in flight into the next statement.
 *
 * Why not pg_notify inside the writing transaction, which would tie the event to the commit: PostgreSQL serializes
 * the commits of all transactions that notify on one database-wide lock, held through the commit's WAL flush. Under
 * load 9 of 10 pooled connections waited on it (wait event Lock/object), capping writes at one WAL flush at a time
 * (pgbench, 10 clients, one-row UPDATEs: 900–2,700 tps with pg_notify in the write, 5,000–10,000 without or with it
 * in a transaction of its own after the commit, on the 2-core VM of bench/README.md). A transaction
 * that only notifies writes nothing to flush, so it holds the lock briefly. The cost, which SQLite's in-process
 * emitter shares: a process killed between a commit and the send loses that event. Events are cues for listeners to
 * sync, which they also do when they (re)connect, so a lost cue delays a device and loses no data.
 */
class ChangeNotifier {
  private readonly queue: string[] = [];
  private sending: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly channel: string,
    private readonly onError: ((error: Error) => void) | undefined,
  ) {}

  publish(event: ChangeEvent): void {
    this.queue.push(JSON.stringify(event));
    this.sending ??= this.send();
  }

  /** Resolves once every event published so far has been sent (or has failed to be). */
  async flush(): Promise<void> {
    await this.sending;
  }

  private async send(): Promise<void> {
    while (this.queue.length > 0) {
      // PostgreSQL folds identical notifications of one transaction into one (an update and the deletion after it
      // can read the same), so a batch ends before a repeated payload.
      const seen = new Set<string>();
      let end = 0;
      while (end < this.queue.length && !seen.has(this.queue[end]!)) seen.add(this.queue[end++]!);
      const payloads = this.queue.splice(0, end);
      try {
        await run(this.pool, NOTIFY_CHANGES, [this.channel, payloads]);
      } catch (error) {
        this.onError?.(error as Error);
      }
    }
    this.sending = undefined;
  }
}

/** SQLSTATEs and driver failures that mean "busy, retry" vs "database unreachable". */
const BUSY_CODES = new Set(['40001', '40P01', '55P03', '53300', '57014']);
const UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/** pg's error for a statement unanswered within query_timeout. */
const isReadTimeout = (error: unknown) => error instanceof Error && error.message === 'Query read timeout';

/**
 * Whether PostgreSQL answered a statement with an error, so that nothing of it took effect: an SQLSTATE of its own,
 * but not one of a lost or closed connection (class 08) or a backend shut down (57P01-57P03), after which the statement
 * may or may not have committed. A read timeout, a broken socket or any other failure has no such answer.
 */
function refusedByDatabase(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08') && !UNAVAILABLE_CODES.has(code) && !isReadTimeout(error);
}

/** Store failures become AWS-shaped errors: busy → TooManyRequestsException, unreachable → InternalErrorException. */
/** Errors after which a migration step is run again: deadlock_detected, serialization_failure, lock_not_available. */
const MIGRATION_RETRY_CODES = new Set(['40P01', '40001', '55P03']);
const MIGRATION_ATTEMPTS = 5;

/** Thrown inside a transaction to roll it back: the identity holds a login beyond those the caller expected. */
class ChangedMeanwhile extends Error {}

/** Thrown inside a transaction to roll it back: a login it would link is a second user of this provider. */
class ProviderTaken extends Error {
  constructor(readonly providerName: string) {
    super(`provider ${providerName} has another user`);
  }
}

/** Thrown inside a transaction to roll it back: a login it would link belongs to this other identity. */
class LoginTaken extends Error {
  constructor(readonly ownedBy: string) {
    super(`login owned by ${ownedBy}`);
  }
}

/** The foreign keys that tie a login or issued credentials to their identity (migration 6). */
const IDENTITY_KEYS = new Set(['identity_logins_identity', 'issued_credentials_identity']);
/** SQLSTATE read_only_sql_transaction: a write in a read-only session. */
const READ_ONLY_TRANSACTION = '25006';
/** The foreign key that ties an identity to its pool (migration 8). */
const POOL_KEY = 'identities_pool';

function toServiceError(error: unknown): unknown {
  if (error instanceof ServiceError) return error;
  const code = (error as { code?: string }).code ?? '';
  // A login or credentials written for an identity deleted since the operation read it.
  const constraint = (error as { constraint?: string }).constraint ?? '';
  if (code === '23503' && IDENTITY_KEYS.has(constraint)) return new ResourceNotFoundException('The identity no longer exists.');
  if (code === '23503' && constraint === POOL_KEY) return new ResourceNotFoundException('The identity pool no longer exists.');
  const message = error instanceof Error ? error.message : String(error);
  if (BUSY_CODES.has(code) || /timeout exceeded when trying to connect/i.test(message)) {
    return new TooManyRequestsException('The data store is busy; retry the request.');
  }
  if (UNAVAILABLE_CODES.has(code) || isReadTimeout(error) || /Connection terminated|connection.*(closed|ended)|does not allow connections|not currently accepting connections/i.test(message)) {
    return new InternalErrorException('The data store is unavailable; retry the request.');
  }
  return error;
}

/**
 * Every connection plans each named statement once (plan_cache_mode=force_generic_plan, set at connection start: no
 * round trip). The statements are a fixed set of keyed lookups whose best plan never depends on the values bound,
 * but PostgreSQL's own choice re-plans a statement on every run when the generic plan's estimate looks dearer than
 * the custom ones: after ANALYZE, READ_FOR_WRITE's generic plan is costed for a 10-key array (90 against 17), so it
 * was planned again on every UpdateRecords (`perf`: planning was 19 % of the backends' CPU).
 */
const PLAN_ONCE = '-c plan_cache_mode=force_generic_plan';

/**
 * A URL's `options` parameter (libpq's `-c name=value` settings, such as the README's synchronous_commit) taken out of
 * it, so the pool can send them after cognisync's own: pg would otherwise let the URL's replace the pool's whole.
 * Later settings win, so an operator can still override cognisync's. Connection strings that are not URLs keep theirs.
 */
function splitOptions(connectionString: string): { connectionString: string; options: string | undefined } {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return { connectionString, options: undefined };
  }
  const options = url.searchParams.get('options');
  if (options === null) return { connectionString, options: undefined };
  url.searchParams.delete('options');
  return { connectionString: url.toString(), options };
}

/**
 * Reads that requests make at once go to the database as one statement: the batch is sent from setImmediate, after
 * every request that arrived in this turn of the event loop has asked. Nothing is cached (each read happens after
 * its request arrived), and a failed statement fails each read of its batch.
 */
const BATCHED = { cache: false, batchScheduleFn: (send: () => void) => setImmediate(send), maxBatchSize: 256 } as const;

/** One UpdateRecords' optimistic read: its dataset and the keys it patches. */
interface WriteRead {
  key: DatasetKey;
  keys: readonly string[];
}

/** One UpdateRecords' write of a live dataset, as UPDATE_DATASETS_AND_RECORDS takes it. */
interface DatasetUpdate {
  request: UpdateRecordsRequest;
  /** The dataset as read: the compare-and-set expects it unchanged. */
  found: DatasetVersion;
  dataset: { syncCount: number; dataStorage: number; numRecords: number; creationDate: number; tombstones: number; tombstoneBytes: number };
  records: readonly StoredRecord[];
  outbox: readonly OutboxEntry[];
}

/**
 * Writes whose records carry more than this many characters of keys and values go out alone, so a statement of
 * batched writes stays within about 64 × 64 K characters however large single writes are (a dataset holds up to 1 MB).
 */
const MAX_BATCHED_WRITE_LENGTH = 64 * 1024;
/** Most writes in one statement. */
const MAX_WRITES_PER_STATEMENT = 64;

export class PostgresStore implements Store {
  private readonly pool: pg.Pool;
  private readonly connectionString: string;
  /** NOTIFY channel of committed changes; one per schema, so test schemas sharing a database do not hear each other. */
  private readonly channel: string;
  private readonly notifier: ChangeNotifier;
  private readonly onMarkedRestored: ((note: string) => void) | undefined;
  /** The pool's open connections, to cut those that do not end when the store closes. */
  private readonly connections = new Set<pg.Client>();
  /**
   * The last UpdateRecords queued on each dataset in this process (settled, never rejecting), so that this
   * process's writers of one dataset take turns instead of racing: every write raises the dataset's SyncCount,
   * so racing optimistic writers of one dataset fail all but one of their compare-and-sets and read again.
   */
  private readonly datasetWrites = new Map<string, Promise<void>>();
  /**
   * UpdateRecords between their turn's start and their answer (not those waiting behind a write of the same dataset).
   * A write alone in here has nothing to share a statement with, so it goes straight out: a chain of writes to one
   * dataset (the hot-record race) would otherwise wait a turn of the event loop at every write.
   */
  private activeWrites = 0;
  /**
   * Credentials lookups, one statement per turn of the event loop (see BATCHED) instead of one round trip per
   * request. Nothing is cached: each lookup reads the database after its request arrived, so deleted or expired
   * credentials still stop working at once.
   */
  private readonly credentialsLookups = new DataLoader<string, IssuedCredentials | undefined>((keys) => this.readCredentials(keys), BATCHED);
  /** UpdateRecords' optimistic reads, batched the same way: each is still read after its request arrived. */
  private readonly writeReads = new DataLoader<WriteRead, ReadForWriteRow[]>((reads) => this.readForWrites(reads), BATCHED);
  /**
   * UpdateRecords' optimistic writes, batched the same way: the writes of one turn of the event loop go to the
   * database as one statement and commit together, each still a compare-and-set of its own dataset. Every write is
   * acknowledged only after that commit.
   */
  private readonly datasetUpdates = new DataLoader<DatasetUpdate, boolean>((updates) => this.updateDatasetsBatched(updates), {
    ...BATCHED,
    maxBatchSize: MAX_WRITES_PER_STATEMENT,
  });

  /** Whether writes still commit, for ping (see write-health.ts); its probe stores the time of the last one. */
  private readonly writeHealth = new WriteHealth(postgresRefusesWrites, () =>
    this.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [WRITE_PROBE_SETTING, writeProbeValue()]),
  );

  private readonly onBackgroundError: ((error: Error) => void) | undefined;

  constructor(options: PostgresStoreOptions) {
    this.connectionString = options.connectionString;
    this.onMarkedRestored = options.onMarkedRestored;
    const url = splitOptions(options.connectionString);
    this.pool = new pg.Pool({
      connectionString: url.connectionString,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      // A statement the database never answers (its connection silent: a partition, a frozen host) fails after
      // query_timeout instead of holding its request, and every request batched with it, until TCP gives up
      // (about 15 min); withClient then drops the connection. (Not a server-side statement_timeout: the server may
      // be the one that is gone.)
      query_timeout: options.queryTimeoutMs ?? 60_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      types,
      // PGOPTIONS, which pg reads only when the pool sets no options, counts as the URL's (as in libpq).
      options: [PLAN_ONCE, options.schema && `-c search_path=${options.schema}`, url.options ?? process.env.PGOPTIONS].filter(Boolean).join(' '),
    });
    // An idle connection that dies (database restart) must not crash the process; the pool reconnects.
    this.pool.on('error', (error) => options.onBackgroundError?.(error));
    // Nor one that dies between a query's end and its next checkout: the pool removes its own listener when it
    // hands a connection out, and withClient adds its own only after `await pool.connect()` resumes, so a
    // "terminating connection" arriving in between had no listener and crashed the process (node-postgres #2762).
    // The query in flight, if any, still fails with the error, and withClient discards the broken connection.
    this.pool.on('connect', (client) => {
      client.on('error', () => undefined);
      this.connections.add(client);
    });
    this.pool.on('remove', (client) => this.connections.delete(client));
    this.channel = options.schema ? `${CHANGES_CHANNEL}_${options.schema}` : CHANGES_CHANNEL;
    this.notifier = new ChangeNotifier(this.pool, this.channel, options.onBackgroundError);
    this.onBackgroundError = options.onBackgroundError;
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
    } catch (error) {
      // A statement that timed out may still be running on the connection, and the next would queue behind it. A session
      // that is read-only (opened while the database was, as after a failover) stays so for good: a new one may not be.
      if (isReadTimeout(error) || (error as { code?: string }).code === READ_ONLY_TRANSACTION) broken ??= error as Error;
      throw error;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** Runs `fn` on a pooled client inside a transaction; failures are mapped to AWS errors. */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      return await this.withClient(async (client) => {
        await client.query('BEGIN');
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
      throw this.failed(error);
    }
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], on: Queryable = this.pool): Promise<R[]> {
    try {
      return (await run<R>(on, sql, params)).rows;
    } catch (error) {
      throw this.failed(error);
    }
  }

  /** Under the identity's lock: ResourceNotFoundException if it was deleted or merged into another since it was read. */
  private async requireIdentityLocked(client: pg.PoolClient, identityId: string): Promise<void> {
    if ((await run(client, 'SELECT 1 FROM identities WHERE identity_id = $1', [identityId])).rowCount === 0) throw new ResourceNotFoundException('The identity no longer exists.');
  }

  private async lockIdentity(client: pg.PoolClient, identityPoolId: string, identityId: string): Promise<void> {
    await run(client, 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [identityLockKey(identityPoolId, identityId)]);
  }

  async migrate(): Promise<void> {
    await this.withClient(async (client) => {
      try {
        // Session-level lock: a second process starting now waits here, then finds nothing left to do.
        // No read timeout: another process may hold the lock for as long as its migrations or its mark take.
        await client.query(withReadTimeout('SELECT pg_advisory_lock(hashtextextended($1, 0))', [MIGRATION_LOCK]));
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
        const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
        refuseNewerSchema(applied, postgresMigrations);
        for (const migration of postgresMigrations) {
          if (applied.has(migration.version)) continue;
          for (let attempt = 1; ; attempt++) {
            await client.query('BEGIN');
            try {
              await client.query(withReadTimeout(migration.sql));
              await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
              await client.query('COMMIT');
              break;
            } catch (error) {
              await client.query('ROLLBACK');
              // Processes of an older build may still be serving (a rolling upgrade): a step that locks tables they
              // write can deadlock with them, and PostgreSQL cancels one side. The step rolled back whole; run it again.
              if (!MIGRATION_RETRY_CODES.has((error as { code?: string }).code ?? '') || attempt === MIGRATION_ATTEMPTS) throw error;
              await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
            }
          }
        }
        await this.markIfRestored(client);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [MIGRATION_LOCK]).catch(() => undefined);
      }
    });
  }

  /**
   * Marks the database restored (core/restore.ts) when its origin (DATABASE_ORIGIN) is not the one the last process
   * to open it saw: a database restored with pg_restore or to a point in time, or promoted from a replica, may have
   * lost writes that devices synced, and an operator may not know to run `cognisync mark-restored`. A copy that was
   * never used apart (a move to a new server, an upgrade) loses nothing by the mark: every device's count is at or
   * below the dataset's, outside the span. Runs under the migration lock, so processes starting together mark once.
   * Not detected: a failover while processes keep running (they reconnect without migrating), and a copy of the
   * schema inside the same database.
   */
  private async markIfRestored(client: pg.PoolClient): Promise<void> {
    let origin: string;
    try {
      origin = (await client.query<{ origin: string }>(DATABASE_ORIGIN)).rows[0]!.origin;
    } catch {
      // A managed PostgreSQL that hides these functions: nothing to compare, as before this check existed.
      return;
    }
    const seen = (await client.query<{ value: string }>('SELECT value FROM settings WHERE name = $1', [DATABASE_ORIGIN_SETTING])).rows[0]?.value;
    if (seen === origin) return;
    await client.query('BEGIN');
    try {
      // First open, or the first since this check exists: only remembered. (So a database restored from a dump made
      // before the check existed is not recognised: it has no origin to compare.)
      const marked = seen === undefined ? undefined : (await client.query(withReadTimeout(MARK_RESTORED, [RESTORE_SYNC_COUNT_GAP, Date.now(), RESTORED_SETTING]))).rowCount ?? 0;
      await client.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [DATABASE_ORIGIN_SETTING, origin]);
      await client.query('COMMIT');
      if (marked !== undefined) {
        this.onMarkedRestored?.(`the database was restored or copied since it was last opened (origin ${seen}, now ${origin}): marked ${marked} datasets as restored, so devices that synced what it lost are told (see README, Backup and restore)`);
      }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async markRestored(now: number): Promise<number> {
    try {
      return (await this.pool.query(withReadTimeout(MARK_RESTORED, [RESTORE_SYNC_COUNT_GAP, now, RESTORED_SETTING]))).rowCount ?? 0;
    } catch (error) {
      throw this.failed(error);
    }
  }

  async close(): Promise<void> {
    await settlesInTime(this.notifier.flush());
    if (!(await settlesInTime(this.pool.end()))) for (const client of this.connections) client.connection.stream.destroy();
  }

  /**
   * Ready when the database answers and takes writes: not a standby or a read-only database (after a failover the
   * URL may lead to one; every write would fail with 25006), and, after a write failed for the storage's sake, when a
   * probe write commits (write-health.ts).
   */
  async ping(): Promise<boolean> {
    try {
      const client = await this.pool.connect();
      let writable = false;
      try {
        const { rows } = await client.query<{ writable: boolean }>("SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off' AS writable");
        writable = rows[0]?.writable === true;
      } finally {
        // A read-only session stays read-only after the database is writable again (default_transaction_read_only is
        // read when a session starts): dropped, the next ping asks a new one.
        client.release(!writable);
      }
      return writable && (await this.writeHealth.canWrite());
    } catch {
      return false;
    }
  }

  /** An error of a store call as the AWS error it stands for, noted first if it says writes are refused. */
  private failed(error: unknown): unknown {
    this.writeHealth.failed(error);
    return toServiceError(error);
  }

  async getOrCreateSetting(name: string, value: string): Promise<string> {
    await this.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
    return (await this.query<{ value: string }>('SELECT value FROM settings WHERE name = $1', [name]))[0]!.value;
  }

  async createIdentityPool(pool: IdentityPoolRecord, maxPools: number): Promise<void> {
    await this.transaction(async (client) => {
      await run(client, 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', ['cognisync:pools']);
      const [{ n }] = (await run<{ n: number }>(client, 'SELECT count(*)::int AS n FROM identity_pools')).rows as [{ n: number }];
      if (n >= maxPools) throw new LimitExceededException(`The maximum of ${maxPools} identity pools has been reached`);
      await run(
        client,
        'INSERT INTO identity_pools (identity_pool_id, identity_pool_name, description, creation_date, last_modified_date) VALUES ($1, $2, $3, $4, $5)',
        [pool.identityPoolId, pool.identityPoolName, JSON.stringify(pool.description), pool.creationDate, pool.lastModifiedDate],
      );
    });
  }

  async getIdentityPool(identityPoolId: string): Promise<IdentityPoolRecord | undefined> {
    const [row] = await this.query<PoolRow>(`SELECT ${POOL_COLUMNS} FROM identity_pools WHERE identity_pool_id = $1`, [identityPoolId]);
    return row && toPool(row);
  }

  async listIdentityPools(afterId: string | undefined, limit: number): Promise<IdentityPoolRecord[]> {
    const rows = await this.query<PoolRow>(`SELECT ${POOL_COLUMNS} FROM identity_pools WHERE identity_pool_id > $1 ORDER BY identity_pool_id LIMIT $2`, [afterId ?? '', limit]);
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
      // First: writes that create rows of the pool check it under a lock (POOL_STILL_THERE).
      await run(client, 'SELECT 1 FROM identity_pools WHERE identity_pool_id = $1 FOR UPDATE', [identityPoolId]);
      for (const table of ['subscriptions', 'devices', 'datasets', 'issued_credentials', 'identity_logins', 'identities']) {
        await run(client, `DELETE FROM ${table} WHERE identity_pool_id = $1`, [identityPoolId]);
      }
      return ((await run(client, 'DELETE FROM identity_pools WHERE identity_pool_id = $1', [identityPoolId])).rowCount ?? 0) > 0;
    });
  }

  async getPoolSyncSettings(identityPoolId: string): Promise<PoolSyncSettings | undefined> {
    const [row] = await this.query<PoolRow>(`SELECT ${POOL_COLUMNS} FROM identity_pools WHERE identity_pool_id = $1`, [identityPoolId]);
    return row && toSettings(row);
  }

  /** Reads the pool row FOR UPDATE, lets `change` compute the new settings, returns them (undefined: no pool). */
  private updatePoolRow<T>(identityPoolId: string, change: (row: PoolRow, client: pg.PoolClient) => Promise<T>): Promise<T | undefined> {
    return this.transaction(async (client) => {
      const [row] = (await run<PoolRow>(client, `SELECT ${POOL_COLUMNS} FROM identity_pools WHERE identity_pool_id = $1 FOR UPDATE`, [identityPoolId])).rows;
      return row ? change(row, client) : undefined;
    });
  }

  async setPoolConfiguration(identityPoolId: string, changes: Pick<PoolSyncSettings, 'pushSync' | 'cognitoStreams'>): Promise<PoolSyncSettings | undefined> {
    return this.updatePoolRow(identityPoolId, async (row, client) => {
      const settings = { ...toSettings(row), ...changes };
      await run(client, 'UPDATE identity_pools SET push_sync = $1, cognito_streams = $2 WHERE identity_pool_id = $3', [
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
      await run(client, 'UPDATE identity_pools SET cognito_events = $1 WHERE identity_pool_id = $2', [JSON.stringify(events), identityPoolId]);
    });
  }

  async startBulkPublish(identityPoolId: string, decide: (settings: PoolSyncSettings) => BulkPublishState, now: number): Promise<BulkPublishState | undefined> {
    return this.updatePoolRow(identityPoolId, async (row, client) => {
      const settings = toSettings(row);
      const next = decide(settings);
      await run(client, 'UPDATE identity_pools SET bulk_publish = $1 WHERE identity_pool_id = $2', [JSON.stringify(next), identityPoolId]);
      if (next.status === 'IN_PROGRESS') await this.insertOutbox(client, [bulkPublishJob(identityPoolId, settings)], now);
      return next;
    });
  }

  async setBulkPublishState(identityPoolId: string, state: BulkPublishState): Promise<void> {
    await this.query('UPDATE identity_pools SET bulk_publish = $1 WHERE identity_pool_id = $2', [JSON.stringify(state), identityPoolId]);
  }

  async describeDataset(key: DatasetKey): Promise<DatasetRecord | undefined> {
    const [row] = await this.query<DatasetRow>(
      `SELECT ${DATASET_COLUMNS} FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 AND live`,
      [key.identityPoolId, key.identityId, key.datasetName],
    );
    return row && toDataset(row);
  }

  async listDatasets(identityPoolId: string, identityId: string, afterName: string | undefined, limit: number): Promise<DatasetRecord[]> {
    const rows = await this.query<DatasetRow>(
      `SELECT ${DATASET_COLUMNS} FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND live AND dataset_name > $3 ORDER BY dataset_name LIMIT $4`,
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
    const deleted = await this.transaction(async (client) => {
      // The row lock waits for a write in flight and keeps later ones out (records are written only under it),
      // so the next statement's snapshot holds every record there is to delete.
      const [row] = (await run<DatasetRow>(client, `SELECT ${DATASET_COLUMNS} FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 AND live FOR UPDATE`, [
        key.identityPoolId, key.identityId, key.datasetName,
      ])).rows;
      if (!row) return undefined;
      // The deletion is a change of its own, at the next SyncCount (see deletedSyncCount).
      const syncCount = deletedSyncCount(row.sync_count);
      const outbox = [
        ...(stream ? streamEntries(stream, key, 'remove', [], syncCount, now) : []),
        ...(push ? pushEntries(push, key, await this.subscribedDevices(client, key), 'DatasetDeleted', syncCount, undefined) : []),
      ];
      await run(client, DELETE_DATASET, [row.dataset_id, now, syncCount, ...outboxColumns(outbox)]);
      return toDataset(row);
    });
    if (deleted) this.notifier.publish({ identityPoolId: key.identityPoolId, identityId: key.identityId, datasetName: key.datasetName, syncCount: deletedSyncCount(deleted.syncCount) });
    return deleted;
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
      `SELECT ${DATASET_COLUMNS} FROM datasets WHERE identity_pool_id = $1 AND live AND (identity_id, dataset_name) > ($2::text COLLATE "C", $3::text COLLATE "C")
       ORDER BY identity_id, dataset_name LIMIT $4`,
      [identityPoolId, after?.identityId ?? '', after?.datasetName ?? '', limit],
    );
    return rows.map(toDataset);
  }

  async listRecords(key: DatasetKey, lastSyncCount: number, after: RecordCursor | undefined, limit: number): Promise<RecordsPage> {
    // One statement, so one snapshot: the dataset, its merged names and the page agree without a transaction.
    const [row] = (await this.query<ListRecordsRow>(LIST_RECORDS, [key.identityPoolId, key.identityId, key.datasetName, lastSyncCount, after?.syncCount ?? 0, after?.key ?? '', limit + 1])) as [ListRecordsRow];
    const mergedDatasetNames = row.merged_dataset_names ?? [];
    const restored = { from: row.restored_from_sync_count ?? 0, to: row.restored_to_sync_count ?? 0 };
    const tombstonesDroppedThrough = row.tombstones_dropped_through ?? 0;
    if (!row.live) return { dataset: undefined, mergedDatasetNames, deletedAtSyncCount: row.deleted_at_sync_count ?? 0, restored, tombstonesDroppedThrough, records: [], next: undefined };
    const dataset = row as DatasetRow;
    const page = row.records ?? [];
    const more = page.length > limit;
    const records = (more ? page.slice(0, limit) : page).map(
      ([recordKey, value, syncCount, lastModifiedDate, lastModifiedBy, deviceLastModifiedDate]): StoredRecord => ({ key: recordKey, value, syncCount, lastModifiedDate, lastModifiedBy, deviceLastModifiedDate }),
    );
    const last = records[records.length - 1];
    return { dataset: toDataset(dataset), mergedDatasetNames, deletedAtSyncCount: dataset.deleted_at_sync_count, restored, tombstonesDroppedThrough, records, next: more && last ? { syncCount: last.syncCount, key: last.key } : undefined };
  }

  /**
   * Optimistic first: read the dataset and the patched records (one statement, no lock), apply the patches, write
   * everything in one statement that only takes effect if the dataset is still at the SyncCount read (see the
   * module comment). A write that loses a race reads again; creating or reviving a dataset, and a write that keeps
   * losing, run under the identity's lock instead. Writes of one dataset from this process run one at a time
   * (datasetWrites); other processes' writes still race and are caught by the compare-and-set.
   */
  async updateRecords(request: UpdateRecordsRequest): Promise<UpdateRecordsResult> {
    const key = `${request.identityPoolId}/${request.identityId}/${request.datasetName}`;
    const previous = this.datasetWrites.get(key);
    const write = previous ? previous.then(() => this.updateRecordsInTurn(request)) : this.updateRecordsInTurn(request);
    const settled = write.then(
      () => undefined,
      () => undefined,
    );
    this.datasetWrites.set(key, settled);
    try {
      return await write;
    } finally {
      if (this.datasetWrites.get(key) === settled) this.datasetWrites.delete(key);
    }
  }

  private async updateRecordsInTurn(request: UpdateRecordsRequest): Promise<UpdateRecordsResult> {
    this.activeWrites++;
    try {
      const keys = request.patches.map((patch) => patch.key);
      for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
        const rows = await this.writeReads.load({ key: request, keys });
        const found = rows[0] && datasetVersion(rows[0]);
        // Creating or reviving changes how many live datasets the identity has: decided under its lock.
        if (!found?.live) break;
        const current = new Map<string, StoredRecord>();
        for (const row of rows) {
          if (row.key === null) continue;
          current.set(row.key, {
            key: row.key,
            value: row.value,
            syncCount: row.record_sync_count,
            lastModifiedDate: row.record_last_modified_date,
            lastModifiedBy: row.record_last_modified_by,
            deviceLastModifiedDate: row.device_last_modified_date,
          });
        }
        const devices = request.push ? await this.subscribedDevices(this.pool, request) : [];
        const result = await this.writeRecords(this.pool, request, found, current, 0, devices);
        if (result) return this.published(request, result);
      }
      return this.published(request, await this.transaction((client) => this.updateRecordsLocked(client, request)));
    } catch (error) {
      throw this.failed(error);
    } finally {
      this.activeWrites--;
    }
  }

  /** Announces a committed UpdateRecords to the change listeners. */
  private published(request: UpdateRecordsRequest, result: UpdateRecordsResult): UpdateRecordsResult {
    const { identityPoolId, identityId, datasetName, deviceId } = request;
    this.notifier.publish({ identityPoolId, identityId, datasetName, syncCount: result.dataset.syncCount, ...(deviceId ? { deviceId } : {}) });
    return result;
  }

  /** UpdateRecords holding the identity's advisory lock and the dataset's row lock, so what it reads stays true. */
  private async updateRecordsLocked(client: pg.PoolClient, request: UpdateRecordsRequest): Promise<UpdateRecordsResult> {
    await this.lockIdentity(client, request.identityPoolId, request.identityId);
    const [locked] = (await run<LockedDatasetRow>(client, LOCK_DATASET, [request.identityPoolId, request.identityId, request.datasetName])).rows;
    const found = locked!.dataset_id === null ? undefined : datasetVersion(locked as DatasetVersionRow);
    if (!found?.live && request.issuedAccessKeyId !== undefined) {
      const issued = await run(client, 'SELECT 1 FROM issued_credentials WHERE access_key_id = $1', [request.issuedAccessKeyId]);
      if (issued.rowCount === 0) throw revokedWhileWriting(request.identityId);
    }
    const current = new Map<string, StoredRecord>();
    if (found?.live && request.patches.length > 0) {
      const rows = await run<RecordRow>(client, `SELECT ${RECORD_COLUMNS} FROM records WHERE dataset_id = $1 AND key = ANY($2::text[])`, [found.datasetId, request.patches.map((patch) => patch.key)]);
      for (const row of rows.rows) current.set(row.key, toRecord(row));
    }
    const devices = request.push ? await this.subscribedDevices(client, request) : [];
    // A dataset created after a restore starts past its mark (core/restore.ts); read only when creating one.
    const restoredTo = found ? 0 : Number((await run<{ value: string }>(client, 'SELECT value FROM settings WHERE name = $1', [RESTORED_SETTING])).rows[0]?.value ?? 0);
    const result = await this.writeRecords(client, request, found, current, locked!.other_live, devices, restoredTo);
    if (!result) throw new Error(`UpdateRecords: dataset ${request.datasetName} of ${request.identityId} changed while locked`);
    return result;
  }

  /**
   * Applies the patches to the dataset as read and writes the dataset row, the records and the outbox entries in one
   * statement. Undefined when the dataset is no longer as read (nothing was written).
   */
  private async writeRecords(
    on: Queryable,
    request: UpdateRecordsRequest,
    found: DatasetVersion | undefined,
    current: ReadonlyMap<string, StoredRecord>,
    otherLiveDatasets: number,
    devices: readonly DeviceRecord[],
    /** Where a dataset created now starts (core/restore.ts); 0 when its database was never marked restored. */
    restoredTo = 0,
  ): Promise<UpdateRecordsResult | undefined> {
    const { identityPoolId, identityId, datasetName, now, modifiedBy } = request;
    const live = found?.live ?? false;
    const applied = applyRecordPatches({
      dataset: { live, syncCount: found?.syncCount ?? restoredTo, dataStorage: found?.dataStorage ?? 0, numRecords: found?.numRecords ?? 0, deletedAtSyncCount: found?.deletedAtSyncCount ?? 0, restored: found?.restored ?? { from: 0, to: restoredTo },
        tombstones: found?.tombstones ?? 0, tombstoneBytes: found?.tombstoneBytes ?? 0, tombstonesDroppedThrough: found?.tombstonesDroppedThrough ?? 0 },
      otherLiveDatasets,
      current,
      sessionSyncCount: request.sessionSyncCount,
      patches: request.patches,
      now,
      modifiedBy,
      limits: request.limits,
    });
    const creationDate = live ? found!.creationDate : now;
    const { syncCount, dataStorage, numRecords, tombstones, tombstoneBytes } = applied.dataset;
    const records = applied.records;
    const outbox = [
      ...(request.stream ? streamEntries(request.stream, request, 'replace', records, syncCount, now) : []),
      ...(request.push ? pushEntries(request.push, request, devices, 'DatasetUpdated', syncCount, request.deviceId) : []),
    ];
    if (found) {
      const update: DatasetUpdate = { request, found, dataset: { syncCount, dataStorage, numRecords, creationDate, tombstones, tombstoneBytes }, records, outbox };
      // Under a lock the write belongs to the locked transaction's connection; otherwise it can share a statement
      // with the other writes of its turn, if there are any.
      const batched = on === this.pool && this.activeWrites > 1 && textLength(records) <= MAX_BATCHED_WRITE_LENGTH;
      const won = batched ? await this.datasetUpdates.load(update) : (await this.updateDatasets(on, [update]))[0];
      if (!won) return undefined;
      if (applied.dropTombstones) await this.dropOldestTombstones(on, found.datasetId, applied.dropTombstones, syncCount);
    } else {
      const values: unknown[] = [
        identityPoolId, identityId, datasetName, now, modifiedBy, syncCount, dataStorage, numRecords, creationDate,
        ...recordColumns(records),
        ...outboxColumns(outbox),
      ];
      const written = await run(on, INSERT_DATASET_AND_RECORDS, values);
      if (written.rowCount === 0) throw new ResourceNotFoundException(`IdentityPool '${identityPoolId}' not found.`);
    }
    return { dataset: { identityPoolId, identityId, datasetName, creationDate, lastModifiedDate: now, lastModifiedBy: modifiedBy, syncCount, dataStorage, numRecords }, records: applied.answer };
  }

  /**
   * Drops at least `drop` of the dataset's oldest tombstones, whole SyncCounts at a time (core/tombstones.ts). Under a
   * lock it is part of the write's transaction; on the optimistic path the write has committed, so a failure is
   * reported, not answered (the next write that removes a record drops them).
   */
  private async dropOldestTombstones(on: Queryable, datasetId: number, drop: TombstoneDrop, written: number): Promise<void> {
    const dropping = async (client: Queryable) => {
      const { rows } = await run<{ sync_count: number; bytes: number }>(client, TOMBSTONES_OLDEST_FIRST, [datasetId, written]);
      const cut = tombstoneCut(rows.map((row) => [row.sync_count, row.bytes] as const), drop, written);
      if (cut === undefined) return;
      await run(client, DROP_TOMBSTONES, [datasetId, cut]);
      await run(client, COUNT_TOMBSTONES_DROPPED, [datasetId, cut]);
    };
    if (on !== this.pool) return dropping(on);
    // The dataset's row first, as writes take it before their records: two processes' drops (each deleting records,
    // then updating the row) deadlocked (QA: 7 times in 40 s with 3 processes on one dataset).
    await this.transaction(async (client) => {
      await run(client, 'SELECT 1 FROM datasets WHERE dataset_id = $1 FOR UPDATE', [datasetId]);
      await dropping(client);
    }).catch((error: unknown) => this.onBackgroundError?.(error instanceof Error ? error : new Error(String(error))));
  }

  /**
   * A batch of optimistic writes: one statement, and if PostgreSQL refused it, each write again in a statement of its
   * own, so one write's error (or a deadlock with another process's batch) is that write's alone. A statement whose
   * fate is unknown is not sent again: its error is every write's. PostgreSQL goes on with a statement whose client
   * stopped waiting (query_timeout) or lost the connection, and may commit it; sent again, each write then lost its
   * compare-and-set to itself and was answered ResourceConflictException for a write that was stored (QA: 2 to 30 such
   * 409s, with row locks held past the timeout). Unknown, each is answered InternalErrorException, as a lone write's
   * timeout is.
   */
  private async updateDatasetsBatched(updates: readonly DatasetUpdate[]): Promise<Array<boolean | Error>> {
    if (updates.length === 1) return this.updateDatasets(this.pool, updates);
    try {
      return await this.updateDatasets(this.pool, updates);
    } catch (error) {
      if (!refusedByDatabase(error)) return updates.map(() => (error instanceof Error ? error : new Error(String(error))));
      return Promise.all(
        updates.map((update) =>
          this.updateDatasets(this.pool, [update]).then(
            ([won]) => won!,
            (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
          ),
        ),
      );
    }
  }

  /**
   * Runs UPDATE_DATASETS_AND_RECORDS for `updates`; for each, whether it took effect. Sorted by dataset first, so
   * concurrent batches of several processes tend to lock their rows in one order.
   */
  private async updateDatasets(on: Queryable, updates: readonly DatasetUpdate[]): Promise<boolean[]> {
    const order = updates.map((_, i) => i).sort((a, b) => updates[a]!.found.datasetId - updates[b]!.found.datasetId);
    const sorted = order.map((i) => updates[i]!);
    const records = sorted.flatMap((update, i) => update.records.map((record) => [i + 1, record] as const));
    const outbox = sorted.flatMap((update, i) => update.outbox.map((entry) => [i + 1, entry] as const));
    const { rows } = await run<{ n: number }>(on, UPDATE_DATASETS_AND_RECORDS, [
      sorted.map((u) => u.request.identityPoolId),
      sorted.map((u) => u.request.identityId),
      sorted.map((u) => u.request.datasetName),
      sorted.map((u) => u.found.datasetId),
      sorted.map((u) => u.found.live),
      sorted.map((u) => u.found.syncCount),
      sorted.map((u) => u.request.now),
      sorted.map((u) => u.request.modifiedBy),
      sorted.map((u) => u.dataset.syncCount),
      sorted.map((u) => u.dataset.dataStorage),
      sorted.map((u) => u.dataset.numRecords),
      sorted.map((u) => u.dataset.creationDate),
      sorted.map((u) => u.dataset.tombstones),
      sorted.map((u) => u.dataset.tombstoneBytes),
      sorted.map((u) => u.found.tombstonesDroppedThrough),
      records.map(([n]) => n),
      ...recordColumns(records.map(([, record]) => record)),
      outbox.map(([n]) => n),
      ...outboxColumns(outbox.map(([, entry]) => entry)),
    ]);
    const won = new Set(rows.map((row) => row.n));
    const result: boolean[] = [];
    order.forEach((original, i) => (result[original] = won.has(i + 1)));
    return result;
  }

  async describeIdentityUsage(identityPoolId: string, identityId: string): Promise<IdentityUsage> {
    const [usage] = await this.query<{ n: number; bytes: number | null; last: number | null }>(
      'SELECT count(*)::int AS n, sum(data_storage)::bigint AS bytes, max(last_modified_date) AS last FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND live',
      [identityPoolId, identityId],
    );
    return { identityPoolId, identityId, datasetCount: usage!.n, dataStorage: usage!.bytes ?? 0, lastModifiedDate: usage!.last ?? undefined };
  }

  async describeIdentityPoolUsage(identityPoolId: string): Promise<IdentityPoolUsage> {
    const [usage] = await this.query<PoolUsageRow>(`SELECT ${POOL_USAGE_COLUMNS} FROM datasets WHERE identity_pool_id = $1`, [identityPoolId]);
    return toPoolUsage(identityPoolId, usage!);
  }

  async listIdentityPoolUsage(afterId: string | undefined, limit: number): Promise<IdentityPoolUsage[]> {
    const rows = await this.query<PoolUsageRow & { identity_pool_id: string }>(
      `SELECT p.identity_pool_id, u.* FROM identity_pools p CROSS JOIN LATERAL (SELECT ${POOL_USAGE_COLUMNS} FROM datasets WHERE identity_pool_id = p.identity_pool_id) u
       WHERE p.identity_pool_id > $1 ORDER BY p.identity_pool_id LIMIT $2`,
      [afterId ?? '', limit],
    );
    return rows.map((row) => toPoolUsage(row.identity_pool_id, row));
  }

  async registerDevice(device: DeviceRecord, maxDevices = Number.MAX_SAFE_INTEGER): Promise<DeviceRecord> {
    return this.transaction(async (client) => {
      // Under the identity's lock, registrations of one identity take turns: concurrent ones kept more than maxDevices.
      await this.lockIdentity(client, device.identityPoolId, device.identityId);
      if ((await run(client, `SELECT ${POOL_STILL_THERE}`, [device.identityPoolId])).rows[0]?.exists !== true) {
        throw new ResourceNotFoundException(`IdentityPool '${device.identityPoolId}' not found.`);
      }
      // Deleted or merged into another since the request read it (both take the lock held here): its devices went or moved.
      await this.requireIdentityLocked(client, device.identityId);
      await run(
        client,
        'INSERT INTO devices (identity_pool_id, identity_id, device_id, platform, token, creation_date) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
        [device.identityPoolId, device.identityId, device.deviceId, device.platform, device.token, device.creationDate],
      );
      const [row] = (await run<DeviceRecord>(client, `SELECT ${DEVICE_COLUMNS} FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND platform = $3 AND token = $4`, [
        device.identityPoolId, device.identityId, device.platform, device.token,
      ])).rows;
      // The devices beyond the newest maxDevices - 1 besides this one go, with their subscriptions.
      await run(
        client,
        `WITH evicted AS (
           SELECT device_id FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id <> $3 ORDER BY creation_date DESC, device_id DESC OFFSET $4
         ), unsubscribed AS (
           DELETE FROM subscriptions s USING evicted e WHERE s.identity_pool_id = $1 AND s.identity_id = $2 AND s.device_id = e.device_id
         )
         DELETE FROM devices d USING evicted e WHERE d.identity_pool_id = $1 AND d.identity_id = $2 AND d.device_id = e.device_id`,
        [device.identityPoolId, device.identityId, row!.deviceId, maxDevices - 1],
      );
      return row!;
    });
  }

  async getDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    const [row] = await this.query<DeviceRecord>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $3`, [identityPoolId, identityId, deviceId]);
    return row;
  }

  async subscribe(key: DatasetKey, deviceId: string, now: number, maxSubscriptions = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    // Under the identity's lock, subscriptions of one identity take turns, so the count holds (concurrent ones overshot it).
    const rows = await this.transaction(async (client) => {
      await this.lockIdentity(client, key.identityPoolId, key.identityId);
      await this.requireIdentityLocked(client, key.identityId);
      // Unregistered since the request read it (a newer registration evicted it, or it moved with a merge).
      const device = await run(client, 'SELECT 1 FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $3', [key.identityPoolId, key.identityId, deviceId]);
      if (device.rowCount === 0) throw deviceNotRegistered(key.identityId, deviceId);
      return (await run<{ taken: boolean }>(
        client,
        `INSERT INTO subscriptions (identity_pool_id, identity_id, dataset_name, device_id, creation_date)
       SELECT $1, $2, $3, $4, $5
       WHERE (SELECT count(*) FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $4 AND dataset_name <> $3) < $6 AND ${POOL_STILL_THERE}
       ON CONFLICT DO NOTHING RETURNING true AS taken`,
        [key.identityPoolId, key.identityId, key.datasetName, deviceId, now, maxSubscriptions],
      )).rows;
    });
    if (rows.length > 0) return true;
    // Nothing inserted: already subscribed, the pool gone, or refused by the cap.
    const [state] = await this.query<{ held: boolean; pool: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 AND device_id = $4) AS held,
         EXISTS (SELECT 1 FROM identity_pools WHERE identity_pool_id = $1) AS pool`,
      [key.identityPoolId, key.identityId, key.datasetName, deviceId],
    );
    if (!state!.pool) throw new ResourceNotFoundException(`IdentityPool '${key.identityPoolId}' not found.`);
    return state!.held;
  }

  async unsubscribe(key: DatasetKey, deviceId: string): Promise<void> {
    await this.query('DELETE FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 AND device_id = $4', [key.identityPoolId, key.identityId, key.datasetName, deviceId]);
  }

  async deleteDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<void> {
    await this.transaction(async (client) => {
      await run(client, 'DELETE FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $3', [identityPoolId, identityId, deviceId]);
      await run(client, 'DELETE FROM devices WHERE identity_pool_id = $1 AND identity_id = $2 AND device_id = $3', [identityPoolId, identityId, deviceId]);
    });
  }

  async listSubscriptions(key: DatasetKey): Promise<string[]> {
    const rows = await this.query<{ device_id: string }>('SELECT device_id FROM subscriptions WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3 ORDER BY device_id', [
      key.identityPoolId, key.identityId, key.datasetName,
    ]);
    return rows.map((r) => r.device_id);
  }

  async createIdentity(identity: IdentityRecord): Promise<LoginOwnedElsewhere | undefined> {
    try {
      await this.transaction(async (client) => {
        await run(client, 'INSERT INTO identities (identity_id, identity_pool_id, creation_date, last_modified_date) VALUES ($1, $2, $3, $4)', [
          identity.identityId, identity.identityPoolId, identity.creationDate, identity.lastModifiedDate,
        ]);
        await this.insertLogins(client, identity.identityPoolId, identity.identityId, identity.logins);
      });
      return undefined;
    } catch (error) {
      if (error instanceof LoginTaken) return { ownedBy: error.ownedBy };
      throw error;
    }
  }

  /**
   * Inserts the logins not yet linked to the identity; true if any was. A login another identity holds (committed
   * first, or by a concurrent transaction, which the insert waits for) throws LoginTaken, and one that would be a
   * second user of a provider on the identity (`rule`; the caller holds the identity's lock) ProviderTaken, rolling
   * the caller back.
   */
  private async insertLogins(client: pg.PoolClient, identityPoolId: string, identityId: string, logins: readonly Login[], rule?: ProviderRule, expect?: LinkExpectation): Promise<boolean> {
    const held = rule || expect ? await this.loginsOf(client, identityId) : [];
    if (expect && changedSinceRead(held, expect, logins)) throw new ChangedMeanwhile();
    let inserted = false;
    for (const login of logins) {
      const result = await run(
        client,
        'INSERT INTO identity_logins (identity_pool_id, provider_name, user_identifier, identity_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [identityPoolId, login.providerName, login.userIdentifier, identityId],
      );
      if ((result.rowCount ?? 0) > 0) {
        inserted = true;
        continue;
      }
      const [owner] = (await run<{ identity_id: string }>(
        client,
        'SELECT identity_id FROM identity_logins WHERE identity_pool_id = $1 AND provider_name = $2 AND user_identifier = $3',
        [identityPoolId, login.providerName, login.userIdentifier],
      )).rows;
      if (owner && owner.identity_id !== identityId) throw new LoginTaken(owner.identity_id);
    }
    // Checked after the owners, as the SQLite store does: a login someone else holds is the refusal reported first.
    if (rule) {
      const adding = logins.filter((login) => !held.some((h) => h.providerName === login.providerName && h.userIdentifier === login.userIdentifier));
      const providerInUse = providerClash(held, adding, rule);
      if (providerInUse) throw new ProviderTaken(providerInUse);
    }
    return inserted;
  }

  async getIdentity(identityId: string): Promise<IdentityRecord | undefined> {
    const [row] = await this.query<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities i WHERE i.identity_id = $1`, [identityId]);
    return row && toIdentity(row);
  }

  async findIdentityByLogin(identityPoolId: string, login: Login): Promise<string | undefined> {
    const [row] = await this.query<{ identity_id: string }>(
      'SELECT identity_id FROM identity_logins WHERE identity_pool_id = $1 AND provider_name = $2 AND user_identifier = $3',
      [identityPoolId, login.providerName, login.userIdentifier],
    );
    return row?.identity_id;
  }

  async linkLogins(identityPoolId: string, identityId: string, logins: readonly Login[], now: number, rule: ProviderRule, expect?: LinkExpectation): Promise<LinkRefusal | undefined> {
    try {
      await this.transaction(async (client) => {
        // The identity's lock (as merges and deletions take) orders links of one identity, for the provider rule.
        // The foreign key makes an insert for a deleted identity fail (ResourceNotFoundException, toServiceError).
        await this.lockIdentity(client, identityPoolId, identityId);
        // Gone (deleted, or merged into another) since the caller read it: said so, before `expect` reads its logins as none.
        await this.requireIdentityLocked(client, identityId);
        if (await this.insertLogins(client, identityPoolId, identityId, logins, rule, expect)) await run(client, TOUCH_LINKED_IDENTITY, [now, identityId]);
      });
      return undefined;
    } catch (error) {
      if (error instanceof LoginTaken) return { ownedBy: error.ownedBy };
      if (error instanceof ProviderTaken) return { providerInUse: error.providerName };
      if (error instanceof ChangedMeanwhile) return { changedMeanwhile: true };
      throw error;
    }
  }

  private async loginsOf(client: pg.PoolClient, identityId: string): Promise<Login[]> {
    const { rows } = await run<{ provider_name: string; user_identifier: string }>(client, 'SELECT provider_name, user_identifier FROM identity_logins WHERE identity_id = $1', [identityId]);
    return rows.map((row) => ({ providerName: row.provider_name, userIdentifier: row.user_identifier }));
  }

  async unlinkLogins(identityId: string, providerName: string, userIdentifier: string | undefined, now: number): Promise<number> {
    return this.transaction(async (client) => {
      // The identity's lock, as links take it: a link that checks the identity still holds a login (stillHolds) sees
      // this unlink whole or not at all, rather than waiting on the deleted row and inserting it again after.
      const [identity] = (await run<{ identity_pool_id: string }>(client, 'SELECT identity_pool_id FROM identities WHERE identity_id = $1', [identityId])).rows;
      if (identity) await this.lockIdentity(client, identity.identity_pool_id, identityId);
      const result = userIdentifier === undefined
        ? await run(client, 'DELETE FROM identity_logins WHERE identity_id = $1 AND provider_name = $2', [identityId, providerName])
        : await run(client, 'DELETE FROM identity_logins WHERE identity_id = $1 AND provider_name = $2 AND user_identifier = $3', [identityId, providerName, userIdentifier]);
      const removed = result.rowCount ?? 0;
      if (removed > 0) {
        const [touched] = (await run<{ inaccessible: boolean }>(client, TOUCH_UNLINKED_IDENTITY, [now, identityId])).rows;
        if (touched?.inaccessible) await run(client, 'DELETE FROM issued_credentials WHERE identity_id = $1', [identityId]);
      }
      return removed;
    });
  }

  async listIdentities(identityPoolId: string, afterId: string | undefined, limit: number, hideDisabled = false): Promise<IdentityRecord[]> {
    const rows = await this.query<IdentityRow>(
      `SELECT ${IDENTITY_COLUMNS} FROM identities i WHERE i.identity_pool_id = $1 AND i.identity_id > $2 AND NOT (i.inaccessible AND $4) ORDER BY i.identity_id LIMIT $3`,
      [identityPoolId, afterId ?? '', limit, hideDisabled],
    );
    return rows.map(toIdentity);
  }

  private async removeIdentity(client: pg.PoolClient, identityId: string): Promise<boolean> {
    for (const table of ['subscriptions', 'devices', 'datasets', 'issued_credentials', 'identity_logins']) {
      await run(client, `DELETE FROM ${table} WHERE identity_id = $1`, [identityId]);
    }
    return ((await run(client, 'DELETE FROM identities WHERE identity_id = $1', [identityId])).rowCount ?? 0) > 0;
  }

  async deleteIdentity(identityId: string): Promise<boolean> {
    return this.transaction(async (client) => {
      const [row] = (await run<{ identity_pool_id: string }>(client, 'SELECT identity_pool_id FROM identities WHERE identity_id = $1', [identityId])).rows;
      if (row) await this.lockIdentity(client, row.identity_pool_id, identityId);
      return this.removeIdentity(client, identityId);
    });
  }

  async mergeIdentities(identityPoolId: string, sourceIdentityId: string, destinationIdentityId: string, now: number, rule: ProviderRule): Promise<void> {
    if (sourceIdentityId === destinationIdentityId) return;
    await this.transaction(async (client) => {
      // Always lock in the same order, so two merges of the same pair cannot deadlock.
      for (const id of [sourceIdentityId, destinationIdentityId].sort()) await this.lockIdentity(client, identityPoolId, id);
      // Both may have gone since the caller read them (a deletion, another merge): nothing is moved then.
      const { rows: found } = await run<{ identity_id: string }>(client, 'SELECT identity_id FROM identities WHERE identity_id = ANY($1::text[])', [[sourceIdentityId, destinationIdentityId]]);
      const missing = [sourceIdentityId, destinationIdentityId].find((id) => !found.some((row) => row.identity_id === id));
      if (missing) throw new ResourceNotFoundException(`Identity '${missing}' not found.`);
      const providerInUse = providerClash(await this.loginsOf(client, destinationIdentityId), await this.loginsOf(client, sourceIdentityId), rule);
      if (providerInUse) throw new ResourceConflictException(`Two different users of ${providerInUse} cannot belong to one identity.`);
      const datasets = (await run<{ dataset_id: string; dataset_name: string }>(
        client,
        'SELECT dataset_id, dataset_name FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND live',
        [identityPoolId, sourceIdentityId],
      )).rows;
      const mergedNames = mergedDatasetNames(datasets.map((d) => d.dataset_name), sourceIdentityId);
      const clashes = await run<{ dataset_name: string; live: boolean }>(
        client,
        'SELECT dataset_name, live FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = ANY($3::text[])',
        [identityPoolId, destinationIdentityId, [...mergedNames.values()]],
      );
      for (const clash of clashes.rows) {
        if (clash.live) throw new ResourceConflictException(`Identity ${destinationIdentityId} already has a dataset named ${clash.dataset_name}; cannot merge.`);
        await run(client, 'DELETE FROM datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset_name = $3', [identityPoolId, destinationIdentityId, clash.dataset_name]);
      }
      await run(client, 'UPDATE identity_logins SET identity_id = $1 WHERE identity_id = $2', [destinationIdentityId, sourceIdentityId]);
      await run(
        client,
        `UPDATE datasets d SET identity_id = $1, merged_base_name = COALESCE(d.merged_base_name, d.dataset_name), dataset_name = m.merged_name
         FROM unnest($2::bigint[], $3::text[]) AS m(dataset_id, merged_name) WHERE d.dataset_id = m.dataset_id`,
        [destinationIdentityId, datasets.map((d) => d.dataset_id), datasets.map((d) => mergedNames.get(d.dataset_name)!)],
      );
      await run(
        client,
        `UPDATE devices d SET identity_id = $1 WHERE d.identity_id = $2 AND NOT EXISTS
         (SELECT 1 FROM devices e WHERE e.identity_pool_id = d.identity_pool_id AND e.identity_id = $1 AND e.platform = d.platform AND e.token = d.token)`,
        [destinationIdentityId, sourceIdentityId],
      );
      await this.removeIdentity(client, sourceIdentityId);
      await run(client, TOUCH_LINKED_IDENTITY, [now, destinationIdentityId]);
    });
  }

  async saveIssuedCredentials(credentials: IssuedCredentialsRecord): Promise<void> {
    // One statement: the purge of the identity's long-expired credentials commits with the insert.
    await this.query(
      `WITH purged AS (DELETE FROM issued_credentials WHERE identity_id = $3 AND expiration < $5)
       INSERT INTO issued_credentials (access_key_id, identity_pool_id, identity_id, expiration) VALUES ($1, $2, $3, $4)`,
      [credentials.accessKeyId, credentials.identityPoolId, credentials.identityId, credentials.expiration, Date.now() - EXPIRED_CREDENTIALS_RETENTION_MS],
    );
  }

  /** Every signed request's lookup; those made in one turn of the event loop go to the database together. */
  async getIssuedCredentials(accessKeyId: string): Promise<IssuedCredentials | undefined> {
    return this.credentialsLookups.load(accessKeyId);
  }

  /** The rows READ_FOR_WRITE returns for each read, in order (none when its dataset does not exist). */
  private async readForWrites(reads: readonly WriteRead[]): Promise<ReadForWriteRow[][]> {
    const rows = await this.query<ReadForWriteRow & { n: number }>(READ_FOR_WRITE, [
      reads.map((read) => read.key.identityPoolId),
      reads.map((read) => read.key.identityId),
      reads.map((read) => read.key.datasetName),
      reads.map((read) => JSON.stringify(read.keys)),
    ]);
    const byRead = reads.map((): ReadForWriteRow[] => []);
    for (const row of rows) byRead[row.n - 1]!.push(row);
    return byRead;
  }

  private async readCredentials(accessKeyIds: readonly string[]): Promise<Array<IssuedCredentials | undefined>> {
    const rows = await this.query<IssuedCredentialsRow>(
      `SELECT c.access_key_id, c.identity_pool_id, c.identity_id, c.expiration, p.push_sync, p.cognito_streams, p.cognito_events, p.bulk_publish
         FROM issued_credentials c JOIN identity_pools p ON p.identity_pool_id = c.identity_pool_id WHERE c.access_key_id = ANY($1::text[])`,
      [accessKeyIds],
    );
    const found = new Map(rows.map((row) => [row.access_key_id, row]));
    return accessKeyIds.map((accessKeyId) => {
      const row = found.get(accessKeyId);
      return row && toIssuedCredentials(row);
    });
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
    await run(
      client,
      `INSERT INTO outbox (kind, partition_key, payload, bulk_pool_id, created_at, next_attempt_at)
       SELECT kind, partition_key, payload, bulk_pool_id, $5, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
       WITH ORDINALITY AS e(kind, partition_key, payload, bulk_pool_id, n) ORDER BY n`,
      [...outboxColumns(entries), now],
    );
  }

  async enqueueOutbox(entries: readonly OutboxEntry[], now: number): Promise<void> {
    try {
      await this.insertOutbox(this.pool, entries, now); // one statement: atomic without a transaction
    } catch (error) {
      throw this.failed(error);
    }
  }

  async claimOutbox(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedOutboxEntry[]> {
    return this.transaction(async (client) => {
      // SKIP LOCKED: two processes claiming at once take disjoint entries; the lease keeps them disjoint after commit.
      const rows = await run<{ outbox_id: number; kind: OutboxEntry['kind']; partition_key: string; payload: string; bulk_pool_id: string | null; attempts: number; created_at: number }>(
        client,
        `SELECT outbox_id, kind, partition_key, payload, bulk_pool_id, attempts, created_at FROM outbox o
         WHERE next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partition_key = o.partition_key AND p.outbox_id < o.outbox_id)
         ORDER BY outbox_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [now, limit],
      );
      if (rows.rows.length === 0) return [];
      await run(client, 'UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE outbox_id = ANY($3::bigint[])', [owner, now + leaseMs, rows.rows.map((r) => r.outbox_id)]);
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

  async advanceOutbox(outboxId: number, next: readonly OutboxEntry[], now: number, unchanged: ReadonlyArray<DatasetKey & { syncCount: number }> = []): Promise<boolean> {
    return this.transaction(async (client) => {
      if (unchanged.length > 0) {
        // FOR SHARE waits for a write in flight on these rows to commit (its count is then seen), and makes a later
        // write wait for this commit: UpdateRecords queues its outbox entries only once it holds its dataset row.
        const { rows } = await run<{ changed: number }>(
          client,
          `SELECT count(*)::int AS changed FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS e (pool, identity, name, sync_count)
            LEFT JOIN LATERAL (SELECT d.sync_count FROM datasets d WHERE d.identity_pool_id = e.pool AND d.identity_id = e.identity AND d.dataset_name = e.name FOR SHARE) d ON true
            WHERE d.sync_count IS DISTINCT FROM e.sync_count`,
          [unchanged.map((d) => d.identityPoolId), unchanged.map((d) => d.identityId), unchanged.map((d) => d.datasetName), unchanged.map((d) => d.syncCount)],
        );
        if (rows[0]!.changed > 0) return false;
      }
      await run(client, 'DELETE FROM outbox WHERE outbox_id = $1', [outboxId]);
      await this.insertOutbox(client, next, now);
      return true;
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
    // The oldest entry is the first by id (numbered as they are made; across processes, nearly so), found by the primary
    // key instead of reading every row.
    const [row] = await this.query<{ n: number; oldest: number | null }>('SELECT count(*)::int AS n, (SELECT created_at FROM outbox ORDER BY outbox_id LIMIT 1) AS oldest FROM outbox');
    return { pending: row!.n, oldestCreatedAt: row!.oldest ?? undefined };
  }

  async putStreamPayload(outboxId: number, payloadId: string, body: string, expiresAt: number): Promise<string> {
    const [row] = await this.query<{ payload_id: string }>(
      `WITH added AS (INSERT INTO stream_payloads (payload_id, outbox_id, body, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (outbox_id) DO NOTHING RETURNING payload_id)
       SELECT payload_id FROM added UNION ALL SELECT payload_id FROM stream_payloads WHERE outbox_id = $2 LIMIT 1`,
      [payloadId, outboxId, body, expiresAt],
    );
    return row!.payload_id;
  }

  async getStreamPayload(payloadId: string, now: number): Promise<string | undefined> {
    const [row] = await this.query<{ body: string }>('SELECT body FROM stream_payloads WHERE payload_id = $1 AND expires_at > $2', [payloadId, now]);
    return row?.body;
  }

  async dropExpiredStreamPayloads(now: number): Promise<number> {
    const deleted = await this.query<{ n: number }>('WITH gone AS (DELETE FROM stream_payloads WHERE expires_at <= $1 RETURNING 1) SELECT count(*)::int AS n FROM gone', [now]);
    return deleted[0]!.n;
  }

  async watchChanges(listener: (event: ChangeEvent) => void, onGap?: () => void): Promise<() => Promise<void>> {
    let client: pg.Client | undefined;
    let stopped = false;
    let retryTimer: NodeJS.Timeout | undefined;
    let probe: NodeJS.Timeout | undefined;
    let listened = false;
    const FIRST_RETRY_MS = 200;
    // A dedicated connection (LISTEN needs one); when it drops, reconnect with backoff, which starts over from
    // FIRST_RETRY_MS after every connection that was up (it used to keep doubling, to 10 s, across drops). Changes
    // committed while it is down are not heard: onGap says so once it is back, and live streams then end, so that
    // their clients reconnect and catch up with ListRecords.
    const connect = async (delayMs: number): Promise<void> => {
      if (stopped) return;
      const next = new pg.Client({ connectionString: this.connectionString, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS });
      next.on('notification', (message) => {
        if (!message.payload) return;
        try {
          listener(JSON.parse(message.payload) as ChangeEvent);
        } catch {
          // A malformed payload is not ours; ignore it.
        }
      });
      const lost = () => {
        void endConnection(next);
        if (client !== next) return;
        clearInterval(probe);
        client = undefined;
        if (!stopped) retryTimer = setTimeout(() => void connect(FIRST_RETRY_MS * 2), FIRST_RETRY_MS);
      };
      next.on('error', lost);
      try {
        await next.connect();
        await next.query(`LISTEN ${this.channel}`);
        client = next;
        // A connection that only receives never learns that its other end went silent: ask for an answer now and
        // then, and take one that does not come as a lost connection (changes meanwhile: a gap).
        probe = setInterval(() => void next.query(withReadTimeout('SELECT 1', [], LISTEN_PROBE_MS)).catch(lost), LISTEN_PROBE_MS);
        probe.unref();
        if (listened) onGap?.();
        listened = true;
      } catch {
        await next.end().catch(() => undefined);
        if (!stopped) retryTimer = setTimeout(() => void connect(Math.min(delayMs * 2, 10_000)), delayMs);
      }
    };
    await connect(FIRST_RETRY_MS);
    return async () => {
      stopped = true;
      clearTimeout(retryTimer);
      clearInterval(probe);
      if (client) await endConnection(client);
    };
  }
}
