// The Store contract: everything cognisync persists, behind one async interface that the SQLite and
// PostgreSQL stores both implement and one contract suite (store.contract.ts) checks.
// Times are epoch milliseconds; every method that changes several rows runs in one transaction.
import { NotAuthorizedException, ResourceNotFoundException } from '../errors.js';
import type { Limits } from '../limits.js';
import type { RecordPatch } from '../core/record-patches.js';
import type { BulkPublishState } from '../core/bulk-publish.js';

/** Where committed changes of a pool go: its Cognito Stream, when streaming is ENABLED. */
export interface StreamTarget {
  streamName: string;
}

/**
 * A unit of work for the delivery workers, written in the same transaction as the change it describes.
 * Entries of one partition are delivered one after another, in the order they were written.
 */
export interface OutboxEntry {
  kind: 'stream' | 'bulk-publish' | 'bulk-finish' | 'push';
  partitionKey: string;
  payload: unknown;
  /** Set on every entry of a pool's running bulk publish (so the job can count and cancel them). */
  bulkPoolId?: string;
}

export interface ClaimedOutboxEntry extends OutboxEntry {
  outboxId: number;
  attempts: number;
  createdAt: number;
}

export interface OutboxBacklog {
  pending: number;
  oldestCreatedAt: number | undefined;
}

export interface IdentityPoolRecord {
  identityPoolId: string;
  identityPoolName: string;
  /** The Cognito Identity `IdentityPool` shape as last created or updated (without the id). */
  description: Record<string, unknown>;
  creationDate: number;
  lastModifiedDate: number;
}

export interface PushSyncConfiguration {
  ApplicationArns?: string[];
  RoleArn?: string;
}

export interface CognitoStreamsConfiguration {
  StreamName?: string;
  RoleArn?: string;
  StreamingStatus?: 'ENABLED' | 'DISABLED';
}

export interface PoolSyncSettings {
  pushSync?: PushSyncConfiguration;
  cognitoStreams?: CognitoStreamsConfiguration;
  /** Cognito event type → function (e.g. `SyncTrigger` → Lambda ARN). */
  cognitoEvents: Record<string, string>;
  bulkPublish: BulkPublishState;
}

export interface DatasetKey {
  identityPoolId: string;
  identityId: string;
  datasetName: string;
}

export interface DatasetRecord extends DatasetKey {
  creationDate: number;
  lastModifiedDate: number;
  lastModifiedBy: string;
  /** The dataset's SyncCount: how many UpdateRecords have committed to it (it never repeats, even across deletion). */
  syncCount: number;
  dataStorage: number;
  numRecords: number;
}

export interface StoredRecord {
  key: string;
  /** null for a removed record (a tombstone kept so other devices learn of the removal). */
  value: string | null;
  syncCount: number;
  lastModifiedDate: number;
  lastModifiedBy: string;
  deviceLastModifiedDate: number;
}

/** Position after which the next ListRecords page starts. */
export interface RecordCursor {
  syncCount: number;
  key: string;
}

/** The span of SyncCounts a dataset skipped when its database was marked restored, (from, to); `to` 0: never. */
export interface RestoredSpan {
  from: number;
  to: number;
}

export interface RecordsPage {
  /** The live dataset, or undefined when it does not exist (never written, or deleted). */
  dataset: DatasetRecord | undefined;
  /** Live datasets of the identity that a merge brought in for this dataset (`<datasetName>.<sourceIdentityId>`). */
  mergedDatasetNames: string[];
  /** The dataset's SyncCount when it was last deleted (0 if never); a client synced at or before it must drop its copy. */
  deletedAtSyncCount: number;
  /** The SyncCounts it skipped when its database was marked restored (0, 0 if never; core/restore.ts). */
  restored: RestoredSpan;
  /** The SyncCount through which its oldest tombstones were dropped (0 if never; core/tombstones.ts). */
  tombstonesDroppedThrough: number;
  records: StoredRecord[];
  /** Set when more records follow this page. */
  next: RecordCursor | undefined;
}

/** Where a pool's change notifications go: its PushSync platform applications (SNS). */
export interface PushTarget {
  applicationArns: string[];
}

