// Durability under kill -9 on SQLite: rounds of concurrent UpdateRecords load, each ended by SIGKILL at a
// random moment, then a restart on the same data dir and master key. Every acknowledged write must be there,
// each dataset must hold exactly its acknowledged writes (plus at most the one write in flight when the
// process died), SyncCounts and usage must agree, and the transactional outbox must hold exactly one entry
// per committed write.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import { SetIdentityPoolConfigurationCommand } from '@aws-sdk/client-cognito-sync';
import { developerCredentials, identityClient, identityCredentials, newIdentityId, startServer, syncClient, type ClientCredentials, type ServerProcess } from '../support/server-process.ts';
import { exchange, send, serialize, signRequest } from '../support/raw-http.ts';

const ROUNDS = 5;
const WRITERS = 8;
const SEED = Number(process.env.COGNISYNC_CRASH_SEED ?? 7);
const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-crash-'));
const env = {
  COGNISYNC_MASTER_KEY: randomBytes(32).toString('base64'),
  COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '0',
  COGNISYNC_RATE_LIMIT_POOL_RPS: '0',
  // Streaming on, to a Kinesis that never answers: every committed write leaves its outbox entry in place.
  COGNISYNC_KINESIS_ENDPOINT: 'http://127.0.0.1:9',
  AWS_ACCESS_KEY_ID: 'AKIDCRASHOUTBOUND',
  AWS_SECRET_ACCESS_KEY: 'crash-outbound-secret',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  COGNISYNC_LOG_LEVEL: 'fatal',
};
after(() => rmSync(dataDir, { recursive: true, force: true }));

interface StoredRecord {
  value: string | undefined;
  syncCount: number;
}

interface Writer {
  path: string;
  credentials: ClientCredentials;
  token: string;
  /** The dataset as the acknowledged writes left it. */
  acked: Map<string, StoredRecord>;
  count: number;
  /** The write sent but not answered when the server died: it may or may not have committed. */
  inFlight: { records: Map<string, StoredRecord>; count: number } | undefined;
  written: number;
}

function withWrite(records: Map<string, StoredRecord>, patches: { Op: string; Key: string; Value?: string }[], count: number) {
  const next = new Map(records);
  for (const patch of patches) next.set(patch.Key, { value: patch.Op === 'remove' ? undefined : patch.Value, syncCount: count });
  return next;
}

/** One writer's load: sequential UpdateRecords on its own dataset until the connection dies. */
async function writeUntilKilled(endpoint: string, writer: Writer, round: number, random: () => number) {
  for (let n = 0; ; n++) {
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'].filter(() => random() < 0.4);
    if (keys.length === 0) keys.push('a');
    const patches = keys.map((key) => {
      const remove = writer.acked.get(key)?.value !== undefined && random() < 0.15;
      return { Op: remove ? 'remove' : 'replace', Key: key, ...(remove ? {} : { Value: `r${round}-n${n}-${'x'.repeat(Math.floor(random() * 200))}` }), SyncCount: writer.acked.get(key)?.syncCount ?? 0 };
    });
    const body = JSON.stringify({ SyncSessionToken: writer.token, RecordPatches: patches });
    writer.inFlight = { records: withWrite(writer.acked, patches, writer.count + 1), count: writer.count + 1 };
    const request = await signRequest(endpoint, { method: 'POST', path: writer.path, headers: { 'content-type': 'application/json' }, body, credentials: writer.credentials });
    const outcome = await exchange(endpoint, serialize(request), { timeoutMs: 10_000 });
    if (outcome.kind === 'closed') return;
    assert.equal(outcome.response.status, 200, outcome.response.text);
    writer.acked = writer.inFlight.records;
    writer.count = writer.inFlight.count;
    writer.inFlight = undefined;
    writer.written++;
  }
}

async function listRecords(endpoint: string, path: string) {
  const records = new Map<string, StoredRecord>();
  let nextToken: string | undefined;
  let first: any;
  do {
    const response = await send(endpoint, await signRequest(endpoint, { method: 'GET', path: `${path}/records`, query: nextToken ? { nextToken } : {} }));
    assert.equal(response.status, 200, response.text);
    first ??= response.json;
    for (const r of response.json.Records) records.set(r.Key, { value: r.Value, syncCount: r.SyncCount });
    nextToken = response.json.NextToken;
  } while (nextToken);
  return { records, syncCount: first.DatasetSyncCount as number, exists: first.DatasetExists as boolean };
}

const sorted = (records: Map<string, StoredRecord>) => [...records].sort(([a], [b]) => a.localeCompare(b));

