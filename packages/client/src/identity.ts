// Who the device is: the identity id (cached in the store) and AWS credentials for it, refreshed before expiry.
import { ServiceError, ValidationError } from './errors.ts';
import type { LocalStore } from './stores/store.ts';
import type { CognitoIdentityApi, Logins } from './transport/cognito-identity-api.ts';
import type { AwsCredentialProvider, AwsCredentials } from './transport/signed-fetch.ts';

/** Local data written before the device ever learned its identity id lives under this placeholder (as Android's SDK). */
export const unknownIdentityId = 'unknown';

/** The store setting holding the device's identity id for a pool. */
export const identitySetting = (identityPoolId: string) => `identityId:${identityPoolId}`;

/**
 * A store setting every local write changes (with an expectation that the stored identity is still the one it wrote
 * under), so that moving or wiping an identity's data (which commits with `purge`) fails and reads again when a
 * write landed between its reads and its commit, instead of purging that write.
 */
export const writeVersionSetting = 'writeVersion';

/** Credentials are refreshed this long before they expire (as the AWS SDKs do). */
const refreshMarginMs = 5 * 60_000;

export interface IdentityOptions {
  identityPoolId: string;
  store: LocalStore;
  api: CognitoIdentityApi;
  credentials?: AwsCredentials | AwsCredentialProvider;
  identityId?: string;
  logins?: Logins;
  now: () => number;
  /** Called (and awaited) whenever the identity id becomes known or changes: moves local data and stores `identityId`, in one commit. */
  adopt: (previousIdentityId: string, identityId: string) => Promise<void>;
  /**
   * Stores `identityId` as the device's identity and moves the placeholder's data to it, in one commit, unless an
   * identity is stored already (another tab or process claimed first): true when this one was stored.
   */
  claim: (identityId: string) => Promise<boolean>;
}

/**
 * Without `credentials`: GetId once (the id is cached in the store, so an anonymous user keeps it across restarts),
 * then GetCredentialsForIdentity, cached and refreshed before expiry. With `credentials`: any AWS provider, and the
 * identity id from `identityId` or the provider's `identityId` (as `fromCognitoIdentityPool` returns).
 */
export class IdentitySession {
  private id: string | undefined;
  private cached: AwsCredentials | undefined;
  private inflight: Promise<AwsCredentials> | undefined;
  private logins: Logins;
  private lastReported: string | undefined;
  private readonly settingName: string;

  constructor(private readonly options: IdentityOptions) {
    this.id = options.identityId;
    this.logins = { ...options.logins };
    this.settingName = identitySetting(options.identityPoolId);
  }

  get usesCognitoIdentity(): boolean {
    return this.options.credentials === undefined;
  }

  /** Whether the identity is the one stored (shared by every manager, tab and process on the store), not the app's. */
  get followsStore(): boolean {
    return this.options.credentials === undefined && this.options.identityId === undefined;
  }

  /** The identity id known without a network call, if any. */
  async known(): Promise<string | undefined> {
    this.id ??= await this.options.store.getSetting(this.settingName);
    return this.id;
  }

  /** The identity id, asking the service for one if the device has none yet. */
  async identityId(): Promise<string> {
    const known = await this.known();
    if (known) return known;
    await this.credentials();
    if (!this.id) throw new ValidationError('MissingIdentityId', 'Pass identityId (or a credential provider that reports one, such as fromCognitoIdentityPool)');
    return this.id;
  }

