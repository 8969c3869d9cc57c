// SyncManager: the entry point: identity and credentials, datasets, and the sync lock around each synchronize().
import { Dataset } from './dataset.ts';
import { CognitoSyncClientError, ServiceError, ValidationError } from './errors.ts';
import { IdentitySession, identitySetting, unknownIdentityId, writeVersionSetting } from './identity.ts';
import { isMergedDatasetName, moveLocalData } from './identity-change.ts';
import { LiveSyncConnection, type LiveSync, type LiveSyncOptions } from './live-sync.ts';
import { defaultLimits, validateDatasetName, type ClientLimits } from './limits.ts';
import { newDatasetFields, type DatasetMetadata } from './records.ts';
import type { LocalStore, StoreBatch } from './stores/store.ts';
import { defaultRetryPolicy, runSync, type RecentToken, type RetryPolicy, type SynchronizeOptions, type SyncSummary } from './sync-loop.ts';
import { CognitoIdentityApi, type Logins } from './transport/cognito-identity-api.ts';
import { CognitoSyncApi } from './transport/cognito-sync-api.ts';
import { nodeHttpExchange } from './transport/node-http.ts';
import type { AwsCredentialProvider, AwsCredentials } from './transport/signed-fetch.ts';

export interface SyncManagerOptions {
  /** `REGION:GUID` of the Cognito identity pool. */
  identityPoolId: string;
  /** Defaults to the region prefix of identityPoolId. */
  region?: string;
  /** One endpoint for Cognito Sync and Cognito Identity (a cognisync server); default: AWS's endpoints of `region`. */
  endpoint?: string;
  /** Cognito Identity endpoint when it differs from `endpoint`. */
  identityEndpoint?: string;
  /**
   * Any AWS credentials or credential provider (e.g. `fromCognitoIdentityPool(...)`). When absent, the manager
   * runs Cognito Identity itself: GetId (the id is cached in the store) + GetCredentialsForIdentity, refreshed
   * five minutes before expiry.
   */
  credentials?: AwsCredentials | AwsCredentialProvider;
  /** The identity id, if the app already knows it (required with credentials that do not report one). */
  identityId?: string;
  /** Logins for an authenticated identity (provider name → token). */
  logins?: Logins;
  store: LocalStore;
  /**
   * Sent as UpdateRecords' DeviceId, so that live sync can tell this device's own changes from others'. Default: a
   * random id made once per store and kept in it (see `manager.deviceId()`).
   */
  deviceId?: string;
  /** Client-side limits; defaults are AWS's (and cognisync's). */
  limits?: Partial<ClientLimits>;
  retry?: Partial<RetryPolicy>;
  /** How long synchronize() waits for another tab or process syncing the same dataset (default 60 s). */
  lockTimeoutMs?: number;
  /**
   * How long an API call waits for its answer to begin (status and headers; default 30 s), and then between parts of
   * its body, before it fails with NetworkError. The whole body, a page of up to 1 MB, may take longer.
   */
  answerTimeoutMs?: number;
  /**
   * A sync that changes keys the server has pushes first (one round trip, no pull) when this manager pulled the
   * dataset less than this long ago (default 5 min; see "Push first" in the README). 0: every sync pulls first, as the
   * AWS SDKs' sync managers do.
   */
  pushFirstWithinMs?: number;
  /**
   * Called after local data moved to a new identity id (login to an identity that already existed, merges), and when
   * this manager found that another manager, tab or process sharing its store changed the device's identity (a login
   * there; a logout, to `unknown`): then `datasets` is empty, and a page still showing the previous user should
   * reload, since this manager's writes now go to the identity stored.
   */
  onIdentityChanged?: (change: { previousIdentityId: string; identityId: string; datasets: string[] }) => void | Promise<void>;
  /**
   * A fetch implementation for every request. Default: globalThis.fetch, except that in Node (≥ 20.16) the API calls
   * go over node:http / node:https and their global agents, as the AWS SDK v3 does (about 1 ms less per request); pass
   * `fetch: globalThis.fetch` to send those through fetch too (e.g. for an undici dispatcher or a fetch mock).
   */
  fetch?: typeof fetch;
  /** @internal Clock and randomness, for tests. */
  now?: () => number;
  random?: () => number;
}

