// Fuzzing one real server: ≥ 10,000 requests across every operation of both APIs — model-derived inputs
// (fast-check), byte-level mutations of valid signed requests, and UpdateRecords/DeleteDataset traffic on a few
// datasets tracked by a local model. Asserts no 5xx (on the wire or in /metrics), AWS-shaped errors, a live
// server, no "unexpected error" in its log, and store contents equal to what the accepted requests imply.
// Reproduce a run with COGNISYNC_FUZZ_SEED=<seed>; COGNISYNC_FUZZ_REQUESTS changes the count.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { CreateIdentityPoolCommand, GetOpenIdTokenForDeveloperIdentityCommand } from '@aws-sdk/client-cognito-identity';
import { developerCredentials, identityClient, identityCredentials, newIdentityId, startServer, type ClientCredentials, type ServerProcess } from '../support/server-process.ts';
import { awsErrorShapeProblem, exchange, runConcurrently, send, serialize, signRequest, type WireOutcome, type WireRequest, type WireResponse } from '../support/raw-http.ts';
import {
  apiCallArbitrary, identityOperationModels, mutateBytes, mutateParts, mutatesBeforeSigning, mutationArbitrary, syncOperationModels,
  type ApiCall, type KnownValues, type Mutation,
} from './fuzz-arbitraries.ts';

const SEED = Number(process.env.COGNISYNC_FUZZ_SEED ?? 20_261_127);
const REQUESTS = Number(process.env.COGNISYNC_FUZZ_REQUESTS ?? 10_000);
const CONCURRENCY = 16;
const MAX_BODY = 256 * 1024;
/** Nothing leaves loopback: integrations point at a closed local port, the AWS credential chain at fixed keys. */
const CLOSED_PORT = 'http://127.0.0.1:9';

let server: ServerProcess;
before(async () => {
  server = await startServer({
    env: {
      COGNISYNC_MAX_REQUEST_BODY_BYTES: String(MAX_BODY),
      // Rate limits have their own test (overload.test.ts); here every request should reach the pipeline.
      COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '0',
      COGNISYNC_RATE_LIMIT_POOL_RPS: '0',
      COGNISYNC_KINESIS_ENDPOINT: CLOSED_PORT,
      COGNISYNC_LAMBDA_ENDPOINT: CLOSED_PORT,
      COGNISYNC_SNS_ENDPOINT: CLOSED_PORT,
      COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS: '500',
      AWS_ACCESS_KEY_ID: 'AKIDFUZZOUTBOUND',
      AWS_SECRET_ACCESS_KEY: 'fuzz-outbound-secret',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      COGNISYNC_LOG_LEVEL: 'warn',
    },
  });
});
after(async () => {
  await server.stop();
});

// --- the model of a few datasets ------------------------------------------------------------------------

interface ModelRecord {
  value: string | undefined;
  syncCount: number;
}

interface ModelDataset {
  name: string;
  path: string;
  token: string;
  /** The dataset's counter: kept across DeleteDataset, so it only grows. */
  counter: number;
  /** The counter's value at the last deletion (0: never deleted). */
  deletedAt: number;
  exists: boolean;
  records: Map<string, ModelRecord>;
  /** One model request per dataset at a time, so responses arrive in commit order. */
  queue: Promise<unknown>;
}

interface PatchIntent {
  key: string;
  op: 'replace' | 'remove';
  value: string;
  /** 0: the record's current SyncCount; anything else: a stale one (a conflict). */
  stale: number;
  date?: number;
}

type ModelOp =
  | { kind: 'update'; dataset: number; patches: PatchIntent[]; mutation: Mutation | undefined }
  | { kind: 'delete'; dataset: number; mutation: Mutation | undefined }
  | { kind: 'list'; dataset: number };

const MODEL_DATASETS = 4;
const modelKeys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'long-key-'.padEnd(300, 'x'), 'ключ', '🔑'];

const valueArbitrary = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '\u0000', 'a\ud800', 'x'.repeat(3000), '{"json":true}', 'null') },
);

