// Who may call what: every Cognito Sync operation × every kind of caller, through the real AWS SDK v3 (and raw
// HTTP for unsigned requests). Allowed cells must succeed; every other cell must fail with AWS's error and
// status, and a denied write must leave the store exactly as it was.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { CreateIdentityPoolCommand, GetCredentialsForIdentityCommand } from '@aws-sdk/client-cognito-identity';
import {
  BulkPublishCommand, DeleteDatasetCommand, DescribeDatasetCommand, DescribeIdentityPoolUsageCommand, DescribeIdentityUsageCommand,
  GetBulkPublishDetailsCommand, GetCognitoEventsCommand, GetIdentityPoolConfigurationCommand, ListDatasetsCommand, ListIdentityPoolUsageCommand,
  ListRecordsCommand, RegisterDeviceCommand, SetCognitoEventsCommand, SetIdentityPoolConfigurationCommand, SubscribeToDatasetCommand,
  UnsubscribeFromDatasetCommand, UpdateRecordsCommand, type CognitoSyncClient,
} from '@aws-sdk/client-cognito-sync';
import {
  developerCredentials, identityClient, identityCredentials, rejection, startServer, syncClient, type ClientCredentials, type ServerProcess,
} from '../support/server-process.ts';
import { rawRequest } from '../support/signed-fetch.ts';

/** Short-lived identity credentials, so the expired column can be had in seconds; every other column asks for fresh ones right before use. */
const CREDENTIALS_TTL_SECONDS = 2;

const callers = ['developer', 'own identity', 'other identity', 'other pool identity', 'expired credentials', 'unsigned', 'bad signature'] as const;
type Caller = (typeof callers)[number];

/** What a caller gets from an operation it may not call. Every one of these is a 403. */
const denial: Record<Caller, string> = {
  'developer': 'NotAuthorizedException',
  'own identity': 'NotAuthorizedException',
  'other identity': 'NotAuthorizedException',
  'other pool identity': 'NotAuthorizedException',
  'expired credentials': 'ExpiredTokenException',
  'unsigned': 'MissingAuthenticationTokenException',
  'bad signature': 'InvalidSignatureException',
};

const DEVELOPER_ONLY: readonly Caller[] = ['developer'];
const IDENTITY_ONLY: readonly Caller[] = ['own identity'];
const DEVELOPER_AND_OWNER: readonly Caller[] = ['developer', 'own identity'];

const GCM_APP = 'arn:aws:sns:us-east-1:123456789012:app/GCM/app';
const ROLE = 'arn:aws:iam::123456789012:role/cognisync';
const RECORD_KEY = 'k';

interface Fixture {
  /** Pool A: push sync (GCM) and Cognito Streams configured. */
  poolA: string;
  /** Pool B: a stranger's pool. */
  poolB: string;
  /** A pool with streams enabled that only the developer's BulkPublish uses (a pool publishes once a day). */
  bulkPublishPool: string;
  /** The identity every path names, in pool A. */
  owner: string;
  /** Another identity of pool A. */
  neighbour: string;
  /** An identity of pool B. */
  stranger: string;
  /** The owner's first credentials, expired by the time the tests run. */
  expired: ClientCredentials;
  /** A GCM device the owner registered. */
  deviceId: string;
}

let server: ServerProcess;
let developer: CognitoSyncClient;
let f: Fixture;