/** A committed change to a dataset, as live listeners receive it. */
export interface ChangeEvent {
  identityPoolId: string;
  identityId: string;
  datasetName: string;
  /** The dataset's SyncCount after the change (for a deletion: the count it was deleted at). */
  syncCount: number;
  /** The DeviceId the writer gave, so that device need not be told of its own change. */
  deviceId?: string;
}

export interface UpdateRecordsRequest extends DatasetKey {
  /** The writer's DeviceId (UpdateRecords' DeviceId member), passed on to change listeners. */
  deviceId?: string;
  patches: RecordPatch[];
  now: number;
  modifiedBy: string;
  limits: Limits;
  /** When set, the change's Cognito Streams records join the outbox in the same transaction. */
  stream?: StreamTarget;
  /** When set, a push notification per subscribed device (except the writer's) joins the outbox too. */
  push?: PushTarget;
  /**
   * The issued (identity) credentials the write was authenticated with. A dataset is created or revived only while
   * they still exist, checked under the identity's lock: DeleteIdentities may have run since the request was
   * authenticated, and must not leave a dataset behind (NotAuthorizedException).
   */
  issuedAccessKeyId?: string;
  /** The dataset SyncCount the request's SyncSessionToken was issued at; a deletion since then is a conflict (applyRecordPatches). */
  sessionSyncCount?: number;
}

/** A write authenticated with credentials that DeleteIdentities removed while it ran. */
/** SubscribeToDataset's device is not (or no longer) registered for the identity. */
export const deviceNotRegistered = (identityId: string, deviceId: string) =>
  new ResourceNotFoundException(`Device '${deviceId}' is not registered for identity '${identityId}'.`);

export const revokedWhileWriting = (identityId: string) => new NotAuthorizedException(`The credentials of this request were revoked while it ran (identity ${identityId} was deleted).`);

export interface UpdateRecordsResult {
  dataset: DatasetRecord;
  /** A record for every patch, in order: its new version (for a removed key the dataset never held, answered but not stored). */
  records: StoredRecord[];
}

export interface IdentityUsage {
  identityPoolId: string;
  identityId: string;
  datasetCount: number;
  dataStorage: number;
  lastModifiedDate: number | undefined;
}

export interface IdentityPoolUsage {
  identityPoolId: string;
  syncSessionsCount: number;
  dataStorage: number;
  lastModifiedDate: number | undefined;
}

export interface DeviceRecord {
  identityPoolId: string;
  identityId: string;
  deviceId: string;
  platform: string;
  token: string;
  creationDate: number;
}

export interface Login {
  /** The provider name (Logins map key): a developer provider, an OIDC provider, `cognito-identity.amazonaws.com`… */
  providerName: string;
  /** Who the provider says the user is: a developer user identifier or a token's subject. */
  userIdentifier: string;
  /** For a presented cognisync (Cognito) token: when it was issued, epoch ms to the second. Never stored. */
  issuedAt?: number;
  /** For a presented cognisync (Cognito) token: whether it was issued to the identity as authenticated. Never stored. */
  authenticated?: boolean;
}

export interface IdentityRecord {
  identityPoolId: string;
  identityId: string;
  logins: Login[];
  creationDate: number;
  lastModifiedDate: number;
  /**
   * True once an unlink removed the identity's last login: as AWS documents for UnlinkIdentity and
   * UnlinkDeveloperIdentity, the identity is then inaccessible (its id alone must not open it as an unauthenticated
   * one), until the developer links a login to it again. Absent (false) otherwise.
   */
  inaccessible?: boolean;
  /** Cognito tokens of the identity issued before this time (epoch ms) prove nothing: set with `inaccessible`, kept after. */
  tokensNotBefore?: number;
}

/**
 * How long expired temporary credentials stay on file: a client still signing with them (another device of
 * the identity, a request in flight during a refresh) must get ExpiredTokenException, its cue to refresh,
 * not UnrecognizedClientException. Both stores purge only credentials older than this.
 */
export const EXPIRED_CREDENTIALS_RETENTION_MS = 24 * 3600_000;

export interface IssuedCredentialsRecord {
  accessKeyId: string;
  identityPoolId: string;
  identityId: string;
  /** Epoch ms after which requests signed with these credentials are refused. */
  expiration: number;
}

/**
 * Issued credentials as a request's signature check reads them: with the sync settings of their pool, read in
 * the same statement, so that a sync request by an identity reads its pool row once (see defineSyncOperation).
 */
