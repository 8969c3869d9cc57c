// @cognisync/client: an offline-first Cognito Sync manager. This entry is browser-safe (no Node built-ins).
export { SyncManager, type SyncManagerOptions } from './sync-manager.ts';
export { Dataset } from './dataset.ts';
export { SyncConflict, type ConflictResolution } from './conflicts.ts';
export { defaultRetryPolicy, type RetryPolicy, type SynchronizeOptions, type SyncSummary } from './sync-loop.ts';
export { defaultReconnectPolicy, type LiveSync, type LiveSyncChange, type LiveSyncOptions, type ReconnectPolicy } from './live-sync.ts';
export type { LiveChange } from './transport/cognito-sync-api.ts';
export { defaultLimits, datasetNamePattern, type ClientLimits } from './limits.ts';
export type { DatasetMetadata, DatasetUsage, LocalRecord } from './records.ts';
export type { DatasetChange, LocalStore, StoreBatch } from './stores/store.ts';
export { MemoryStore } from './stores/memory/memory-store.ts';
export { IndexedDbStore, type IndexedDbStoreOptions } from './stores/indexeddb/indexeddb-store.ts';
export type { AwsCredentialProvider, AwsCredentials } from './transport/signed-fetch.ts';
export type { Logins } from './transport/cognito-identity-api.ts';
export {
  CognitoSyncClientError,
  LockTimeoutError,
  NetworkError,
  ServiceError,
  SyncCancelledError,
  SyncRetriesExhaustedError,
  ValidationError,
} from './errors.ts';