const patchIntent: fc.Arbitrary<PatchIntent> = fc.record(
  {
    key: fc.constantFrom(...modelKeys),
    op: fc.oneof({ weight: 4, arbitrary: fc.constant('replace' as const) }, { weight: 1, arbitrary: fc.constant('remove' as const) }),
    value: valueArbitrary,
    stale: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-1, 1, 5) }),
    date: fc.integer({ min: 1_000_000_000, max: 2_000_000_000 }),
  },
  { requiredKeys: ['key', 'op', 'value', 'stale'] },
);

/** Mostly distinct keys (a duplicate key fails the whole request). */
const patches = fc.oneof({ weight: 9, arbitrary: fc.uniqueArray(patchIntent, { selector: (patch) => patch.key, maxLength: 5 }) }, { weight: 1, arbitrary: fc.array(patchIntent, { maxLength: 5 }) });
const sometimesMutated = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: mutationArbitrary });

const modelOpArbitrary: fc.Arbitrary<ModelOp> = fc.oneof(
  { weight: 16, arbitrary: fc.record({ kind: fc.constant('update' as const), dataset: fc.nat(MODEL_DATASETS - 1), patches, mutation: sometimesMutated }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), dataset: fc.nat(MODEL_DATASETS - 1), mutation: sometimesMutated }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('list' as const), dataset: fc.nat(MODEL_DATASETS - 1) }) },
);

type Auth = 'developer' | 'identity' | 'unsigned' | 'wrong-secret';
type Item = { type: 'api'; call: ApiCall; auth: Auth; mutation?: Mutation } | { type: 'model'; op: ModelOp };

// --- bookkeeping ----------------------------------------------------------------------------------------

const failures: string[] = [];
const statusCounts = new Map<number, number>();
const closedByKind = new Map<string, number>();
const operationsSent = new Map<string, number>();
const operationsSucceeded = new Set<string>();
let sent = 0;
let modelAccepted = 0;

function fail(message: string) {
  if (failures.length < 25) failures.push(message);
  else failures.length === 25 && failures.push('… more failures omitted');
}

function describeRequest(bytes: Buffer): string {
  return JSON.stringify(bytes.subarray(0, 300).toString('latin1'));
}

/** Checks one outcome against the invariants; returns the response when there was one. */
function check(outcome: WireOutcome, bytes: Buffer, mutation: Mutation | undefined): WireResponse | undefined {
  sent++;
  if (outcome.kind === 'closed') {
    const kind = mutation?.kind ?? 'none';
    const label = `${kind}${outcome.gaveUp ? ' (gave up)' : ''}`;
    closedByKind.set(label, (closedByKind.get(label) ?? 0) + 1);
    // Only a request the client cut short, or one whose flipped byte left the server waiting for more (a larger
    // Content-Length, a broken header end), may end without an answer. One too large to read gets its 413: the
    // server's close lingers until the client has sent its body.
    const excused = kind === 'truncate' || (kind === 'flip' && outcome.gaveUp);
    if (!excused) fail(`no answer (${outcome.error ?? 'closed'}${outcome.gaveUp ? ', gave up waiting' : ''}) to ${describeRequest(bytes)}`);
    return undefined;
  }
  const { response } = outcome;
  statusCounts.set(response.status, (statusCounts.get(response.status) ?? 0) + 1);
  if (response.status >= 500) fail(`${response.status} ${response.text.slice(0, 300)} for ${describeRequest(bytes)}`);
  else if (response.status >= 300) {
    // An answer to HEAD has no body: only its header can show the error.
    const head = bytes.subarray(0, 5).toString('latin1') === 'HEAD ';
    const problem = head ? (response.headers['x-amzn-errortype'] ? undefined : 'no x-amzn-ErrorType header') : awsErrorShapeProblem(response);
    if (problem) fail(`${problem} for ${describeRequest(bytes)}`);
  }
  return response;
}

// --- sending --------------------------------------------------------------------------------------------