before(async () => {
  server = await startServer({ env: { COGNISYNC_CREDENTIALS_TTL_SECONDS: String(CREDENTIALS_TTL_SECONDS) } });
  developer = syncClient(server.endpoint);
  const newPool = async (name: string) =>
    (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: name, AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  const [poolA, poolB, bulkPublishPool] = [await newPool('matrix-a'), await newPool('matrix-b'), await newPool('matrix-bulk')];
  // The owner's first credentials start expiring now; the rest of the setup runs while they do.
  const owner = await identityCredentials(server.endpoint, poolA);
  const neighbour = await identityCredentials(server.endpoint, poolA);
  const stranger = await identityCredentials(server.endpoint, poolB);
  const streams = { StreamName: 'matrix', RoleArn: ROLE, StreamingStatus: 'ENABLED' as const };
  await developer.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolA, PushSync: { ApplicationArns: [GCM_APP], RoleArn: ROLE }, CognitoStreams: streams }));
  await developer.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: bulkPublishPool, CognitoStreams: streams }));
  f = { poolA, poolB, bulkPublishPool, owner: owner.identityId, neighbour: neighbour.identityId, stranger: stranger.identityId, expired: owner.credentials, deviceId: '' };
  await ensureDataset('matrix');
  const device = await syncClient(server.endpoint, await freshCredentials(f.owner)).send(
    new RegisterDeviceCommand({ IdentityPoolId: poolA, IdentityId: f.owner, Platform: 'GCM', Token: 'fixture-device' }),
  );
  f.deviceId = device.DeviceId!;
  // The server may round nothing, but the SDK reads Expiration in whole seconds: wait a second past it.
  await sleep(Math.max(0, owner.expiration.getTime() - Date.now()) + 1100);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

// ---- helpers -------------------------------------------------------------------------------------------

async function freshCredentials(identityId: string): Promise<ClientCredentials> {
  const { Credentials } = await identityClient(server.endpoint).send(new GetCredentialsForIdentityCommand({ IdentityId: identityId }));
  return { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretKey!, sessionToken: Credentials!.SessionToken! };
}

/** A client signing as `caller`, with credentials fetched just now (identity credentials live only seconds here). */
async function clientFor(caller: Exclude<Caller, 'unsigned'>): Promise<CognitoSyncClient> {
  switch (caller) {
    case 'developer':
      return developer;
    case 'own identity':
      return syncClient(server.endpoint, await freshCredentials(f.owner));
    case 'other identity':
      return syncClient(server.endpoint, await freshCredentials(f.neighbour));
    case 'other pool identity':
      return syncClient(server.endpoint, await freshCredentials(f.stranger));
    case 'expired credentials':
      return syncClient(server.endpoint, f.expired);
    case 'bad signature':
      // A live access key and session token, signed with the wrong secret.
      return syncClient(server.endpoint, { ...(await freshCredentials(f.owner)), secretAccessKey: 'not-the-secret-key-of-these-credentials' });
  }
}

const slug = (caller: Caller) => caller.replaceAll(' ', '-');
const ownerDataset = (datasetName: string) => ({ IdentityPoolId: f.poolA, IdentityId: f.owner, DatasetName: datasetName });

/** A dataset of the owner holding RECORD_KEY, created (as the developer) if it is not there. */
async function ensureDataset(datasetName: string) {
  const key = ownerDataset(datasetName);
  const listed = await developer.send(new ListRecordsCommand(key));
  if (listed.DatasetExists) return key;
  await developer.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: RECORD_KEY, Value: 'v0', SyncCount: 0 }] }));
  return key;
}

/** Everything a client can learn about a dataset through ListRecords (as the developer). */
async function datasetState(key: { IdentityPoolId: string; IdentityId: string; DatasetName: string }) {
  const listed = await developer.send(new ListRecordsCommand(key));
  return {
    exists: listed.DatasetExists,
    syncCount: listed.DatasetSyncCount,
    lastModifiedBy: listed.LastModifiedBy,
    records: (listed.Records ?? []).map((r) => [r.Key, r.Value, r.SyncCount, r.LastModifiedBy]),
  };
}

/**
 * Devices and subscriptions of the owner, read from the SQLite file: no Cognito Sync operation lists either,
 * so this is the one place the test looks behind the API.
 */
function pushState() {
  const db = new Database(join(server.dataDir, 'cognisync.db'), { readonly: true, fileMustExist: true });
  try {
    return {
      devices: db.prepare('SELECT device_id, platform, token FROM devices WHERE identity_pool_id = ? AND identity_id = ? ORDER BY device_id').all(f.poolA, f.owner),
      subscriptions: db
        .prepare('SELECT dataset_name, device_id FROM subscriptions WHERE identity_pool_id = ? AND identity_id = ? ORDER BY dataset_name, device_id')
        .all(f.poolA, f.owner),
    };
  } finally {
    db.close();
  }
}

