// The local shapes of records and datasets that every store persists and the sync loop reasons about.

/** What an UpdateRecords that may have reached the server carried for a record (kept until it is acknowledged). */
export interface PushJournal {
  value: string | null;
  deviceLastModifiedDate: number;
}

/** One record as a device holds it. */
export interface LocalRecord {
  key: string;
  /** `null` is a removed record (a tombstone), kept so the removal reaches the server and other devices. */
  value: string | null;
  /** The server SyncCount this local version is based on; 0 when the record has never been on the server. */
  syncCount: number;
  /** True while a local change has not been acknowledged by the server. */
  modified: boolean;
  /** When this device (or the device that wrote it) changed it, ms since the epoch. */
  deviceLastModifiedDate: number;
  /** Server time of the last change it knows of (local time for local changes), ms since the epoch. */
  lastModifiedDate: number;
  /** Who changed it on the server (identity id or developer key id); '' for a change not yet synced. */
  lastModifiedBy: string;
  /** Set just before an UpdateRecords is sent, so a lost response is recognised on the next pull (never a false conflict). */
  pushing: PushJournal | null;
}

/** A dataset as a device holds it. */
export interface DatasetMetadata {
  identityId: string;
  datasetName: string;
  /**
   * The highest dataset SyncCount whose changes are all reflected locally; 0 = never synced. The next pull asks
   * for changes after it, so it only ever moves to a count the device has fully seen.
   */
  lastSyncCount: number;
  /** Deleted locally; the next synchronize() deletes it on the server and then drops it. */
  deleted: boolean;
  /** Set on a dataset renamed `<name>.<oldIdentityId>` by an identity change: the dataset it should be merged into. */
  mergedInto: string | null;
  creationDate: number;
  lastModifiedDate: number;
  lastModifiedBy: string;
  /** When a synchronize() last completed, ms since the epoch; 0 = never. */
  lastSyncDate: number;
  /** Size and record count the server reported in the last refreshDatasetMetadata(); -1 = unknown. */
  remoteDataStorage: number;
  remoteNumRecords: number;
}

export type DatasetFields = Omit<DatasetMetadata, 'identityId' | 'datasetName'>;

/** What a dataset's live records (value not null) count against the service's limits; names as AWS's Dataset. */
export interface DatasetUsage {
  /** Live records. */
  numRecords: number;
  /** UTF-8 bytes of their keys and values. */
  dataStorage: number;
}

export function newDatasetFields(now: number): DatasetFields {
  return {
    lastSyncCount: 0,
    deleted: false,
    mergedInto: null,
    creationDate: now,
    lastModifiedDate: now,
    lastModifiedBy: '',
    lastSyncDate: 0,
    remoteDataStorage: -1,
    remoteNumRecords: -1,
  };
}

/** Field-by-field equality: the compare in the stores' compare-and-set. */
export function sameRecord(a: LocalRecord | undefined, b: LocalRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.key === b.key &&
    a.value === b.value &&
    a.syncCount === b.syncCount &&
    a.modified === b.modified &&
    a.deviceLastModifiedDate === b.deviceLastModifiedDate &&
    a.lastModifiedDate === b.lastModifiedDate &&
    a.lastModifiedBy === b.lastModifiedBy &&
    (a.pushing === null || b.pushing === null
      ? a.pushing === b.pushing
      : a.pushing.value === b.pushing.value && a.pushing.deviceLastModifiedDate === b.pushing.deviceLastModifiedDate)
  );
}

export const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