let identity: { identityId: string; credentials: ClientCredentials };
const wrongSecret: ClientCredentials = { accessKeyId: developerCredentials.accessKeyId, secretAccessKey: 'not-the-secret' };

async function build(call: Pick<ApiCall, 'method' | 'path' | 'query' | 'headers' | 'body' | 'service'>, auth: Auth, mutation: Mutation | undefined): Promise<Buffer> {
  let parts: { path: string; query: Record<string, string>; body: Buffer; rawQuery?: string } = { path: call.path, query: call.query, body: Buffer.from(call.body) };
  if (mutation && mutatesBeforeSigning(mutation)) parts = mutateParts(mutation, parts);
  let wire: WireRequest;
  if (auth === 'unsigned') {
    const url = new URL(server.endpoint);
    wire = { method: call.method, path: parts.path, query: new URLSearchParams(parts.query).toString(), headers: { host: url.host, ...call.headers, ...(parts.body.length ? { 'content-length': String(parts.body.length) } : {}) }, body: parts.body };
  } else {
    const credentials = auth === 'developer' ? developerCredentials : auth === 'identity' ? identity.credentials : wrongSecret;
    wire = await signRequest(server.endpoint, { method: call.method, path: parts.path, query: parts.query, headers: call.headers, body: parts.body, service: call.service, credentials });
  }
  if (parts.rawQuery) wire.query = wire.query ? `${wire.query}&${parts.rawQuery}` : parts.rawQuery;
  let bytes = serialize(wire);
  if (mutation && !mutatesBeforeSigning(mutation)) bytes = mutateBytes(mutation, bytes, MAX_BODY);
  return bytes;
}

/** A cut request is abandoned at once; a mutated one after 3 s of silence; an intact one is always answered. */
function exchangeOptions(mutation: Mutation | undefined) {
  if (mutation?.kind === 'truncate' || mutation?.kind === 'duplicate-content-length') return { halfClose: true, timeoutMs: 20_000 };
  return mutation ? { giveUpAfterMs: 3000, timeoutMs: 20_000 } : { timeoutMs: 20_000 };
}

async function sendApi(item: Extract<Item, { type: 'api' }>) {
  operationsSent.set(item.call.operation, (operationsSent.get(item.call.operation) ?? 0) + 1);
  const bytes = await build(item.call, item.auth, item.mutation);
  const response = check(await exchange(server.endpoint, bytes, exchangeOptions(item.mutation)), bytes, item.mutation);
  if (response && response.status < 300) operationsSucceeded.add(item.call.operation);
}

const datasets: ModelDataset[] = [];

function recordsOf(dataset: ModelDataset) {
  return [...dataset.records].map(([key, record]) => ({ key, value: record.value, syncCount: record.syncCount })).sort((a, b) => a.key.localeCompare(b.key));
}

async function listAll(dataset: ModelDataset) {
  const records: { key: string; value: string | undefined; syncCount: number }[] = [];
  let nextToken: string | undefined;
  let first: any;
  do {
    const response = await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: `${dataset.path}/records`, query: { maxResults: '1024', ...(nextToken ? { nextToken } : {}) } }));
    assert.equal(response.status, 200, response.text);
    first ??= response.json;
    for (const record of response.json.Records ?? []) records.push({ key: record.Key, value: record.Value, syncCount: record.SyncCount });
    nextToken = response.json.NextToken;
  } while (nextToken);
  return { records: records.sort((a, b) => a.key.localeCompare(b.key)), exists: first.DatasetExists as boolean, syncCount: first.DatasetSyncCount as number };
}

function expectedListing(dataset: ModelDataset) {
  return { records: dataset.exists ? recordsOf(dataset) : [], exists: dataset.exists, syncCount: dataset.exists ? dataset.counter : 0 };
}