export interface IssuedCredentials extends IssuedCredentialsRecord {
  poolSettings: PoolSyncSettings;
}

export interface PoolRoles {
  Roles?: Record<string, string>;
  RoleMappings?: Record<string, unknown>;
}

/** Why linking a login failed: it already belongs to another identity of the pool. */
export interface LoginOwnedElsewhere {
  ownedBy: string;
}

/**
 * Why linking logins was refused: one belongs to another identity of the pool (`ownedBy`), or the identity already
 * holds another user of its provider (`providerInUse`; see ProviderRule), or is no longer as the caller read it
 * (`changedMeanwhile`; see LinkExpectation).
 */
export type LinkRefusal = LoginOwnedElsewhere | { providerInUse: string } | { changedMeanwhile: true };

/** What the caller of linkLogins read the identity to hold; a link to an identity that changed since is refused. */
export interface LinkExpectation {
  /**
   * The identity holds no login beyond these and those being linked: a guest identity read with no login is still
   * one when a user's login is linked to it, not another user's by then.
   */
  holdsOnly?: readonly Login[];
  /**
   * The identity still holds these logins (read as their owner): a login unlinked meanwhile (UnlinkIdentity,
   * UnlinkDeveloperIdentity) must not be linked back by a sign-in that found it there a moment before.
   */
  stillHolds?: readonly Login[];
}

/**
 * The rule every link and merge keeps, inside its own transaction: an identity holds at most one user of each
 * provider but `developerProvider` (the pool's, which may have several users per identity). Only what the call adds
 * is checked, so identities that older builds gave two users of one provider keep working.
 */
export interface ProviderRule {
  developerProvider: string | undefined;
}

export interface Store {
  /** Applies pending schema migrations (PostgreSQL: and marks a database found restored, PostgresStore.markIfRestored). */
  migrate(): Promise<void>;
  /**
   * Marks the database as restored from a backup at `now` (core/restore.ts): every dataset's SyncCount jumps to
   * max(count + RESTORE_SYNC_COUNT_GAP, now) and remembers the span it skipped (a dataset marked before keeps its first span's start, so a
   * later mark never forgets the devices of an earlier lost time), and datasets created from then on start past the mark. Returns
   * how many datasets were marked.
   */
  markRestored(now: number): Promise<number>;
  close(): Promise<void>;
  /** Whether the database answers (for `/ready`). */
  ping(): Promise<boolean>;

  /** Returns the stored value of a setting, storing `value` first when there is none (first writer wins). */
  getOrCreateSetting(name: string, value: string): Promise<string>;

  createIdentityPool(pool: IdentityPoolRecord, maxPools: number): Promise<void>;
  getIdentityPool(identityPoolId: string): Promise<IdentityPoolRecord | undefined>;
  /** Pools ordered by id, starting after `afterId`. */
  listIdentityPools(afterId: string | undefined, limit: number): Promise<IdentityPoolRecord[]>;
  /** Replaces name and description; false when the pool does not exist. */
  updateIdentityPool(pool: Omit<IdentityPoolRecord, 'creationDate'>): Promise<boolean>;
  /** Deletes the pool and everything stored under it; false when it did not exist. */
  deleteIdentityPool(identityPoolId: string): Promise<boolean>;

  getPoolSyncSettings(identityPoolId: string): Promise<PoolSyncSettings | undefined>;
  /** Replaces the members given (PushSync and/or CognitoStreams), keeps the others, returns the result. */
  setPoolConfiguration(identityPoolId: string, changes: Pick<PoolSyncSettings, 'pushSync' | 'cognitoStreams'>): Promise<PoolSyncSettings | undefined>;
  /** Merges event bindings: an empty function removes that event type. */
  setCognitoEvents(identityPoolId: string, changes: Record<string, string>): Promise<void>;
  /**
   * Runs `decide` on the pool's settings in one transaction and stores the bulk publish state it returns; when
   * that state is IN_PROGRESS, the bulk publish job joins the outbox in the same transaction.
   */
  startBulkPublish(identityPoolId: string, decide: (settings: PoolSyncSettings) => BulkPublishState, now: number): Promise<BulkPublishState | undefined>;
  setBulkPublishState(identityPoolId: string, state: BulkPublishState): Promise<void>;