  async credentials(): Promise<AwsCredentials> {
    if (this.cached && (this.cached.expiration === undefined || this.cached.expiration.getTime() - refreshMarginMs > this.options.now())) return this.cached;
    this.inflight ??= this.refresh().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /** Logs in (or out, with `{}`): the next credentials use these logins; returns the identity id they belong to. */
  async setLogins(logins: Logins): Promise<string> {
    if (!this.usesCognitoIdentity) throw new ValidationError('ExternalCredentials', 'setLogins() needs the built-in Cognito Identity credentials; with your own provider call changeIdentity()');
    await this.inflight?.catch(() => undefined);
    this.logins = { ...logins };
    this.cached = undefined;
    await this.credentials();
    return this.id!;
  }

  /** Drops the cached credentials (the service called them expired), so the next call fetches new ones. */
  expireCredentials(): void {
    this.cached = undefined;
  }

  /**
   * Follows the store when another manager, tab or process sharing it forgot the identity (wipeData, a logout that
   * deleted the database) or moved to another one: this session drops what it kept in memory. True when it changed.
   * Not for an app's own credentials or fixed identity id, which the app decides. Returns the change, if any.
   */
  async followStore(): Promise<{ previousIdentityId: string; identityId: string | undefined } | undefined> {
    if (!this.followsStore || this.id === undefined) return undefined;
    const stored = (await this.options.store.getSetting(this.settingName)) ?? undefined;
    if (stored === this.id) return undefined;
    const previousIdentityId = this.id;
    this.id = stored;
    this.cached = undefined;
    // The logins were this manager's user's, who logged out or was replaced in another tab: kept, they would sign
    // that user in again (GetId) and move the store's data, the next user's included, to their identity.
    this.logins = {};
    return { previousIdentityId, identityId: stored };
  }

  /**
   * Forgets the identity and credentials (logout / wipe) once `erase` committed: erase stores the identity as unset
   * along with whatever else it removes, in one commit.
   */
  async forget(erase: () => Promise<void>): Promise<void> {
    await this.inflight?.catch(() => undefined);
    await erase();
    this.id = undefined;
    this.cached = undefined;
    this.logins = {};
  }

  /** Switches to `identityId`: the caller's adopt moves the local data and stores the id. */
  async switchTo(identityId: string): Promise<void> {
    const previous = (await this.known()) ?? unknownIdentityId;
    if (previous === identityId) return;
    await this.options.adopt(previous, identityId);
    this.id = identityId;
    this.cached = undefined;
  }

  private async refresh(): Promise<AwsCredentials> {
    const { credentials } = this.options;
    if (credentials !== undefined) {
      const fresh = typeof credentials === 'function' ? await credentials() : credentials;
      // Follow the provider when the identity it reports changes (e.g. fromCognitoIdentityPool after a login),
      // but not back over an id the app chose with changeIdentity().
      const reported = (fresh as { identityId?: string }).identityId;
      if (!this.options.identityId && reported && reported !== this.lastReported) {
        this.lastReported = reported;
        if (reported !== (await this.known())) await this.switchTo(reported);
      }
      this.cached = fresh;
      return fresh;
    }
    const { api, identityPoolId, store } = this.options;
    let id = await this.known();
    if (!id) {
      // One identity per store: another manager, tab or process sharing it may be asking at this very moment.
      // Under the store's lock the first one's answer is read back instead of asking for a second identity (each
      // would have moved the device's data to its own and split the device between two identities).
      id = await store.withLock(this.settingName, async () => {
        let stored = await store.getSetting(this.settingName);
        if (!stored) {
          const created = await api.getId(identityPoolId, this.logins);
          // Claimed only if still unset: a lock that covers this page alone (IndexedDB without Web Locks, on a
          // plain-http origin) let another tab ask too, and the first one stored wins; this page's GetId identity
          // is dropped before anything was written under it. The claim moves the placeholder's data in the same
          // commit, so no write lands under the new id before that data is there (it would look like a clash).
          if (await this.options.claim(created)) {
            this.id = created;
            this.cached = undefined;
            return created;
          }
          stored = await store.getSetting(this.settingName);
          if (!stored) throw new Error(`The identity id of ${identityPoolId} was removed while it was being stored`);
        }
        // What this manager wrote before the id was known (under the placeholder) joins the others' data.
        await this.options.adopt(unknownIdentityId, stored);
        this.id = stored;
        this.cached = undefined;
        return stored;
      });
    }
    let fresh;
    try {
      fresh = await api.getCredentialsForIdentity(id, this.logins);
    } catch (error) {
      // The cached identity is gone, or the login already belongs to another identity: ask which one is ours now.
      const recoverable =
        error instanceof ServiceError &&
        (error.name === 'ResourceNotFoundException' || (error.name === 'NotAuthorizedException' && Object.keys(this.logins).length > 0));
      if (!recoverable) throw error;
      const other = await api.getId(identityPoolId, this.logins);
      if (other === id) throw error;
      fresh = await api.getCredentialsForIdentity(other, this.logins);
    }
    if (fresh.identityId !== id) await this.switchTo(fresh.identityId);
    this.cached = fresh;
    return fresh;
  }
}
