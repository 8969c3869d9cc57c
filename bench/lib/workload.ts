// The data and requests of the scenarios: identity pools and identities (with their temporary credentials,
// as devices use), SyncSessionTokens, seeded datasets, and the request lists each scenario replays.
import { createHash } from 'node:crypto';
import { buildRequest, call, mapLimit, send, syncPath, type Credentials, type Signing } from './requests.ts';
import { developerCredentials, type Target } from './targets.ts';
import type { WireRequest } from './types.ts';

export interface BenchIdentity {
  identityId: string;
  credentials: Credentials;
}

const fillers = new Map<number, string>();

/** A deterministic printable value of `length` bytes, distinct per seed (an 8-character hash of it, then filler). */
export function value(length: number, seed: string | number): string {
  let filler = fillers.get(length);
  if (!filler) {
    filler = createHash('sha256').update(String(length)).digest('base64url').repeat(Math.ceil(length / 43) + 1).slice(0, length);
    fillers.set(length, filler);
  }
  // FNV-1a: cheap, and plenty to tell values apart.
  let hash = 0x811c9dc5;
  const text = String(seed);
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return `${(hash >>> 0).toString(36).padStart(8, '0')}${filler}`.slice(0, length);
}

/** Everything one target needs for its scenarios; the baselines get the same calls with dummy signatures. */
export class Fixture {
  readonly tokens = new Map<string, string>();
  identityPoolId = '';

  constructor(readonly target: Target) {}

  /** Developer calls (pool creation) and identity calls are really signed for cognisync, dummy-signed for the floor. */
  developerSigning(): Signing {
    return this.target.kind === 'cognisync' ? { credentials: developerCredentials } : 'dummy';
  }

  signing(identity: BenchIdentity): Signing {
    return this.target.kind === 'cognisync' ? { credentials: identity.credentials } : 'dummy';
  }

  async createPool(name: string): Promise<string> {
    const pool = await call(this.target.url, { service: 'cognito-identity', method: 'POST', path: '/', operation: 'CreateIdentityPool', body: { IdentityPoolName: name, AllowUnauthenticatedIdentities: true } }, this.developerSigning());
    this.identityPoolId = pool.IdentityPoolId;
    return this.identityPoolId;
  }

  /** Temporary credentials for an identity, from GetCredentialsForIdentity (unsigned, as devices call it). */
  async credentialsFor(identityId: string): Promise<BenchIdentity> {
    const result = await call(this.target.url, { service: 'cognito-identity', method: 'POST', path: '/', operation: 'GetCredentialsForIdentity', body: { IdentityId: identityId } }, 'none');
    return { identityId, credentials: { accessKeyId: result.Credentials.AccessKeyId, secretAccessKey: result.Credentials.SecretKey, sessionToken: result.Credentials.SessionToken } };
  }

  /** `count` new unauthenticated identities (GetId), each with temporary credentials. */
  async createIdentities(count: number): Promise<BenchIdentity[]> {
    return mapLimit(Array.from({ length: count }), 16, async () => {
      const { IdentityId } = await call(this.target.url, { service: 'cognito-identity', method: 'POST', path: '/', operation: 'GetId', body: { IdentityPoolId: this.identityPoolId } }, 'none');
      return this.credentialsFor(IdentityId);
    });
  }

  /** The SyncSessionToken for one dataset (ListRecords issues it; it stays valid for an hour and may be reused). */
  async token(identity: BenchIdentity, datasetName: string): Promise<string> {
    const key = `${identity.identityId}/${datasetName}`;
    let token = this.tokens.get(key);
    if (token === undefined) {
      const page = await call(this.target.url, { service: 'cognito-sync', method: 'GET', path: syncPath(this.identityPoolId, identity.identityId, datasetName, '/records'), query: { maxResults: '1' } }, this.signing(identity));
      // The floor issues no tokens; give it one of the same size.
      token = (page.SyncSessionToken as string | undefined) ?? value(180, key);
      this.tokens.set(key, token);
    }
    return token;
  }