async function poolConfiguration(identityPoolId: string) {
  const { PushSync, CognitoStreams } = await developer.send(new GetIdentityPoolConfigurationCommand({ IdentityPoolId: identityPoolId }));
  return { PushSync, CognitoStreams };
}

const enc = encodeURIComponent;
const poolPath = (i: { IdentityPoolId: string }) => `/identitypools/${enc(i.IdentityPoolId)}`;
const identityPath = (i: { IdentityPoolId: string; IdentityId: string }) => `${poolPath(i)}/identities/${enc(i.IdentityId)}`;
const datasetPath = (i: { IdentityPoolId: string; IdentityId: string; DatasetName: string }) => `${identityPath(i)}/datasets/${enc(i.DatasetName)}`;
const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

// ---- the matrix ----------------------------------------------------------------------------------------

/** One operation's row: its request, who may send it, what success looks like, and what a denied call must not change. */
interface Row<I, O> {
  operation: string;
  allowed: readonly Caller[];
  /** Builds the request, first setting up whatever an allowed call needs to succeed. */
  input(caller: Caller): Promise<I>;
  send(client: CognitoSyncClient, input: I): Promise<O>;
  /** The same request as raw HTTP (for the unsigned column). */
  wire(input: I): { method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: string };
  /** Checks an allowed call's effect (and undoes what would get in later cells' way). */
  succeeded(output: O, input: I, caller: Caller): Promise<void> | void;
  /** State a denied call must leave unchanged, read as the developer. */
  observe?(input: I): Promise<unknown> | unknown;
}

// Each row keeps its own input/output types; the table only needs them to agree within a row.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const row = <I, O>(r: Row<I, O>) => r as unknown as Row<any, any>;