  describeDataset(key: DatasetKey): Promise<DatasetRecord | undefined>;
  /** Live datasets of an identity ordered by name, starting after `afterName`. */
  listDatasets(identityPoolId: string, identityId: string, afterName: string | undefined, limit: number): Promise<DatasetRecord[]>;
  /** Deletes a live dataset and its records for good; returns what it was, or undefined if there was none. */
  deleteDataset(key: DatasetKey, now: number, stream?: StreamTarget, push?: PushTarget): Promise<DatasetRecord | undefined>;
  /** The current versions of some records of a live dataset (absent keys are left out). */
  getRecords(key: DatasetKey, keys: readonly string[]): Promise<Map<string, StoredRecord>>;
  /** Live datasets of a pool ordered by (identity, name), after `after`. */
  listPoolDatasets(identityPoolId: string, after: { identityId: string; datasetName: string } | undefined, limit: number): Promise<DatasetRecord[]>;
  /** Records with SyncCount > lastSyncCount, ordered by (SyncCount, key), after `after`. */
  listRecords(key: DatasetKey, lastSyncCount: number, after: RecordCursor | undefined, limit: number): Promise<RecordsPage>;
  /** Applies all patches or none (conflicts and limits per core/record-patches.ts), creating the dataset if needed. */
  updateRecords(request: UpdateRecordsRequest): Promise<UpdateRecordsResult>;

  describeIdentityUsage(identityPoolId: string, identityId: string): Promise<IdentityUsage>;
  describeIdentityPoolUsage(identityPoolId: string): Promise<IdentityPoolUsage>;
  /** Usage of pools ordered by id, starting after `afterId`. */
  listIdentityPoolUsage(afterId: string | undefined, limit: number): Promise<IdentityPoolUsage[]>;

  /**
   * Returns the device for (identity, platform, token), registering it under `device.deviceId` if new. Beyond
   * `maxDevices` devices of the identity, the others registered longest ago go, with their subscriptions (a token
   * replaced by a new one is not unregistered by the app that held it).
   */
  registerDevice(device: DeviceRecord, maxDevices?: number): Promise<DeviceRecord>;
  getDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<DeviceRecord | undefined>;
  /** Subscribes the device to the dataset; false (nothing stored) when it already holds `maxSubscriptions` others. */
  subscribe(key: DatasetKey, deviceId: string, now: number, maxSubscriptions?: number): Promise<boolean>;
  unsubscribe(key: DatasetKey, deviceId: string): Promise<void>;
  listSubscriptions(key: DatasetKey): Promise<string[]>;
  /** Unregisters a device (and its subscriptions), e.g. when its push token is dead. */
  deleteDevice(identityPoolId: string, identityId: string, deviceId: string): Promise<void>;

  /**
   * Creates an identity with the given logins (none for an unauthenticated identity), all or nothing: when one of them
   * already belongs to an identity of the pool (another request registered the same user first), nothing is created
   * and that identity is reported. ResourceNotFoundException when the pool no longer exists.
   */
  createIdentity(identity: IdentityRecord): Promise<LoginOwnedElsewhere | undefined>;
  getIdentity(identityId: string): Promise<IdentityRecord | undefined>;
  /** The identity of the pool a login belongs to. */
  findIdentityByLogin(identityPoolId: string, login: Login): Promise<string | undefined>;
  /**
   * Links logins to an identity (which makes an inaccessible one accessible again), all or none: those already linked
   * to it are left as they are; when one belongs to another identity of the pool, or would be a second user of a
   * provider on the identity (ProviderRule), nothing is linked and the refusal says why; so is one to an identity no
   * longer as `expect` says the caller read it (`changedMeanwhile`). ResourceNotFoundException when the identity no
   * longer exists (deleted since it was read).
   */
  linkLogins(identityPoolId: string, identityId: string, logins: readonly Login[], now: number, rule: ProviderRule, expect?: LinkExpectation): Promise<LinkRefusal | undefined>;
  /**
   * Unlinks the identity's logins of a provider (only `userIdentifier`'s when given); returns how many went. Removing
   * its last login makes the identity inaccessible and revokes its issued credentials, in the same transaction.
   */
  unlinkLogins(identityId: string, providerName: string, userIdentifier: string | undefined, now: number): Promise<number>;
  /** Identities of a pool ordered by id, starting after `afterId`; without inaccessible ones when `hideDisabled`. */
  listIdentities(identityPoolId: string, afterId: string | undefined, limit: number, hideDisabled?: boolean): Promise<IdentityRecord[]>;
  /** Deletes an identity with its logins, credentials, datasets, devices and subscriptions. */
  deleteIdentity(identityId: string): Promise<boolean>;
  /**
   * Merges `sourceIdentityId` into `destinationIdentityId`: logins move over, the source's datasets become the
   * destination's `<name>.<sourceIdentityId>` (reported as MergedDatasetNames), the source identity is deleted.
   * A no-op when both are the same. ResourceConflictException (nothing changed) when the destination already has
   * a live dataset of one of those names, or when the source holds a user of a provider the destination holds
   * another user of (ProviderRule); ResourceNotFoundException when either identity no longer exists.
   */
  mergeIdentities(identityPoolId: string, sourceIdentityId: string, destinationIdentityId: string, now: number, rule: ProviderRule): Promise<void>;