  async tokens_(pairs: ReadonlyArray<readonly [BenchIdentity, string]>): Promise<void> {
    await mapLimit(pairs, 16, ([identity, datasetName]) => this.token(identity, datasetName));
  }

  updateRecords(identity: BenchIdentity, datasetName: string, patches: Patch[]): Promise<WireRequest> {
    const token = this.tokens.get(`${identity.identityId}/${datasetName}`);
    if (token === undefined) throw new Error(`no SyncSessionToken fetched for ${identity.identityId}/${datasetName}`);
    const now = Date.now() / 1000;
    return buildRequest(
      this.target.host,
      {
        service: 'cognito-sync',
        method: 'POST',
        path: syncPath(this.identityPoolId, identity.identityId, datasetName),
        body: { SyncSessionToken: token, RecordPatches: patches.map((patch) => ({ ...patch, DeviceLastModifiedDate: now })) },
      },
      this.signing(identity),
    );
  }

  listRecords(identity: BenchIdentity, datasetName: string, query?: Record<string, string>): Promise<WireRequest> {
    return buildRequest(this.target.host, { service: 'cognito-sync', method: 'GET', path: syncPath(this.identityPoolId, identity.identityId, datasetName, '/records'), ...(query ? { query } : {}) }, this.signing(identity));
  }

  describeDataset(identity: BenchIdentity, datasetName: string): Promise<WireRequest> {
    return buildRequest(this.target.host, { service: 'cognito-sync', method: 'GET', path: syncPath(this.identityPoolId, identity.identityId, datasetName) }, this.signing(identity));
  }

  getCredentialsForIdentity(identity: BenchIdentity): Promise<WireRequest> {
    return buildRequest(this.target.host, { service: 'cognito-identity', method: 'POST', path: '/', operation: 'GetCredentialsForIdentity', body: { IdentityId: identity.identityId } }, 'none');
  }

  /** Every record changed after `lastSyncCount`, as key → SyncCount, and the dataset's SyncCount, read through the API. */
  async changesSince(identity: BenchIdentity, datasetName: string, lastSyncCount: number): Promise<{ records: Map<string, number>; datasetSyncCount: number }> {
    const records = new Map<string, number>();
    let datasetSyncCount = 0;
    let nextToken: string | undefined;
    do {
      const query: Record<string, string> = { lastSyncCount: String(lastSyncCount), maxResults: '1024', ...(nextToken ? { nextToken } : {}) };
      const page = await call(this.target.url, { service: 'cognito-sync', method: 'GET', path: syncPath(this.identityPoolId, identity.identityId, datasetName, '/records'), query }, this.signing(identity));
      for (const record of page.Records as Array<{ Key: string; SyncCount: number }>) records.set(record.Key, record.SyncCount);
      datasetSyncCount = page.DatasetSyncCount as number;
      nextToken = page.NextToken as string | undefined;
    } while (nextToken);
    return { records, datasetSyncCount };
  }

  /** Sends one UpdateRecords during setup and checks it succeeded. */
  async write(identity: BenchIdentity, datasetName: string, patches: Patch[]): Promise<void> {
    await this.token(identity, datasetName);
    const result = await send(this.target.url, await this.updateRecords(identity, datasetName, patches));
    if (result.status !== 200) throw new Error(`seeding ${datasetName} on ${this.target.name}: ${result.status} ${result.text.slice(0, 300)}`);
  }

  /**
   * Seeds `datasetName` with `count` records of `valueBytes` each (keys r0000…, SyncCount 1), then changes
   * r0000 once more, so that ListRecords(lastSyncCount=1) returns exactly one record and the dataset is at SyncCount 2.
   */
  async seedDataset(identity: BenchIdentity, datasetName: string, count: number, valueBytes: number): Promise<void> {
    const keys = Array.from({ length: count }, (_, i) => recordKey(i));
    await this.write(identity, datasetName, keys.map((key) => ({ Op: 'replace', Key: key, Value: value(valueBytes, `${identity.identityId}/${datasetName}/${key}`), SyncCount: 0 })));
    await this.write(identity, datasetName, [{ Op: 'replace', Key: keys[0]!, Value: value(valueBytes, `${datasetName}/changed`), SyncCount: 1 }]);
  }
}

