// Every quota and limit cognisync enforces, with AWS's defaults; each can be overridden by an env var.

export interface Limits {
  /** Live datasets per identity (AWS: 20). */
  datasetsPerIdentity: number;
  /** Bytes per dataset, counted as UTF-8 key + value of every live record (AWS: 1 MB). */
  datasetBytes: number;
  /** Live records per dataset (1,024, AWS's quota L-97A9518B; also the page size amazon-cognito-js asks for). */
  recordsPerDataset: number;
  /** Identity pools per server (AWS: 1,000 per account and region). */
  identityPoolsPerAccount: number;
  /** Default and largest page of ListRecords. */
  listRecordsDefaultPage: number;
  listRecordsMaxPage: number;
  /** Default and largest page of ListDatasets. */
  listDatasetsDefaultPage: number;
  listDatasetsMaxPage: number;
  /** Default and largest page of ListIdentityPoolUsage. */
  listPoolUsageDefaultPage: number;
  listPoolUsageMaxPage: number;
  /** Lifetime of a SyncSessionToken from ListRecords, in seconds. */
  syncSessionTokenTtlSeconds: number;
  /** Minimum time between two successful BulkPublish runs of a pool (AWS: 24 h). */
  bulkPublishIntervalSeconds: number;
  /** Lifetime of credentials from GetCredentialsForIdentity (AWS: 1 h). */
  credentialsTtlSeconds: number;
  /** Lifetime of a GetOpenIdToken token (AWS: 10 min). */
  openIdTokenTtlSeconds: number;
  /** Default TokenDuration of GetOpenIdTokenForDeveloperIdentity (AWS: 15 min). */
  developerTokenTtlSeconds: number;
  /** Largest request body accepted, checked before parsing. */
  maxRequestBodyBytes: number;
  /**
   * Largest body of a Cognito Identity request (`POST /`, read before anything is authenticated, and unsigned for
   * GetId and GetCredentialsForIdentity): the largest the model allows is about 500 KB (10 logins of 50,000
   * characters), so anyone's 8 MB body is not parsed.
   */
  maxIdentityRequestBodyBytes: number;
  /** Token-bucket rate per identity (requests/s, 0 = off) and its burst; applies to identity credentials. */
  identityRequestsPerSecond: number;
  identityRequestBurst: number;
  /** Token-bucket rate per identity pool over all its identities and unsigned calls (0 = off) and its burst. */
  poolRequestsPerSecond: number;
  poolRequestBurst: number;
  /** API requests one process works on at once; more answer TooManyRequestsException at once. */
  maxInFlightRequests: number;
  /**
   * Bytes of request bodies one process holds at once, counted as they arrive until the answer is written or the
   * connection goes: a body that would go past it answers TooManyRequestsException unread. Bodies are read before
   * their signature can be checked, so without it anyone's slow 8 MiB uploads held 8 MiB each (http/body.ts).
   */
  maxBufferedRequestBytes: number;
  /** Live streams (GET /live/…) one identity may hold open in one process; more answer LimitExceededException. */
  liveStreamsPerIdentity: number;
  /** Allowed clock skew of a SigV4 X-Amz-Date (AWS: 15 min). */
  signatureSkewSeconds: number;
  /**
   * Longest RegisterDevice Token, in characters (the model sets none; APNs tokens are 64, FCM's about 160, a Web Push
   * subscription's JSON under 1,000): without one a guest stored 15 MB of "token" per request.
   */
  pushTokenLength: number;
  /** Devices one identity keeps registered; registering more unregisters those registered longest ago. */
  devicesPerIdentity: number;
  /** Datasets one device may subscribe to (it may subscribe before a dataset exists, so not the dataset limit). */
  subscriptionsPerDevice: number;
  /**
   * Removals one dataset remembers (tombstones, which count toward no other limit), and the UTF-8 bytes of their keys:
   * past either, the oldest are dropped, and a device that last synced before them is told its copy is gone
   * (core/tombstones.ts). AWS does not say.
   */
  tombstonesPerDataset: number;
  tombstoneBytesPerDataset: number;
}

export const defaultLimits: Readonly<Limits> = Object.freeze({
  datasetsPerIdentity: 20,
  datasetBytes: 1024 * 1024,
  recordsPerDataset: 1024,
  identityPoolsPerAccount: 1000,
  listRecordsDefaultPage: 1024,
  listRecordsMaxPage: 1024,
  listDatasetsDefaultPage: 20,
  listDatasetsMaxPage: 64,
  listPoolUsageDefaultPage: 60,
  listPoolUsageMaxPage: 60,
  syncSessionTokenTtlSeconds: 3600,
  bulkPublishIntervalSeconds: 24 * 3600,
  credentialsTtlSeconds: 3600,
  openIdTokenTtlSeconds: 600,
  developerTokenTtlSeconds: 900,
  // A full 1 MB dataset in one UpdateRecords, JSON-escaped, with room to spare.
  maxRequestBodyBytes: 8 * 1024 * 1024,
  maxIdentityRequestBodyBytes: 1024 * 1024,
  identityRequestsPerSecond: 50,
  identityRequestBurst: 100,
  poolRequestsPerSecond: 10_000,
  poolRequestBurst: 20_000,
  maxInFlightRequests: 512,
  maxBufferedRequestBytes: 128 * 1024 * 1024,
  liveStreamsPerIdentity: 20,
  signatureSkewSeconds: 15 * 60,
  pushTokenLength: 8192,
  devicesPerIdentity: 100,
  subscriptionsPerDevice: 100,
  tombstonesPerDataset: 4096,
  tombstoneBytesPerDataset: 1024 * 1024,
});