/** Applies an accepted UpdateRecords body to the model and checks the answer's records against it. */
function applyUpdate(dataset: ModelDataset, body: Buffer, response: WireResponse) {
  const patches = (JSON.parse(body.toString()).RecordPatches ?? []) as { Op: string; Key: string; Value?: string }[];
  dataset.counter += 1;
  if (!dataset.exists) dataset.records.clear();
  dataset.exists = true;
  // Removing a key the dataset never held stores nothing; it is answered removed at the request's SyncCount.
  const expected = patches.map((patch) => ({ key: patch.Key, value: patch.Op === 'remove' ? undefined : patch.Value, syncCount: dataset.counter }));
  for (const record of expected) if (record.value !== undefined || dataset.records.has(record.key)) dataset.records.set(record.key, { value: record.value, syncCount: record.syncCount });
  const answered = (response.json?.Records ?? []).map((r: any) => ({ key: r.Key, value: r.Value, syncCount: r.SyncCount }));
  assert.deepEqual(answered, expected, `UpdateRecords answer of ${dataset.name}`);
  modelAccepted++;
}

function predictUpdate(dataset: ModelDataset, patches: PatchIntent[]): number {
  if (patches.some((p) => p.op === 'replace' && (!p.value.isWellFormed() || p.value.includes('\u0000')))) return 400;
  if (new Set(patches.map((p) => p.key)).size !== patches.length) return 400;
  // A stale count conflicts, except on a key with no stored version, which also takes any count the dataset reached
  // since its last deletion (the counts it answers removals of never-held keys with).
  const takesUnstored = (p: PatchIntent) => {
    const syncCount = currentSyncCount(dataset, p.key) + p.stale;
    return dataset.exists && !dataset.records.has(p.key) && syncCount > dataset.deletedAt && syncCount <= dataset.counter;
  };
  if (patches.some((p) => p.stale !== 0 && !takesUnstored(p))) return 409;
  return 200;
}

function currentSyncCount(dataset: ModelDataset, key: string): number {
  return dataset.exists ? (dataset.records.get(key)?.syncCount ?? 0) : 0;
}

async function runModelOp(op: ModelOp) {
  const dataset = datasets[op.dataset]!;
  const run = async () => {
    operationsSent.set(`model:${op.kind}`, (operationsSent.get(`model:${op.kind}`) ?? 0) + 1);
    if (op.kind === 'list') {
      sent++;
      assert.deepEqual(await listAll(dataset), expectedListing(dataset), `ListRecords of ${dataset.name} mid-run`);
      return;
    }
    const mutation = op.kind === 'update' || op.kind === 'delete' ? op.mutation : undefined;
    let body: Buffer = Buffer.alloc(0);
    if (op.kind === 'update') {
      body = Buffer.from(
        JSON.stringify({
          SyncSessionToken: dataset.token,
          RecordPatches: op.patches.map((p) => ({
            Op: p.op, Key: p.key, ...(p.op === 'replace' ? { Value: p.value } : {}), SyncCount: currentSyncCount(dataset, p.key) + p.stale, ...(p.date ? { DeviceLastModifiedDate: p.date } : {}),
          })),
        }),
      );
    }
    const method = op.kind === 'update' ? 'POST' : 'DELETE';
    let sentBody: Buffer = body;
    if (mutation && mutatesBeforeSigning(mutation)) sentBody = mutateParts(mutation, { path: dataset.path, query: {}, body }).body;
    const bytes = await build({ method, path: dataset.path, query: {}, headers: op.kind === 'update' ? { 'content-type': 'application/json' } : {}, body: body.toString(), service: 'cognito-sync' }, 'developer', mutation);
    const response = check(await exchange(server.endpoint, bytes, exchangeOptions(mutation)), bytes, mutation);
    if (!mutation) {
      const expected = op.kind === 'update' ? predictUpdate(dataset, op.patches) : dataset.exists ? 200 : 404;
      if (response?.status !== expected) fail(`${op.kind} of ${dataset.name}: expected ${expected}, got ${response?.status} ${response?.text.slice(0, 200)}`);
    }
    if (!response || response.status >= 300) return;
    operationsSucceeded.add(`model:${op.kind}`);
    if (op.kind === 'update') applyUpdate(dataset, sentBody, response);
    else {
      dataset.exists = false;
      dataset.records.clear();
      dataset.counter += 1; // the deletion takes the next SyncCount
      dataset.deletedAt = dataset.counter;
      modelAccepted++;
      // A token from before the deletion is refused (409) from now on: take a new one, as a client's pull would.
      const listed = await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: `${dataset.path}/records`, credentials: developerCredentials }));
      assert.equal(listed.status, 200, listed.text);
      dataset.token = listed.json.SyncSessionToken as string;
    }
  };
  const done = dataset.queue.then(run);
  dataset.queue = done.catch(() => undefined);
  await done;
}