const matrix = [
  row({
    operation: 'BulkPublish',
    allowed: DEVELOPER_ONLY,
    // A pool publishes once (then DuplicateRequestException), so the developer's cell uses a pool of its own;
    // denied cells aim at pool A, which must stay NOT_STARTED.
    input: async (caller) => ({ IdentityPoolId: caller === 'developer' ? f.bulkPublishPool : f.poolA }),
    send: (c, i) => c.send(new BulkPublishCommand(i)),
    wire: (i) => ({ method: 'POST', path: `${poolPath(i)}/bulkpublish` }),
    async succeeded(output, input) {
      assert.equal(output.IdentityPoolId, input.IdentityPoolId);
      const details = await developer.send(new GetBulkPublishDetailsCommand(input));
      assert.notEqual(details.BulkPublishStatus, 'NOT_STARTED');
    },
    observe: async (i) => {
      const { BulkPublishStatus, BulkPublishStartTime } = await developer.send(new GetBulkPublishDetailsCommand(i));
      return { BulkPublishStatus, BulkPublishStartTime };
    },
  }),
  row({
    operation: 'DeleteDataset',
    allowed: DEVELOPER_AND_OWNER,
    input: () => ensureDataset('doomed'),
    send: (c, i) => c.send(new DeleteDatasetCommand(i)),
    wire: (i) => ({ method: 'DELETE', path: datasetPath(i) }),
    async succeeded(output, input) {
      assert.equal(output.Dataset?.DatasetName, 'doomed');
      assert.equal(output.Dataset?.IdentityId, f.owner);
      assert.equal((await datasetState(input)).exists, false);
    },
    observe: datasetState,
  }),
  row({
    operation: 'DescribeDataset',
    allowed: DEVELOPER_AND_OWNER,
    input: () => ensureDataset('matrix'),
    send: (c, i) => c.send(new DescribeDatasetCommand(i)),
    wire: (i) => ({ method: 'GET', path: datasetPath(i) }),
    succeeded(output) {
      assert.equal(output.Dataset?.DatasetName, 'matrix');
      assert.equal(output.Dataset?.NumRecords, 1);
    },
  }),
  row({
    operation: 'DescribeIdentityPoolUsage',
    allowed: DEVELOPER_ONLY,
    input: async () => ({ IdentityPoolId: f.poolA }),
    send: (c, i) => c.send(new DescribeIdentityPoolUsageCommand(i)),
    wire: (i) => ({ method: 'GET', path: poolPath(i) }),
    succeeded(output) {
      assert.equal(output.IdentityPoolUsage?.IdentityPoolId, f.poolA);
      assert.ok((output.IdentityPoolUsage?.DataStorage ?? 0) > 0);
    },
  }),
  row({
    operation: 'DescribeIdentityUsage',
    allowed: DEVELOPER_AND_OWNER,
    input: async () => ({ IdentityPoolId: f.poolA, IdentityId: f.owner }),
    send: (c, i) => c.send(new DescribeIdentityUsageCommand(i)),
    wire: (i) => ({ method: 'GET', path: identityPath(i) }),
    succeeded(output) {
      assert.equal(output.IdentityUsage?.IdentityId, f.owner);
      assert.equal(output.IdentityUsage?.IdentityPoolId, f.poolA);
      assert.ok((output.IdentityUsage?.DatasetCount ?? 0) >= 1);
    },
  }),
  row({
    operation: 'GetBulkPublishDetails',
    allowed: DEVELOPER_ONLY,
    input: async () => ({ IdentityPoolId: f.poolA }),
    send: (c, i) => c.send(new GetBulkPublishDetailsCommand(i)),
    wire: (i) => ({ method: 'POST', path: `${poolPath(i)}/getBulkPublishDetails` }),
    succeeded(output) {
      assert.equal(output.IdentityPoolId, f.poolA);
      assert.equal(output.BulkPublishStatus, 'NOT_STARTED');
    },
  }),
  row({
    operation: 'GetCognitoEvents',
    allowed: DEVELOPER_ONLY,
    input: async () => ({ IdentityPoolId: f.poolA }),
    send: (c, i) => c.send(new GetCognitoEventsCommand(i)),
    wire: (i) => ({ method: 'GET', path: `${poolPath(i)}/events` }),
    succeeded(output) {
      assert.deepEqual(output.Events, {});
    },
  }),
  row({
    operation: 'GetIdentityPoolConfiguration',
    allowed: DEVELOPER_ONLY,
    input: async () => ({ IdentityPoolId: f.poolA }),
    send: (c, i) => c.send(new GetIdentityPoolConfigurationCommand(i)),
    wire: (i) => ({ method: 'GET', path: `${poolPath(i)}/configuration` }),
    succeeded(output) {
      assert.equal(output.IdentityPoolId, f.poolA);
      assert.deepEqual(output.PushSync?.ApplicationArns, [GCM_APP]);
      assert.equal(output.CognitoStreams?.StreamingStatus, 'ENABLED');
    },
  }),
  row({
    operation: 'ListDatasets',
    allowed: DEVELOPER_AND_OWNER,
    input: async () => ({ IdentityPoolId: f.poolA, IdentityId: f.owner }),
    send: (c, i) => c.send(new ListDatasetsCommand(i)),
    wire: (i) => ({ method: 'GET', path: `${identityPath(i)}/datasets` }),
    succeeded(output) {
      assert.ok(output.Datasets?.some((d) => d.DatasetName === 'matrix'), JSON.stringify(output.Datasets));
    },
  }),
  row({
    operation: 'ListIdentityPoolUsage',
    allowed: DEVELOPER_ONLY,
    input: async () => ({ MaxResults: 60 }),
    send: (c, i) => c.send(new ListIdentityPoolUsageCommand(i)),
    wire: (i) => ({ method: 'GET', path: '/identitypools', query: { maxResults: String(i.MaxResults) } }),
    succeeded(output) {
      assert.ok(output.IdentityPoolUsages?.some((u) => u.IdentityPoolId === f.poolA));
      assert.ok(output.IdentityPoolUsages?.some((u) => u.IdentityPoolId === f.poolB));
    },
  }),
  row({
    operation: 'ListRecords',
    allowed: DEVELOPER_AND_OWNER,
    input: () => ensureDataset('matrix'),
    send: (c, i) => c.send(new ListRecordsCommand(i)),
    wire: (i) => ({ method: 'GET', path: `${datasetPath(i)}/records` }),
    succeeded(output) {
      assert.equal(output.DatasetExists, true);
      assert.deepEqual(output.Records?.map((r) => r.Key), [RECORD_KEY]);
      assert.ok(output.SyncSessionToken);
    },
  }),
  row({
    operation: 'RegisterDevice',
    allowed: IDENTITY_ONLY,
    input: async (caller) => ({ IdentityPoolId: f.poolA, IdentityId: f.owner, Platform: 'GCM' as const, Token: `token-${slug(caller)}` }),
    send: (c, i) => c.send(new RegisterDeviceCommand(i)),
    wire: (i) => ({ method: 'POST', path: `${poolPath(i)}/identity/${enc(i.IdentityId)}/device`, ...json({ Platform: i.Platform, Token: i.Token }) }),
    succeeded(output, input) {
      assert.ok(output.DeviceId);
      assert.ok(pushState().devices.some((d) => (d as { device_id: string; token: string }).device_id === output.DeviceId && (d as { token: string }).token === input.Token));
    },
    observe: pushState,
  }),
  row({
    operation: 'SetCognitoEvents',
    allowed: DEVELOPER_ONLY,
    input: async (caller) => ({ IdentityPoolId: f.poolA, Events: { SyncTrigger: `arn:aws:lambda:us-east-1:123456789012:function:${slug(caller)}` } }),
    send: (c, i) => c.send(new SetCognitoEventsCommand(i)),
    wire: (i) => ({ method: 'POST', path: `${poolPath(i)}/events`, ...json({ Events: i.Events }) }),
    async succeeded(_output, input) {
      assert.deepEqual((await developer.send(new GetCognitoEventsCommand({ IdentityPoolId: f.poolA }))).Events, input.Events);
      // Unbind again: a SyncTrigger on pool A would sit in every later write's path.
      await developer.send(new SetCognitoEventsCommand({ IdentityPoolId: f.poolA, Events: { SyncTrigger: '' } }));
    },
    observe: async (i) => (await developer.send(new GetCognitoEventsCommand({ IdentityPoolId: i.IdentityPoolId }))).Events,
  }),
  row({
    operation: 'SetIdentityPoolConfiguration',
    allowed: DEVELOPER_ONLY,
    // A stream name per cell, so a denied write would show even after the developer's cell wrote.
    input: async (caller) => ({ IdentityPoolId: f.poolA, CognitoStreams: { StreamName: `stream-${slug(caller)}`, RoleArn: ROLE, StreamingStatus: 'ENABLED' as const } }),
    send: (c, i) => c.send(new SetIdentityPoolConfigurationCommand(i)),
    wire: (i) => ({ method: 'POST', path: `${poolPath(i)}/configuration`, ...json({ CognitoStreams: i.CognitoStreams }) }),
    async succeeded(output, input) {
      assert.deepEqual(output.CognitoStreams, input.CognitoStreams);
      assert.deepEqual(output.PushSync?.ApplicationArns, [GCM_APP], 'PushSync, not given, is kept');
      assert.deepEqual((await poolConfiguration(f.poolA)).CognitoStreams, input.CognitoStreams);
    },
    observe: (i) => poolConfiguration(i.IdentityPoolId),
  }),
  row({
    operation: 'SubscribeToDataset',
    allowed: IDENTITY_ONLY,
    input: async (caller) => ({ ...ownerDataset(`subscribed-${slug(caller)}`), DeviceId: f.deviceId }),
    send: (c, i) => c.send(new SubscribeToDatasetCommand(i)),
    wire: (i) => ({ method: 'POST', path: `${datasetPath(i)}/subscriptions/${enc(i.DeviceId)}` }),
    succeeded(_output, input) {
      assert.deepEqual(pushState().subscriptions.filter((s) => (s as { dataset_name: string }).dataset_name === input.DatasetName), [
        { dataset_name: input.DatasetName, device_id: f.deviceId },
      ]);
    },
    observe: pushState,
  }),
  row({
    operation: 'UnsubscribeFromDataset',
    allowed: IDENTITY_ONLY,
    async input() {
      const input = { ...ownerDataset('matrix'), DeviceId: f.deviceId };
      await syncClient(server.endpoint, await freshCredentials(f.owner)).send(new SubscribeToDatasetCommand(input));
      return input;
    },
    send: (c, i) => c.send(new UnsubscribeFromDatasetCommand(i)),
    wire: (i) => ({ method: 'DELETE', path: `${datasetPath(i)}/subscriptions/${enc(i.DeviceId)}` }),
    succeeded(_output, input) {
      assert.ok(!pushState().subscriptions.some((s) => (s as { dataset_name: string }).dataset_name === input.DatasetName));
    },
    observe: pushState,
  }),
  row({
    operation: 'UpdateRecords',
    allowed: DEVELOPER_AND_OWNER,
    // A valid write in every cell (fresh SyncSessionToken, the record's current SyncCount), so only the caller can make it fail.
    async input(caller) {
      const key = await ensureDataset('matrix');
      const listed = await developer.send(new ListRecordsCommand(key));
      const current = listed.Records!.find((r) => r.Key === RECORD_KEY)!;
      return { ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace' as const, Key: RECORD_KEY, Value: `by ${caller}`, SyncCount: current.SyncCount! }] };
    },
    send: (c, i) => c.send(new UpdateRecordsCommand(i)),
    wire: (i) => ({ method: 'POST', path: datasetPath(i), ...json({ SyncSessionToken: i.SyncSessionToken, RecordPatches: i.RecordPatches }) }),
    succeeded(output, input, caller) {
      const [record] = output.Records ?? [];
      assert.equal(record?.Key, RECORD_KEY);
      assert.equal(record?.Value, `by ${caller}`);
      assert.equal(record?.SyncCount, input.RecordPatches[0]!.SyncCount + 1);
      assert.equal(record?.LastModifiedBy, caller === 'developer' ? developerCredentials.accessKeyId : f.owner);
    },
    observe: (i) => datasetState(i),
  }),
];

test('the matrix covers all 17 Cognito Sync operations', () => {
  assert.equal(new Set(matrix.map((r) => r.operation)).size, 17);
});

for (const entry of matrix) {
  describe(entry.operation, () => {
    for (const caller of callers) {
      const allowed = entry.allowed.includes(caller);
      test(`${entry.operation} × ${caller} → ${allowed ? 'succeeds' : denial[caller]}`, async () => {
        const input = await entry.input(caller);
        if (allowed) {
          assert.notEqual(caller, 'unsigned');
          const output = await entry.send(await clientFor(caller as Exclude<Caller, 'unsigned'>), input);
          await entry.succeeded(output, input, caller);
          return;
        }
        const before = await entry.observe?.(input);
        if (caller === 'unsigned') {
          const response = await rawRequest(server.endpoint, { ...entry.wire(input), unsigned: true });
          assert.equal(response.status, 403, response.text);
          assert.equal(response.headers.get('x-amzn-errortype'), denial[caller]);
          assert.equal(response.json?.__type, denial[caller]);
          assert.equal(typeof response.json?.message, 'string');
        } else {
          const client = await clientFor(caller);
          const error = await rejection(() => entry.send(client, input));
          assert.equal(error.name, denial[caller], error.message);
          assert.equal(error.$metadata?.httpStatusCode, 403);
          assert.ok(error.message.length > 0);
        }
        if (entry.observe) assert.deepEqual(await entry.observe(input), before, 'a denied call changes nothing');
      });
    }
  });
}