const envNames: Record<keyof Limits, string> = {
  datasetsPerIdentity: 'COGNISYNC_LIMIT_DATASETS_PER_IDENTITY',
  datasetBytes: 'COGNISYNC_LIMIT_DATASET_BYTES',
  recordsPerDataset: 'COGNISYNC_LIMIT_RECORDS_PER_DATASET',
  identityPoolsPerAccount: 'COGNISYNC_LIMIT_IDENTITY_POOLS',
  listRecordsDefaultPage: 'COGNISYNC_LIMIT_LIST_RECORDS_DEFAULT_PAGE',
  listRecordsMaxPage: 'COGNISYNC_LIMIT_LIST_RECORDS_MAX_PAGE',
  listDatasetsDefaultPage: 'COGNISYNC_LIMIT_LIST_DATASETS_DEFAULT_PAGE',
  listDatasetsMaxPage: 'COGNISYNC_LIMIT_LIST_DATASETS_MAX_PAGE',
  listPoolUsageDefaultPage: 'COGNISYNC_LIMIT_LIST_POOL_USAGE_DEFAULT_PAGE',
  listPoolUsageMaxPage: 'COGNISYNC_LIMIT_LIST_POOL_USAGE_MAX_PAGE',
  syncSessionTokenTtlSeconds: 'COGNISYNC_SYNC_SESSION_TOKEN_TTL_SECONDS',
  bulkPublishIntervalSeconds: 'COGNISYNC_BULK_PUBLISH_INTERVAL_SECONDS',
  credentialsTtlSeconds: 'COGNISYNC_CREDENTIALS_TTL_SECONDS',
  openIdTokenTtlSeconds: 'COGNISYNC_OPENID_TOKEN_TTL_SECONDS',
  developerTokenTtlSeconds: 'COGNISYNC_DEVELOPER_TOKEN_TTL_SECONDS',
  maxRequestBodyBytes: 'COGNISYNC_MAX_REQUEST_BODY_BYTES',
  maxIdentityRequestBodyBytes: 'COGNISYNC_MAX_IDENTITY_REQUEST_BODY_BYTES',
  identityRequestsPerSecond: 'COGNISYNC_RATE_LIMIT_IDENTITY_RPS',
  identityRequestBurst: 'COGNISYNC_RATE_LIMIT_IDENTITY_BURST',
  poolRequestsPerSecond: 'COGNISYNC_RATE_LIMIT_POOL_RPS',
  poolRequestBurst: 'COGNISYNC_RATE_LIMIT_POOL_BURST',
  maxInFlightRequests: 'COGNISYNC_MAX_IN_FLIGHT_REQUESTS',
  maxBufferedRequestBytes: 'COGNISYNC_MAX_BUFFERED_REQUEST_BYTES',
  liveStreamsPerIdentity: 'COGNISYNC_LIMIT_LIVE_STREAMS_PER_IDENTITY',
  signatureSkewSeconds: 'COGNISYNC_SIGNATURE_SKEW_SECONDS',
  pushTokenLength: 'COGNISYNC_LIMIT_PUSH_TOKEN_LENGTH',
  devicesPerIdentity: 'COGNISYNC_LIMIT_DEVICES_PER_IDENTITY',
  subscriptionsPerDevice: 'COGNISYNC_LIMIT_SUBSCRIPTIONS_PER_DEVICE',
  tombstonesPerDataset: 'COGNISYNC_LIMIT_TOMBSTONES_PER_DATASET',
  tombstoneBytesPerDataset: 'COGNISYNC_LIMIT_TOMBSTONE_BYTES_PER_DATASET',
};

/** Limits with every `COGNISYNC_LIMIT_*`-style override from the environment applied. */
/** Plain decimal digits only, within bounds: Number() also takes '1e3', '0x10', '1.5', ' 8 ' and '' (as 0). */
export function isWholeNumberIn(text: string, minimum: number, maximum: number): boolean {
  return /^\d+$/.test(text) && Number(text) >= minimum && Number(text) <= maximum;
}

export function limitsFromEnv(env: NodeJS.ProcessEnv): Limits {
  const limits: Limits = { ...defaultLimits };
  for (const [name, envName] of Object.entries(envNames) as [keyof Limits, string][]) {
    const raw = env[envName];
    if (raw === undefined || raw === '') continue;
    // Rates may be 0 (off); everything else must be at least 1.
    const minimum = name === 'identityRequestsPerSecond' || name === 'poolRequestsPerSecond' ? 0 : 1;
    if (!isWholeNumberIn(raw, minimum, Number.MAX_SAFE_INTEGER)) throw new Error(`${envName} must be an integer of at least ${minimum}, got '${raw}'`);
    limits[name] = Number(raw);
  }
  // Else the largest body allowed could never be read.
  if (limits.maxBufferedRequestBytes < limits.maxRequestBodyBytes) {
    throw new Error(`${envNames.maxBufferedRequestBytes} must be at least ${envNames.maxRequestBodyBytes} (${limits.maxRequestBodyBytes}), got ${limits.maxBufferedRequestBytes}`);
  }
  return limits;
}