// --- the run --------------------------------------------------------------------------------------------

test(`fuzz: ${REQUESTS} requests across every operation, seed ${SEED}`, { timeout: 180_000 }, async (t) => {
  const cognito = identityClient(server.endpoint);
  const createPool = async (name: string, provider?: string) =>
    (await cognito.send(new CreateIdentityPoolCommand({ IdentityPoolName: name, AllowUnauthenticatedIdentities: true, ...(provider ? { DeveloperProviderName: provider } : {}) }))).IdentityPoolId!;
  const fuzzPools = [await createPool('fuzz0', 'login.fuzz0'), await createPool('fuzz1', 'login.fuzz1')];
  const sacrificialPool = await createPool('sacrificial', 'login.sacrificial');
  const modelPool = await createPool('model');
  identity = await identityCredentials(server.endpoint, fuzzPools[0]!);
  const sacrificial = await identityCredentials(server.endpoint, sacrificialPool);
  const developerIdentity = (await cognito.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: fuzzPools[0]!, Logins: { 'login.fuzz0': 'user-1' } }))).IdentityId!;
  const tokenFor = async (poolId: string, identityId: string, datasetName: string, credentials: ClientCredentials = developerCredentials) => {
    const path = `/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identityId)}/datasets/${datasetName}`;
    const listed = await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: `${path}/records`, credentials }));
    assert.equal(listed.status, 200, listed.text);
    return { path, token: listed.json.SyncSessionToken as string };
  };
  const fuzzTokens = [
    (await tokenFor(fuzzPools[0]!, identity.identityId, 'a', identity.credentials)).token,
    (await tokenFor(fuzzPools[0]!, identity.identityId, 'b', identity.credentials)).token,
    (await tokenFor(fuzzPools[0]!, developerIdentity, 'a')).token,
  ];
  const modelIdentity = newIdentityId();
  for (let i = 0; i < MODEL_DATASETS; i++) {
    const { path, token } = await tokenFor(modelPool, modelIdentity, `model-${i}`);
    datasets.push({ name: `model-${i}`, path, token, counter: 0, deletedAt: 0, exists: false, records: new Map(), queue: Promise.resolve() });
  }

  // Known values reach real resources; destructive operations only ever see the sacrificial pool and identity,
  // and nothing generic ever names the model's pool.
  const common: KnownValues = {
    IdentityPoolId: fuzzPools,
    IdentityId: [identity.identityId, developerIdentity, newIdentityId()],
    DatasetName: ['a', 'b', 'c'],
    SyncSessionToken: fuzzTokens,
    DeveloperProviderName: ['login.fuzz0', 'login.fuzz1'],
    DeveloperUserIdentifier: ['user-1', 'user-2'],
    SourceUserIdentifier: ['user-1', 'user-2'],
    DestinationUserIdentifier: ['user-1', 'user-2'],
    Key: ['k0', 'k1', 'k2'],
    SyncCount: [0, 1, 2],
    IdentityPoolName: ['renamed'],
    Logins: [{ 'login.fuzz0': 'user-1' }, { 'login.fuzz0': 'user-2' }],
    LoginsToRemove: [['login.fuzz0']],
  };
  const destructive = new Set(['DeleteIdentityPool', 'DeleteIdentities', 'MergeDeveloperIdentities', 'UnlinkDeveloperIdentity', 'UnlinkIdentity']);
  const knownFor = (operation: string): KnownValues =>
    destructive.has(operation)
      ? { ...common, IdentityPoolId: [sacrificialPool], IdentityId: [sacrificial.identityId], DeveloperProviderName: ['login.sacrificial'], Logins: [{ 'login.sacrificial': 'user-9' }] }
      : common;

  const auth = fc.oneof(
    { weight: 14, arbitrary: fc.constant<Auth>('developer') },
    { weight: 4, arbitrary: fc.constant<Auth>('identity') },
    { weight: 1, arbitrary: fc.constant<Auth>('unsigned') },
    { weight: 1, arbitrary: fc.constant<Auth>('wrong-secret') },
  );
  const api = apiCallArbitrary(knownFor);
  const itemArbitrary: fc.Arbitrary<Item> = fc.oneof(
    { weight: 55, arbitrary: fc.record({ type: fc.constant('api' as const), call: api, auth }) },
    { weight: 25, arbitrary: fc.record({ type: fc.constant('api' as const), call: api, auth, mutation: mutationArbitrary }) },
    { weight: 20, arbitrary: fc.record({ type: fc.constant('model' as const), op: modelOpArbitrary }) },
  );
  const items = fc.sample(itemArbitrary, { seed: SEED, numRuns: REQUESTS });

  const started = performance.now();
  await runConcurrently(items, CONCURRENCY, async (item) => {
    try {
      if (item.type === 'api') await sendApi(item);
      else await runModelOp(item.op);
    } catch (error) {
      fail(`${item.type === 'api' ? item.call.operation : `model ${item.op.kind}`}: ${(error as Error).message.slice(0, 600)}`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(`${sent} requests in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s); statuses ${JSON.stringify(Object.fromEntries([...statusCounts].sort()))}`);
  t.diagnostic(`closed without an answer, by mutation: ${JSON.stringify(Object.fromEntries(closedByKind))}; model writes accepted: ${modelAccepted}`);
  t.diagnostic(`operations with at least one 2xx: ${operationsSucceeded.size} (${[...operationsSucceeded].sort().join(', ')})`);

  assert.deepEqual(failures, [], `seed ${SEED}`);
  assert.ok(sent >= REQUESTS, `sent ${sent}`);
  for (const model of [...syncOperationModels, ...identityOperationModels]) {
    assert.ok((operationsSent.get(model.name) ?? 0) >= REQUESTS / 500, `${model.name} fuzzed only ${operationsSent.get(model.name) ?? 0} times`);
  }
  assert.ok(modelAccepted >= REQUESTS / 50, `only ${modelAccepted} model writes were accepted`);

  // Still alive and healthy.
  const health = await fetch(`${server.endpoint}/health`);
  assert.equal(health.status, 200);
  // No 5xx the client could not see either (a request whose client vanished still counts in the metrics).
  const metrics = await (await fetch(`${server.endpoint}/metrics`)).text();
  assert.doesNotMatch(metrics, /^cognisync_requests_total\{[^}]*status="5\d\d"[^}]*\} [1-9]/m, 'a 5xx was counted');
  // Nothing unexpected in the log: every error was a client's.
  assert.doesNotMatch(server.stderr(), /"msg":"(unexpected error|request pipeline failed)"/);

  // The store holds exactly what the accepted requests imply.
  for (const dataset of datasets) {
    assert.deepEqual(await listAll(dataset), expectedListing(dataset), `final ListRecords of ${dataset.name}`);
    const described = await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: dataset.path }));
    if (!dataset.exists) {
      assert.equal(described.status, 404, described.text);
      continue;
    }
    const live = recordsOf(dataset).filter((record) => record.value !== undefined);
    assert.equal(described.json.Dataset.NumRecords, live.length, `NumRecords of ${dataset.name}`);
    assert.equal(described.json.Dataset.DataStorage, live.reduce((sum, r) => sum + Buffer.byteLength(r.key) + Buffer.byteLength(r.value!), 0), `DataStorage of ${dataset.name}`);
  }
});
