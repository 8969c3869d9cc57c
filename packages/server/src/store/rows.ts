// Row shapes both SQL stores share (same column names) and their mapping to the Store contract's records.
import type { BulkPublishState } from '../core/bulk-publish.js';
import type { DatasetRecord, IdentityPoolRecord, IssuedCredentials, PoolSyncSettings, StoredRecord } from './store.js';

export interface DatasetRow {
  dataset_id: number;
  identity_pool_id: string;
  identity_id: string;
  dataset_name: string;
  /** 0/1 in SQLite, boolean in PostgreSQL. */
  live: number | boolean;
  creation_date: number;
  last_modified_date: number;
  last_modified_by: string;
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

export interface RecordRow {
  key: string;
  value: string | null;
  sync_count: number;
  last_modified_date: number;
  last_modified_by: string;
  device_last_modified_date: number;
}

export interface PoolRow {
  identity_pool_id: string;
  identity_pool_name: string;
  description: string;
  push_sync: string | null;
  cognito_streams: string | null;
  cognito_events: string;
  bulk_publish: string;
  creation_date: number;
  last_modified_date: number;
}

export const toDataset = (row: DatasetRow): DatasetRecord => ({
  identityPoolId: row.identity_pool_id,
  identityId: row.identity_id,
  datasetName: row.dataset_name,
  creationDate: row.creation_date,
  lastModifiedDate: row.last_modified_date,
  lastModifiedBy: row.last_modified_by,
  syncCount: row.sync_count,
  dataStorage: row.data_storage,
  numRecords: row.num_records,
});

export const toRecord = (row: RecordRow): StoredRecord => ({
  key: row.key,
  value: row.value,
  syncCount: row.sync_count,
  lastModifiedDate: row.last_modified_date,
  lastModifiedBy: row.last_modified_by,
  deviceLastModifiedDate: row.device_last_modified_date,
});

export const toPool = (row: PoolRow): IdentityPoolRecord => ({
  identityPoolId: row.identity_pool_id,
  identityPoolName: row.identity_pool_name,
  description: JSON.parse(row.description) as Record<string, unknown>,
  creationDate: row.creation_date,
  lastModifiedDate: row.last_modified_date,
});

export type SettingsColumns = Pick<PoolRow, 'push_sync' | 'cognito_streams' | 'cognito_events' | 'bulk_publish'>;

/** Every field present (undefined when unset): conditional spreads would take V8's slow path on every request. */
export const toSettings = (row: SettingsColumns): PoolSyncSettings => ({
  pushSync: row.push_sync ? JSON.parse(row.push_sync) : undefined,
  cognitoStreams: row.cognito_streams ? JSON.parse(row.cognito_streams) : undefined,
  cognitoEvents: JSON.parse(row.cognito_events) as Record<string, string>,
  bulkPublish: JSON.parse(row.bulk_publish) as BulkPublishState,
});

/** issued_credentials joined with its pool's settings columns (see Store.getIssuedCredentials). */
export interface IssuedCredentialsRow extends SettingsColumns {
  access_key_id: string;
  identity_pool_id: string;
  identity_id: string;
  expiration: number;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

/**
 * The settings each pool's credentials were last read with, by pool: every signed request reads them, and parsing
 * their JSON columns again each time cost about 1 % of a small request's CPU. Taken again only while all four
 * columns read the same text, so a change is seen at the next read; frozen, since every request shares them.
 */
const lastSettings = new Map<string, { row: SettingsColumns; settings: PoolSyncSettings }>();
const MAX_LAST_SETTINGS = 1024;

function sharedSettings(identityPoolId: string, row: SettingsColumns): PoolSyncSettings {
  const last = lastSettings.get(identityPoolId);
  if (
    last &&
    last.row.push_sync === row.push_sync &&
    last.row.cognito_streams === row.cognito_streams &&
    last.row.cognito_events === row.cognito_events &&
    last.row.bulk_publish === row.bulk_publish
  ) {
    return last.settings;
  }
  const settings = deepFreeze(toSettings(row));
  if (!last && lastSettings.size >= MAX_LAST_SETTINGS) lastSettings.delete(lastSettings.keys().next().value!);
  lastSettings.set(identityPoolId, { row: { push_sync: row.push_sync, cognito_streams: row.cognito_streams, cognito_events: row.cognito_events, bulk_publish: row.bulk_publish }, settings });
  return settings;
}

/** Issued credentials with their pool's settings, shared (and frozen) while the settings are unchanged. */
export const toIssuedCredentials = (row: IssuedCredentialsRow): IssuedCredentials => ({
  accessKeyId: row.access_key_id,
  identityPoolId: row.identity_pool_id,
  identityId: row.identity_id,
  expiration: row.expiration,
  poolSettings: sharedSettings(row.identity_pool_id, row),
});