  /** ResourceNotFoundException when the identity no longer exists (deleted since it was read): nothing is saved. */
  saveIssuedCredentials(credentials: IssuedCredentialsRecord): Promise<void>;
  /** Undefined for an unknown key, and for a key whose identity pool is gone. */
  getIssuedCredentials(accessKeyId: string): Promise<IssuedCredentials | undefined>;

  getPoolRoles(identityPoolId: string): Promise<PoolRoles | undefined>;
  setPoolRoles(identityPoolId: string, roles: PoolRoles): Promise<boolean>;

  enqueueOutbox(entries: readonly OutboxEntry[], now: number): Promise<void>;
  /**
   * Leases up to `limit` due entries for `owner` until `now + leaseMs`: only the oldest entry of each partition
   * (so a partition is delivered in order) and none another live lease holds (so one process delivers each).
   */
  claimOutbox(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedOutboxEntry[]>;
  /** Removes delivered entries. */
  completeOutbox(outboxIds: readonly number[]): Promise<void>;
  /** Releases an entry for another try at `nextAttemptAt`, counting a failed attempt when `error` is given. */
  retryOutbox(outboxId: number, nextAttemptAt: number, error?: string): Promise<void>;
  /**
   * Replaces a finished entry with its follow-ups in one transaction (how the bulk publish job advances). With
   * `unchanged`, only if each dataset is still at that SyncCount (false, and nothing written, otherwise); a write in
   * flight on one of them is waited for, and one that comes later queues its own entries after these. So a snapshot
   * of a dataset read before never lands in the outbox behind a change made after it.
   */
  advanceOutbox(outboxId: number, next: readonly OutboxEntry[], now: number, unchanged?: ReadonlyArray<DatasetKey & { syncCount: number }>): Promise<boolean>;
  /** Outbox entries of a pool's bulk publish, optionally of one kind. */
  countBulkOutbox(identityPoolId: string, kind?: OutboxEntry['kind']): Promise<number>;
  /** Drops every outbox entry of a pool's bulk publish (when it failed). */
  dropBulkOutbox(identityPoolId: string): Promise<void>;
  outboxBacklog(): Promise<OutboxBacklog>;
  /**
   * Keeps a stream payload (the records of an outbox entry's change too large for a Kinesis record) until `expiresAt`,
   * and returns its id: `payloadId`, or the id the entry's payload already has (each try of a delivery asks again).
   */
  putStreamPayload(outboxId: number, payloadId: string, body: string, expiresAt: number): Promise<string>;
  /** A stream payload not yet expired at `now`. */
  getStreamPayload(payloadId: string, now: number): Promise<string | undefined>;
  /** Removes the stream payloads expired at `now`; how many. */
  dropExpiredStreamPayloads(now: number): Promise<number>;

  /**
   * Calls `listener` after every committed UpdateRecords or DeleteDataset — on PostgreSQL from every process
   * sharing the database (LISTEN/NOTIFY), on SQLite from this process. Returns a function that stops watching.
   * `onGap` is called when changes may have been missed (PostgreSQL: the LISTEN connection is back after a drop).
   */
  watchChanges(listener: (event: ChangeEvent) => void, onGap?: () => void): Promise<() => Promise<void>>;
}
