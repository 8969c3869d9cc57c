// The one interface every local store implements: reads, one atomic compare-and-set commit, settings, a lock.
import type { DatasetFields, DatasetMetadata, DatasetUsage, LocalRecord } from '../records.ts';

/** Changes to one dataset inside a commit, applied in this order: purge, remove, put, metadata. */
export interface DatasetChange {
  identityId: string;
  datasetName: string;
  /** Each listed record must be exactly as given (`undefined` = absent) or the whole commit writes nothing. */
  expect?: Array<{ key: string; record: LocalRecord | undefined }>;
  /** Drop every record of the dataset first. */
  purge?: boolean;
  /** Keys whose records are dropped. */
  remove?: string[];
  put?: LocalRecord[];
  /**
   * Fields to set; the dataset row is created (with these fields) if absent. `null` drops the dataset row
   * (with `purge`, the dataset is gone). Absent: the row is left as it is (created with defaults when records are put).
   */
  metadata?: Partial<DatasetFields> | null;
}

/** One atomic, durable write: every change or none. */
export interface StoreBatch {
  datasets?: DatasetChange[];
  /** Settings to set (`null` deletes). */
  settings?: Record<string, string | null>;
  /** Each listed setting must have exactly this value (`null` = absent) or the whole commit writes nothing. */
  expectSettings?: Record<string, string | null>;
}

/**
 * A device's local storage. Every commit is atomic and durable before its promise resolves; reads see only
 * committed data. Several SyncManagers (also in other processes or tabs) may share one store.
 */
export interface LocalStore {
  getDataset(identityId: string, datasetName: string): Promise<DatasetMetadata | undefined>;
  listDatasets(identityId: string): Promise<DatasetMetadata[]>;
  getRecord(identityId: string, datasetName: string, key: string): Promise<LocalRecord | undefined>;
  /** Every record of the dataset, tombstones included, ordered by key (UTF-16 code unit order). */
  listRecords(identityId: string, datasetName: string): Promise<LocalRecord[]>;
  /**
   * The records of these keys that exist (tombstones included), ordered by key. A sync asks only for the keys it
   * touches, so its cost follows the number of changes, not the size of the dataset.
   */
  getRecords(identityId: string, datasetName: string, keys: readonly string[]): Promise<LocalRecord[]>;
  /** The records with `modified: true` (local changes not yet acknowledged), ordered by key; from an index, not a scan. */
  listModifiedRecords(identityId: string, datasetName: string): Promise<LocalRecord[]>;
  /**
   * What the dataset's live records count against its limits, kept up to date by every commit (not computed by
   * reading the records). `{ numRecords: 0, dataStorage: 0 }` for a dataset without live records.
   */
  getDatasetUsage(identityId: string, datasetName: string): Promise<DatasetUsage>;
  /** Applies the batch atomically; false (and nothing written) when an `expect` does not hold. */
  commit(batch: StoreBatch): Promise<boolean>;
  getSetting(name: string): Promise<string | undefined>;
  /**
   * Runs `fn` while holding the named exclusive lock, shared by every user of the same underlying storage
   * (other processes for SQLite, other tabs for IndexedDB). Released when `fn` settles or its holder dies. Waiting
   * for it ends with LockTimeoutError after `timeoutMs`, or with `signal`'s reason as soon as it aborts.
   */
  withLock<T>(name: string, fn: () => Promise<T>, options?: LockOptions): Promise<T>;
  close(): Promise<void>;
}

export interface LockOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The default dataset row for a change that creates one. */
export function datasetRow(identityId: string, datasetName: string, fields: DatasetFields): DatasetMetadata {
  return { identityId, datasetName, ...fields };
}