export interface Patch {
  Op: 'replace' | 'remove';
  Key: string;
  Value?: string;
  SyncCount: number;
}

export const recordKey = (i: number) => `r${String(i).padStart(4, '0')}`;

/**
 * Hands out datasets with room for new records, round-robin over identities so that concurrent writes land
 * on different identities (one identity's writes serialize on PostgreSQL's per-identity lock). Each allocator keeps
 * to its own few datasets per identity (AWS allows 20 in all, and several allocators share the main identities), and
 * reserve() creates more identities when a run needs more room than there is: how many writes a run sends grows with
 * the machine's speed.
 */
export class WriteSlots {
  private readonly fill: Array<{ identity: BenchIdentity; dataset: number; used: number }> = [];
  private next = 0;
  private keyCounter = 0;

  constructor(
    identities: readonly BenchIdentity[],
    private readonly prefix: string,
    /** Datasets per identity this allocator may use. */
    private readonly datasetsPerIdentity: number,
    /** Creates identities for reserve(); without it, running out of room is an error. */
    private readonly more?: (count: number) => Promise<BenchIdentity[]>,
    /** Records per dataset before moving on (AWS's limit is 1,024). */
    private readonly capacity = 1000,
  ) {
    this.add(identities);
  }

  private add(identities: readonly BenchIdentity[]): void {
    for (const identity of identities) this.fill.push({ identity, dataset: 0, used: 0 });
  }

  /** How many more writes of `records` new keys each fit. */
  private room(records: number): number {
    const perDataset = Math.floor(this.capacity / records);
    let room = 0;
    for (const f of this.fill) room += Math.floor((this.capacity - f.used) / records) + (this.datasetsPerIdentity - 1 - f.dataset) * perDataset;
    return room;
  }

  /** Makes room for `count` more writes of `records` new keys each, with new identities if need be. */
  async reserve(count: number, records: number): Promise<void> {
    const missing = count - this.room(records);
    if (missing <= 0) return;
    if (!this.more) throw new Error(`WriteSlots: no room for ${missing} more writes (${this.prefix})`);
    this.add(await this.more(Math.ceil(missing / (this.datasetsPerIdentity * Math.floor(this.capacity / records)))));
  }

  /** Where the next write of `records` new keys goes (after reserve()). */
  take(records: number): { identity: BenchIdentity; datasetName: string; keys: string[] } {
    for (let tried = 0; tried < this.fill.length; tried++) {
      const fill = this.fill[this.next++ % this.fill.length]!;
      if (fill.used + records > this.capacity) {
        if (fill.dataset + 1 >= this.datasetsPerIdentity) continue;
        fill.dataset += 1;
        fill.used = 0;
      }
      fill.used += records;
      const keys = Array.from({ length: records }, () => `n${(this.keyCounter++).toString(36)}`);
      return { identity: fill.identity, datasetName: `${this.prefix}${fill.dataset}`, keys };
    }
    throw new Error(`WriteSlots: out of room (${this.prefix}): reserve() first`);
  }
}

/** Builds `count` requests with `build`, fetching every SyncSessionToken they need first. */
export async function buildWrites(
  fixture: Fixture,
  count: number,
  plan: (index: number) => { identity: BenchIdentity; datasetName: string; patches: Patch[] },
): Promise<WireRequest[]> {
  const plans = Array.from({ length: count }, (_, index) => plan(index));
  const needed = new Map<string, readonly [BenchIdentity, string]>();
  for (const p of plans) needed.set(`${p.identity.identityId}/${p.datasetName}`, [p.identity, p.datasetName]);
  await fixture.tokens_([...needed.values()]);
  const requests: WireRequest[] = new Array(count);
  for (let i = 0; i < count; i++) requests[i] = await fixture.updateRecords(plans[i]!.identity, plans[i]!.datasetName, plans[i]!.patches);
  return requests;
}