/** Checks one dataset after a restart and brings the writer's view up to date. */
async function verify(endpoint: string, writer: Writer) {
  const stored = await listRecords(endpoint, writer.path);
  const matchesAcked = stored.syncCount === writer.count && JSON.stringify(sorted(stored.records)) === JSON.stringify(sorted(writer.acked));
  const matchesInFlight = writer.inFlight !== undefined && stored.syncCount === writer.inFlight.count && JSON.stringify(sorted(stored.records)) === JSON.stringify(sorted(writer.inFlight.records));
  assert.ok(matchesAcked || matchesInFlight, `${writer.path}: stored ${JSON.stringify({ count: stored.syncCount, records: sorted(stored.records) })}, acknowledged ${JSON.stringify({ count: writer.count, records: sorted(writer.acked) })}`);
  if (matchesInFlight) {
    writer.acked = writer.inFlight!.records;
    writer.count = writer.inFlight!.count;
  }
  writer.inFlight = undefined;
  if (writer.count === 0) return 0;

  // Internal consistency: the dataset's SyncCount is its newest record's; usage matches the records.
  assert.equal(stored.syncCount, Math.max(...[...stored.records.values()].map((r) => r.syncCount)), `${writer.path}: dataset SyncCount vs records`);
  const described = await send(endpoint, await signRequest(endpoint, { method: 'GET', path: writer.path }));
  assert.equal(described.status, 200, described.text);
  const live = [...stored.records].filter(([, r]) => r.value !== undefined);
  assert.equal(described.json.Dataset.NumRecords, live.length, `${writer.path}: NumRecords`);
  assert.equal(described.json.Dataset.DataStorage, live.reduce((sum, [key, r]) => sum + Buffer.byteLength(key) + Buffer.byteLength(r.value!), 0), `${writer.path}: DataStorage`);
  return writer.count;
}

async function outboxPending(endpoint: string): Promise<number> {
  const response = await send(endpoint, await signRequest(endpoint, { method: 'GET', path: '/admin/outbox' }));
  assert.equal(response.status, 200, response.text);
  return response.json.pending;
}

test(`crash loop: ${ROUNDS} × kill -9 during concurrent UpdateRecords on SQLite`, { timeout: 120_000 }, async (t) => {
  let server: ServerProcess = await startServer({ dataDir, env });
  const poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'crash', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  await syncClient(server.endpoint).send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: { StreamName: 'crash-stream', RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'ENABLED' } }));
  // Half the writers use identity credentials (which must keep working across restarts: same master key),
  // half the developer's, each on a dataset of its own.
  const users = [await identityCredentials(server.endpoint, poolId), await identityCredentials(server.endpoint, poolId)];
  const writers: Writer[] = [];
  for (let w = 0; w < WRITERS; w++) {
    const user = w % 2 === 0 ? users[(w / 2) % 2]! : { identityId: newIdentityId(), credentials: developerCredentials };
    const path = `/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(user.identityId)}/datasets/load-${w}`;
    const listed = await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: `${path}/records`, credentials: user.credentials }));
    assert.equal(listed.status, 200, listed.text);
    writers.push({ path, credentials: user.credentials, token: listed.json.SyncSessionToken, acked: new Map(), count: 0, inFlight: undefined, written: 0 });
  }

  const [killDelays, seeds] = fc.sample(fc.tuple(fc.array(fc.integer({ min: 150, max: 700 }), { minLength: ROUNDS, maxLength: ROUNDS }), fc.array(fc.integer(), { minLength: WRITERS, maxLength: WRITERS })), { seed: SEED, numRuns: 1 })[0]!;
  const randoms = seeds.map((seed) => {
    let state = seed >>> 0 || 1;
    return () => ((state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  });
  let inFlightAtKill = 0;
  let committedInFlight = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const load = writers.map((writer, w) => writeUntilKilled(server.endpoint, writer, round, randoms[w]!));
    await new Promise((r) => setTimeout(r, killDelays[round]));
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGKILL');
    await exited;
    await Promise.all(load);
    inFlightAtKill += writers.filter((w) => w.inFlight).length;

    server = await startServer({ dataDir, env });
    let committed = 0;
    for (const writer of writers) {
      const before = writer.count;
      const hadInFlight = writer.inFlight !== undefined;
      committed += await verify(server.endpoint, writer);
      if (hadInFlight && writer.count > before) committedInFlight++;
    }
    // One Cognito Streams entry per committed write, written in the same transaction: none lost, none extra.
    assert.equal(await outboxPending(server.endpoint), committed, `round ${round}: outbox entries vs committed writes`);
  }
  const written = writers.reduce((sum, w) => sum + w.written, 0);
  t.diagnostic(`${written} acknowledged writes over ${ROUNDS} kills; ${inFlightAtKill} writes in flight at a kill, ${committedInFlight} of them committed`);
  assert.ok(written >= ROUNDS * WRITERS, `only ${written} writes were acknowledged`);

  // A clean stop, then SQLite's own check of the file.
  assert.equal(await server.stop(), 0);
  const db = new Database(join(dataDir, 'cognisync.db'), { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    db.close();
  }
});