/** Store setting holding the generated device id. */
const deviceIdSetting = 'deviceId';

/** A random UUID-shaped id; crypto.getRandomValues works on plain-http origins too, where randomUUID does not exist. */
function randomDeviceId(random: () => number): string {
  const bytes = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const awsEndpoint = (service: string, region: string) => `https://${service}.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;

/**
 * Keeps an identity's datasets on this device and synchronizes them with Cognito Sync (or cognisync).
 * Several managers may share a store, also across processes (SQLite) or tabs (IndexedDB).
 */
export class SyncManager {
  readonly store: LocalStore;
  readonly identityPoolId: string;
  readonly region: string;
  readonly limits: ClientLimits;
  readonly now: () => number;
  private readonly retry: RetryPolicy;
  private readonly session: IdentitySession;
  private readonly syncApi: CognitoSyncApi;
  private readonly random: () => number;
  private readonly opened = new Set<string>();
  private readonly liveSyncs = new Set<LiveSyncConnection>();
  /** Each dataset's latest SyncSessionToken, so that a sync soon after can push before it pulls (see sync-loop.ts). */
  private readonly recentTokens = new Map<string, RecentToken>();
  private deviceIdPromise: Promise<string> | undefined;

  constructor(private readonly options: SyncManagerOptions) {
    if (!options.identityPoolId || !/^[\w-]+:[0-9a-f-]+$/.test(options.identityPoolId)) {
      throw new ValidationError('InvalidIdentityPoolId', `identityPoolId must look like REGION:GUID, got ${JSON.stringify(options.identityPoolId)}`);
    }
    if (!options.store) throw new ValidationError('MissingStore', 'Pass a store: new MemoryStore(), new SqliteStore(path) or new IndexedDbStore(name)');
    this.store = options.store;
    this.identityPoolId = options.identityPoolId;
    this.region = options.region ?? options.identityPoolId.split(':')[0]!;
    this.limits = { ...defaultLimits, ...options.limits };
    this.retry = { ...defaultRetryPolicy, ...options.retry };
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    // The app's fetch carries everything; without one, Node's API calls use node:http (see node-http.ts).
    const exchange = options.fetch ? undefined : nodeHttpExchange();
    const identityApi = new CognitoIdentityApi({
      endpoint: options.identityEndpoint ?? options.endpoint ?? awsEndpoint('cognito-identity', this.region),
      region: this.region,
      fetch: fetchImpl,
      exchange,
      answerTimeoutMs: options.answerTimeoutMs,
    });
    this.session = new IdentitySession({
      identityPoolId: options.identityPoolId,
      store: this.store,
      api: identityApi,
      credentials: options.credentials,
      identityId: options.identityId,
      logins: options.logins,
      now: this.now,
      adopt: (previous, next) => this.adopt(previous, next),
      claim: (identityId) => this.claim(identityId),
    });
    this.syncApi = new CognitoSyncApi({
      endpoint: options.endpoint ?? awsEndpoint('cognito-sync', this.region),
      region: this.region,
      fetch: fetchImpl,
      exchange,
      answerTimeoutMs: options.answerTimeoutMs,
      credentials: () => this.session.credentials(),
    });
  }

  /** The identity id; asks Cognito Identity (GetId) the first time when none is known. */
  identityId(): Promise<string> {
    return this.session.identityId();
  }

  /** AWS credentials of the identity (cached; refreshed before expiry). */
  credentials(): Promise<AwsCredentials> {
    return this.session.credentials();
  }

  /**
   * The id this device sends as UpdateRecords' DeviceId: the `deviceId` option, else a random id created on first
   * use and kept in the store (so every manager and tab sharing the store is one device, across restarts).
   */
  deviceId(): Promise<string> {
    if (this.options.deviceId) return Promise.resolve(this.options.deviceId);
    this.deviceIdPromise ??= this.store
      .withLock(deviceIdSetting, async () => {
        const existing = await this.store.getSetting(deviceIdSetting);
        if (existing) return existing;
        const created = randomDeviceId(this.random);
        await this.store.commit({ settings: { [deviceIdSetting]: created } });
        return created;
      })
      .catch((error: unknown) => {
        this.deviceIdPromise = undefined;
        throw error;
      });
    return this.deviceIdPromise;
  }

  /**
   * Follows the identity's live stream of changes (cognisync's `GET /live/…`, Server-Sent Events) and synchronizes a
   * watched dataset soon after another device changed it, without polling. On every (re)connection it synchronizes
   * every watched dataset once, since changes made while disconnected are not replayed. Changes this device made
   * itself (same DeviceId) cause no sync. Returns a handle whose `stop()` closes the stream. Not an AWS API: against
   * AWS Cognito Sync the stream cannot open and `onError` reports each attempt.
   */
  startLiveSync(options: LiveSyncOptions = {}): LiveSync {
    const connection = new LiveSyncConnection(
      {
        api: this.syncApi,
        identityPoolId: this.identityPoolId,
        identityId: () => this.identityId(),
        deviceId: () => this.deviceId(),
        openedDatasets: () => [...this.opened],
        localDataset: async (name) => this.store.getDataset(await this.localIdentityId(), name),
        synchronize: (name, syncOptions) => this.synchronizeDataset(name, syncOptions),
        expireCredentials: () => this.session.expireCredentials(),
        random: this.random,
        onStopped: () => this.liveSyncs.delete(connection),
      },
      options,
    );
    this.liveSyncs.add(connection);
    connection.start();
    return connection;
  }

  /** @internal The identity whose local data reads and writes use: the known id, or a placeholder until one is known. */
  /** The identity local reads are under: the one this manager knows, else the placeholder until the device learns its id. */
  async localIdentityId(): Promise<string> {
    return (await this.session.known()) ?? unknownIdentityId;
  }

  /**
   * @internal The identity a local write goes under: the one stored, followed first when another manager, tab or
   * process on the store changed it (a logout there, a login). Reads do not pay for the look (one more store read
   * each, 1.5-2 × a SQLite get): after a logout elsewhere they find the logged-out identity's data gone, and this
   * manager's next write or sync moves them over.
   */
  async writeIdentityId(): Promise<string> {
    await this.followStore();
    return this.localIdentityId();
  }

  /** Opens a local dataset, creating it (locally) if needed. Works offline. */
  async openOrCreateDataset(name: string): Promise<Dataset> {
    validateDatasetName(name);
    for (let attempt = 0; attempt < 20; attempt++) {
      const identityId = await this.writeIdentityId();
      if (!(await this.store.getDataset(identityId, name))) {
        await this.checkDatasetQuota(identityId, name);
        // Under the identity still stored (see writeGuard), else again under the one that is now.
        if (!(await this.store.commit({ datasets: [{ identityId, datasetName: name, metadata: newDatasetFields(this.now()) }], ...this.writeGuard(identityId) }))) continue;
      }
      this.opened.add(name);
      return new Dataset(this, name);
    }
    throw new ValidationError('WriteContention', `Dataset ${name}: creating it kept racing identity changes`);
  }

  /** The datasets on this device (including ones deleted locally and not yet synchronized). */
  async listDatasets(): Promise<DatasetMetadata[]> {
    return this.store.listDatasets(await this.localIdentityId());
  }

  /** Fetches the identity's dataset list from the server (ListDatasets) into the local metadata, and returns it. */
  async refreshDatasetMetadata(): Promise<DatasetMetadata[]> {
    const identityId = await this.identityId();
    const remote = await this.syncApi.listDatasets(this.identityPoolId, identityId);
    await this.store.commit({
      datasets: await Promise.all(
        remote.map(async (d) => {
          const local = await this.store.getDataset(identityId, d.datasetName);
          return {
            identityId,
            datasetName: d.datasetName,
            metadata: {
              ...(local ? {} : newDatasetFields(this.now())),
              creationDate: d.creationDate,
              lastModifiedDate: d.lastModifiedDate,
              lastModifiedBy: d.lastModifiedBy,
              remoteDataStorage: d.dataStorage,
              remoteNumRecords: d.numRecords,
            },
          };
        }),
      ),
    });
    return this.listDatasets();
  }

  /**
   * Logs in: the identity's credentials are requested with `logins`. An anonymous identity becomes the
   * authenticated one (same id, nothing moves); if the login already belongs to another identity, local data
   * moves to it (see onIdentityChanged). Returns the identity id.
   */
  setLogins(logins: Logins): Promise<string> {
    return this.session.setLogins(logins);
  }

  /** Moves local data to `identityId` and uses it from now on (for apps that bring their own credentials). */
  changeIdentity(identityId: string): Promise<void> {
    return this.session.switchTo(identityId);
  }

  /**
   * Deletes every local dataset of the current identity and forgets the identity (e.g. on logout). Live syncs of
   * this manager are stopped first: one left running would ask for a new identity at once.
   */
  async wipeData(): Promise<void> {
    await Promise.all([...this.liveSyncs].map((live) => live.stop()));
    // One commit removes the data and the identity, and only if no local write came in between (it would be left
    // behind under the forgotten identity): a write after it goes under the placeholder.
    await this.session.forget(async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const identityId = await this.writeIdentityId();
        const expectSettings = await this.writeVersionExpectation();
        const datasets = await this.store.listDatasets(identityId);
        const purge = datasets.map((d) => ({ identityId, datasetName: d.datasetName, purge: true, metadata: null }));
        if (await this.store.commit({ datasets: purge, settings: { [identitySetting(this.identityPoolId)]: null }, expectSettings })) return;
      }
      throw new Error('wipeData kept racing local writes');
    });
  }

  /**
   * @internal One sync; when the service refuses the credentials it was given while they still looked valid here
   * (revoked by an identity merge or deletion, or expired early by the server's clock), they are dropped and, if
   * their source yields other ones, the sync runs once more with those. Otherwise every sync until their local
   * expiry (up to an hour) would fail the same way.
   */
  async synchronizeDataset(datasetName: string, options: SynchronizeOptions): Promise<SyncSummary> {
    // Another tab's logout must not be undone by this one pulling the old identity's data back into the store.
    await this.followStore();
    const used = await this.session.credentials();
    try {
      return await this.synchronizeOnce(datasetName, options);
    } catch (error) {
      if (!(error instanceof ServiceError && (error.name === 'UnrecognizedClientException' || error.name === 'ExpiredTokenException'))) throw error;
      this.session.expireCredentials();
      if ((await this.session.credentials()).accessKeyId === used.accessKeyId) throw error;
      return this.synchronizeOnce(datasetName, options);
    }
  }

  private async synchronizeOnce(datasetName: string, options: SynchronizeOptions): Promise<SyncSummary> {
    validateDatasetName(datasetName);
    // Credentials first: they can reveal a new identity id, which moves local data before anything syncs.
    await this.session.credentials();
    const identityId = await this.session.identityId();
    const deviceId = await this.deviceId();
    return this.store.withLock(
      `sync:${identityId}/${datasetName}`,
      () =>
        runSync(
          {
            store: this.syncStore(identityId),
            api: this.syncApi,
            identityPoolId: this.identityPoolId,
            identityId,
            datasetName,
            deviceId,
            limits: this.limits,
            retry: this.retry,
            now: this.now,
            random: this.random,
            recentTokens: this.recentTokens,
            pushFirstWithinMs: this.options.pushFirstWithinMs,
          },
          options,
        ),
      // Aborting gives up the wait too: another sync may hold the lock for as long as its onConflict waits.
      { timeoutMs: this.options.lockTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) },
    );
  }

  /**
   * @internal Refuses a new local dataset beyond the per-identity limit. A merged identity's dataset
   * (`<name>.<identityId>`) is exempt: the server keeps it past the limit (a merge never drops data), and the app
   * must be able to open it to copy and delete it, as onDatasetsMerged asks.
   */
  async checkDatasetQuota(identityId: string, datasetName: string): Promise<void> {
    if (isMergedDatasetName(datasetName)) return;
    const others = (await this.store.listDatasets(identityId)).filter((d) => !d.deleted && d.datasetName !== datasetName);
    if (others.length >= this.limits.maxDatasetsPerIdentity) {
      throw new ValidationError('TooManyDatasets', `Identity already has ${others.length} datasets; the limit is ${this.limits.maxDatasetsPerIdentity}`);
    }
  }

  private async adopt(previousIdentityId: string, identityId: string): Promise<void> {
    const setting = identitySetting(this.identityPoolId);
    const datasets =
      (await moveLocalData(this.store, previousIdentityId, identityId, this.now(), async () => ({
        settings: { [setting]: identityId },
        expectSettings: await this.writeVersionExpectation(),
      }))) ?? [];
    this.identityMoved();
    if (previousIdentityId !== unknownIdentityId) await this.options.onIdentityChanged?.({ previousIdentityId, identityId, datasets });
  }

  /** See IdentityOptions.claim: the identity stored and the placeholder's data moved to it, in one commit. */
  private async claim(identityId: string): Promise<boolean> {
    const setting = identitySetting(this.identityPoolId);
    const moved = await moveLocalData(this.store, unknownIdentityId, identityId, this.now(), async () => {
      if (await this.store.getSetting(setting)) return undefined;
      return { settings: { [setting]: identityId }, expectSettings: { ...(await this.writeVersionExpectation()), [setting]: null } };
    });
    if (moved === undefined) return false;
    this.identityMoved();
    return true;
  }

  /**
   * Follows the identity stored in the shared store when another manager, tab or process changed it (a logout: the
   * placeholder; a login), and tells the app through onIdentityChanged: the page may still show the previous user.
   */
  private async followStore(): Promise<void> {
    const change = await this.session.followStore();
    if (!change) return;
    this.identityMoved();
    await this.options.onIdentityChanged?.({ previousIdentityId: change.previousIdentityId, identityId: change.identityId ?? unknownIdentityId, datasets: [] });
  }

  /**
   * After the manager's identity changed: tokens of the old one are no use (and moved data can bring merged datasets,
   * `<name>.<oldId>`, which only a pull reports), and a live stream follows one identity, so it reopens.
   */
  private identityMoved(): void {
    this.recentTokens.clear();
    for (const live of this.liveSyncs) live.identityChanged();
  }

  /**
   * The store as a sync of `identityId` writes to it: every commit carries writeGuard, and one refused because the
   * stored identity is no longer `identityId` (a logout or login in another tab or process) ends the sync, which
   * would otherwise put the old identity's data back on the device after its logout.
   */
  private syncStore(identityId: string): LocalStore {
    const { store } = this;
    const setting = identitySetting(this.identityPoolId);
    const commit = async (batch: StoreBatch): Promise<boolean> => {
      const guard = this.writeGuard(identityId);
      const guarded = { ...batch, settings: { ...batch.settings, ...guard.settings }, expectSettings: { ...batch.expectSettings, ...guard.expectSettings } };
      if (await store.commit(guarded)) return true;
      if (guard.expectSettings && (await store.getSetting(setting)) !== identityId) {
        throw new CognitoSyncClientError(`synchronize() stopped: the device's identity changed from ${identityId} (a logout or login in another tab or process); nothing more was written`);
      }
      return false;
    };
    return new Proxy(store, {
      get: (target, name) => {
        if (name === 'commit') return commit;
        const value: unknown = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  /** A move or wipe of local data expects no local write since it read (see writeVersionSetting). */
  private async writeVersionExpectation(): Promise<Record<string, string | null>> {
    return { [writeVersionSetting]: (await this.store.getSetting(writeVersionSetting)) ?? null };
  }

  /**
   * @internal What a local write under `identityId` commits with: the identity it read must still be the stored
   * one (none, under the placeholder), so that a write racing a login, a logout or a move in another tab fails and
   * reads again under the identity now stored; and it changes the write version, which moves and wipes expect.
   * With an identity the app gives (`identityId`, its own credentials) only the placeholder is checked.
   */
  writeGuard(identityId: string): Pick<StoreBatch, 'settings' | 'expectSettings'> {
    const settings = { [writeVersionSetting]: `${this.now()}-${this.random()}` };
    if (identityId !== unknownIdentityId && !this.session.followsStore) return { settings };
    return { expectSettings: { [identitySetting(this.identityPoolId)]: identityId === unknownIdentityId ? null : identityId }, settings };
  }
}
