// The local shapes of records and datasets that every store persists and the sync loop reasons about.

/** A version of a record this device sent in an UpdateRecords. */
export interface PushedVersion {
  value: string | null;
  deviceLastModifiedDate: number;
}

/** What UpdateRecords that may have reached the server carried for a record (kept until one is acknowledged). */
export interface PushJournal extends PushedVersion {
  /**
   * Earlier pushes of the record whose answers never came either, newest first (at most MAX_EARLIER_PUSHES). A push
   * given up on (a timeout) may still reach the server after a later push was sent; whichever lands first is
   * stored and the other refused (both are based on the same SyncCount or older), so a pull may show any of them as
   * our own write. Absent: none.
   */
  earlier?: PushedVersion[];
}

const MAX_EARLIER_PUSHES = 4;

const samePushedVersion = (a: PushedVersion, b: PushedVersion) => a.value === b.value && a.deviceLastModifiedDate === b.deviceLastModifiedDate;

/**
 * The journal of a push of `record` (its value now), keeping what an earlier unanswered push of it carried. A push
 * based on count 0 drops the earlier removals: based on 0 too, one landing late does nothing (the server stores no
 * removal of a key it never held, and refuses it once the key is stored), so they keep no place from the puts.
 */
export function journalPush(record: LocalRecord): PushJournal {
  const version = { value: record.value, deviceLastModifiedDate: record.deviceLastModifiedDate };
  const before = record.pushing;
  if (before === null || samePushedVersion(before, version)) return before ?? version;
  const earlier = [{ value: before.value, deviceLastModifiedDate: before.deviceLastModifiedDate }, ...(before.earlier ?? [])];
  const harmful = record.syncCount === 0 ? earlier.filter((pushed) => pushed.value !== null) : earlier;
  return { ...version, earlier: harmful.slice(0, MAX_EARLIER_PUSHES) };
}

/** Whether `remote` is what one of this device's unanswered pushes of the record carried. */
export function isJournaled(journal: PushJournal | null, remote: PushedVersion): boolean {
  return journal !== null && (samePushedVersion(journal, remote) || (journal.earlier ?? []).some((version) => samePushedVersion(version, remote)));
}

function sameJournal(a: PushJournal | null, b: PushJournal | null): boolean {
  if (a === null || b === null) return a === b;
  const earlierA = a.earlier ?? [];
  const earlierB = b.earlier ?? [];
  return samePushedVersion(a, b) && earlierA.length === earlierB.length && earlierA.every((version, i) => samePushedVersion(version, earlierB[i]!));
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
    sameJournal(a.pushing, b.pushing)
  );
}

export const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
