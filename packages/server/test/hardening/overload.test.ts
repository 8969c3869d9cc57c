// Overload on loopback, bounded in count and time: per-identity and per-pool rate limits answer
// TooManyRequestsException before any work; the in-flight cap refuses a flood AWS-shaped and the server keeps
// answering; slow clients (slowloris) are cut off by the header/request timeouts while others are served;
// overlong headers get 431.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CreateIdentityPoolCommand, GetCredentialsForIdentityCommand, GetIdCommand, GetOpenIdTokenForDeveloperIdentityCommand } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { identityClient, identityCredentials, newIdentityId, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';
import { assertAwsError, awsErrorShapeProblem, exchange, parseResponse, runConcurrently, send, serialize, signRequest, type WireResponse } from '../support/raw-http.ts';

async function createPool(endpoint: string, name: string) {
  return (await identityClient(endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: name, AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
}

const recordsPath = (poolId: string, identityId: string, dataset = 'settings') =>
  `/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identityId)}/datasets/${dataset}/records`;

/**
 * Asserts how many requests a token bucket let through: every token left in it (`tokens`), plus at most what
 * refilled at `perSecond` since `since` (so a slow machine cannot fail the test).
 */
function assertAdmitted(admitted: number, tokens: number, perSecond: number, since: number) {
  const refilled = Math.ceil(((performance.now() - since) / 1000) * perSecond);
  assert.ok(admitted >= tokens && admitted <= tokens + refilled, `admitted ${admitted}; expected ${tokens} to ${tokens + refilled}`);
}

function settle<T>(promises: Promise<T>[]) {
  return Promise.allSettled(promises).then((results) => ({
    fulfilled: results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : [])),
    rejected: results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error & { $metadata?: { httpStatusCode?: number } }] : [])),
  }));
}

describe('rate limit per identity', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '1', COGNISYNC_RATE_LIMIT_IDENTITY_BURST: '5', COGNISYNC_RATE_LIMIT_POOL_RPS: '0' } });
  });
  after(() => server.stop());

  test('identity credentials over the rate → 429 TooManyRequestsException, and refused writes write nothing', async () => {
    const poolId = await createPool(server.endpoint, 'identity-rate');
    const since = performance.now();
    // GetCredentialsForIdentity (unsigned) counts against Alice's bucket of 5, and so does her ListRecords.
    const alice = await identityCredentials(server.endpoint, poolId);
    const client = syncClient(server.endpoint, alice.credentials);
    const key = { IdentityPoolId: poolId, IdentityId: alice.identityId, DatasetName: 'settings' };
    const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
    const writes = Array.from({ length: 12 }, (_, i) =>
      client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: `k${i}`, Value: 'v', SyncCount: 0 }] })),
    );
    const { fulfilled, rejected } = await settle(writes);
    assertAdmitted(fulfilled.length, 3, 1, since);
    assert.ok(rejected.length >= 6);
    for (const error of rejected) {
      assert.equal(error.name, 'TooManyRequestsException', error.message);
      assert.equal(error.$metadata?.httpStatusCode, 429);
      assert.match(error.message, /Rate exceeded for identity/);
    }
    // The developer (never limited) sees exactly the accepted writes.
    const stored = await syncClient(server.endpoint).send(new ListRecordsCommand(key));
    assert.deepEqual(stored.Records!.map((r) => r.Key).sort(), fulfilled.map((i) => `k${i}`).sort());
    assert.equal(stored.DatasetSyncCount, fulfilled.length);

    // Another identity of the same pool is not held back by Alice's flood.
    const bob = await identityCredentials(server.endpoint, poolId);
    await syncClient(server.endpoint, bob.credentials).send(new ListRecordsCommand({ ...key, IdentityId: bob.identityId }));
  });

  test('the developer is not limited', async () => {
    const poolId = await createPool(server.endpoint, 'developer-unlimited');
    const client = syncClient(server.endpoint);
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'settings' };
    const { fulfilled, rejected } = await settle(Array.from({ length: 40 }, () => client.send(new ListRecordsCommand(key))));
    assert.equal(rejected.length, 0, rejected[0]?.message);
    assert.equal(fulfilled.length, 40);
  });

  test('unsigned GetCredentialsForIdentity is limited per identity too', async () => {
    const poolId = await createPool(server.endpoint, 'unsigned-rate');
    const cognito = identityClient(server.endpoint);
    const { IdentityId } = await cognito.send(new GetIdCommand({ IdentityPoolId: poolId }));
    const since = performance.now();
    const { fulfilled, rejected } = await settle(Array.from({ length: 10 }, () => cognito.send(new GetCredentialsForIdentityCommand({ IdentityId }))));
    assertAdmitted(fulfilled.length, 5, 1, since);
    assert.ok(rejected.length >= 1);
    for (const error of rejected) {
      assert.equal(error.name, 'TooManyRequestsException', error.message);
      assert.equal(error.$metadata?.httpStatusCode, 400, 'Cognito Identity errors are 400 (JSON 1.1)');
    }
  });
});

describe('rate limit per identity, against callers who only know the id', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '1', COGNISYNC_RATE_LIMIT_IDENTITY_BURST: '5', COGNISYNC_RATE_LIMIT_POOL_RPS: '0' } });
  });
  after(() => server.stop());

  test("refused unsigned calls naming an identity do not spend that identity's rate", async () => {
    const { IdentityPoolId } = await identityClient(server.endpoint).send(
      new CreateIdentityPoolCommand({ IdentityPoolName: 'victim', AllowUnauthenticatedIdentities: false, DeveloperProviderName: 'login.example' }),
    );
    const { IdentityId, Token } = await identityClient(server.endpoint).send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId, Logins: { 'login.example': 'user-1' } }));
    // Someone who saw the id (records carry it in LastModifiedBy) asks for its credentials 20 times without a login.
    const cognito = identityClient(server.endpoint);
    const attack = await settle(Array.from({ length: 20 }, () => cognito.send(new GetCredentialsForIdentityCommand({ IdentityId }))));
    assert.equal(attack.fulfilled.length, 0);
    assert.deepEqual([...new Set(attack.rejected.map((error) => error.name))], ['NotAuthorizedException']);
    // The user's own calls, 1 GetCredentialsForIdentity and 4 ListRecords, fit the bucket of 5.
    const { Credentials } = await cognito.send(new GetCredentialsForIdentityCommand({ IdentityId, Logins: { 'cognito-identity.amazonaws.com': Token! } }));
    const credentials = { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretKey!, sessionToken: Credentials!.SessionToken! };
    const reads = await settle(Array.from({ length: 4 }, () => syncClient(server.endpoint, credentials).send(new ListRecordsCommand({ IdentityPoolId, IdentityId, DatasetName: 'd' }))));
    assert.equal(reads.rejected.length, 0, reads.rejected[0]?.message);
  });
});

describe('rate limit per pool', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '0', COGNISYNC_RATE_LIMIT_POOL_RPS: '1', COGNISYNC_RATE_LIMIT_POOL_BURST: '12' } });
  });
  after(() => server.stop());

  test("all of a pool's identities together are held to the pool's rate; other pools and the developer are not", async () => {
    const busy = await createPool(server.endpoint, 'busy');
    const quiet = await createPool(server.endpoint, 'quiet');
    // 3 GetId and 3 GetCredentialsForIdentity calls spend 6 of the busy pool's 12 tokens.
    const since = performance.now();
    const users = await Promise.all([1, 2, 3].map(() => identityCredentials(server.endpoint, busy)));
    const reads = users.flatMap((user) =>
      Array.from({ length: 4 }, () => syncClient(server.endpoint, user.credentials).send(new ListRecordsCommand({ IdentityPoolId: busy, IdentityId: user.identityId, DatasetName: 'd' }))),
    );
    const { fulfilled, rejected } = await settle(reads);
    assertAdmitted(fulfilled.length, 6, 1, since);
    assert.ok(rejected.length >= 1);
    for (const error of rejected) {
      assert.equal(error.name, 'TooManyRequestsException');
      assert.equal(error.$metadata?.httpStatusCode, 429);
      assert.match(error.message, /Rate exceeded for identity pool/);
    }
    // Unsigned GetId on the exhausted pool is refused as well…
    const getId = await settle([1, 2, 3].map(() => identityClient(server.endpoint).send(new GetIdCommand({ IdentityPoolId: busy }))));
    assert.ok(getId.rejected.length >= 1);
    for (const error of getId.rejected) assert.equal(error.name, 'TooManyRequestsException');
    // …while another pool and the developer are served.
    const other = await identityCredentials(server.endpoint, quiet);
    await syncClient(server.endpoint, other.credentials).send(new ListRecordsCommand({ IdentityPoolId: quiet, IdentityId: other.identityId, DatasetName: 'd' }));
    await syncClient(server.endpoint).send(new ListRecordsCommand({ IdentityPoolId: busy, IdentityId: users[0]!.identityId, DatasetName: 'd' }));
  });
});

/** Opens a raw connection and writes `head`; resolves once connected. */
/** A raw connection that sends `head`; with `allowHalfOpen` it never closes its side, even after the server closed its own. */
function openSocket(endpoint: string, head: string, { allowHalfOpen = false } = {}): Promise<Socket & { received: Buffer[]; closedAt?: number }> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), allowHalfOpen }) as Socket & { received: Buffer[]; closedAt?: number };
    socket.received = [];
    socket.on('data', (chunk) => socket.received.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => (socket.closedAt = Date.now()));
    socket.once('connect', () => {
      socket.write(head);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

describe('stopping', () => {
  test('SIGTERM with a request whose body never finishes: the connection is cut after the grace period and the process exits 0', async () => {
    const server = await startServer({ env: { COGNISYNC_SHUTDOWN_GRACE_MS: '500' } });
    const poolId = await createPool(server.endpoint, 'stopping');
    const stalled = await openSocket(server.endpoint, `POST ${recordsPath(poolId, newIdentityId()).replace(/\/records$/, '')} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"Sync`);
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    assert.equal(await server.stop(), 0);
    assert.ok(Date.now() - started < 5_000, `stopped after ${Date.now() - started} ms`);
    stalled.destroy();
  });

  test('SIGTERM with a keep-alive request in flight: it is answered with Connection: close, the connection closes, and the stop does not wait for the grace period', async () => {
    const server = await startServer({ env: { COGNISYNC_SHUTDOWN_GRACE_MS: '8000' } });
    // The request line and headers, all but the blank line that ends them: in flight when the stop comes.
    const busy = await openSocket(server.endpoint, 'GET /health HTTP/1.1\r\nhost: x\r\n');
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const stopped = server.stop();
    await new Promise((r) => setTimeout(r, 200));
    busy.write('\r\n');
    const code = await stopped;
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 4_000, `stopped after ${Date.now() - started} ms (grace 8 s)`);
    const response = parseResponse(Buffer.concat(busy.received));
    assert.equal(response?.status, 200);
    assert.match(Buffer.concat(busy.received).toString('latin1'), /\r\nconnection: close\r\n/i);
    assert.ok(busy.closedAt !== undefined, 'the server closed the connection');
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`a second ${signal} while stopping waits for the same stop: the request in flight is answered and the process exits 0`, async () => {
      const server = await startServer({ env: { COGNISYNC_SHUTDOWN_GRACE_MS: '8000' } });
      const busy = await openSocket(server.endpoint, 'GET /health HTTP/1.1\r\nhost: x\r\n');
      await new Promise((r) => setTimeout(r, 200));
      const exited = new Promise<[number | null, string | null]>((r) => server.child.once('exit', (code, killedBy) => r([code, killedBy])));
      server.child.kill(signal);
      await new Promise((r) => setTimeout(r, 200));
      server.child.kill(signal);
      await new Promise((r) => setTimeout(r, 200));
      busy.write('\r\n');
      assert.deepEqual(await exited, [0, null]);
      assert.equal(parseResponse(Buffer.concat(busy.received))?.status, 200);
      await server.stop();
    });
  }

  test('SIGTERM while a request that arrived before it is still being read: its answer says Connection: close too', async () => {
    const server = await startServer({ env: { COGNISYNC_SHUTDOWN_GRACE_MS: '8000' } });
    const poolId = await createPool(server.endpoint, 'stopping');
    // Headers complete (the request has arrived), its body not yet.
    const busy = await openSocket(server.endpoint, `POST ${recordsPath(poolId, newIdentityId()).replace(/\/records$/, '')} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{`);
    await new Promise((r) => setTimeout(r, 200));
    const stopped = server.stop();
    await new Promise((r) => setTimeout(r, 200));
    busy.write('}');
    assert.equal(await stopped, 0);
    const answer = Buffer.concat(busy.received).toString('latin1');
    assert.match(answer, /^HTTP\/1\.1 403 /, 'answered (unsigned)');
    assert.match(answer, /\r\nconnection: close\r\n/i);
  });
});

describe('in-flight cap', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_MAX_IN_FLIGHT_REQUESTS: '4', COGNISYNC_LOG_LEVEL: 'info' } });
  });
  after(() => server.stop());

  test('with every slot busy, more requests get 429 AWS-shaped at once; /health still answers; then all is served again', async () => {
    const poolId = await createPool(server.endpoint, 'in-flight');
    const path = recordsPath(poolId, newIdentityId());
    // Four requests whose bodies never finish hold the four slots.
    const holders = await Promise.all(
      Array.from({ length: 4 }, () => openSocket(server.endpoint, `POST ${path.replace(/\/records$/, '')} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"Sync`)),
    );
    await new Promise((r) => setTimeout(r, 200));
    const refused: WireResponse[] = [];
    await runConcurrently(Array.from({ length: 20 }), 10, async () => {
      refused.push(await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path })));
    });
    for (const response of refused) assertAwsError(response, 429, 'TooManyRequestsException', /busy/);
    // Refused before its body is read, a large upload still gets its 429 (the close lingers), not EPIPE.
    const size = 16_000_000;
    const upload = serialize({ method: 'POST', path: path.replace(/\/records$/, ''), query: '', headers: { host: 'x', 'content-type': 'application/json', 'content-length': String(size) }, body: Buffer.alloc(size, 0x7b) });
    const uploads: string[] = [];
    for (let i = 0; i < 6; i++) {
      const outcome = await exchange(server.endpoint, upload);
      uploads.push(outcome.kind === 'response' ? `${outcome.response.status}` : `closed (${outcome.error})`);
    }
    assert.deepEqual(uploads, Array(6).fill('429'));
    assert.equal((await fetch(`${server.endpoint}/health`)).status, 200, '/health is outside the cap');
    // Each refusal has its request line (the log is written in batches, at least once a second).
    const refusalLines = () => server.stderr().split('\n').filter((line) => line.includes('"msg":"request"') && line.includes('"status":429')).length;
    for (let waited = 0; refusalLines() < 26 && waited < 3000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    assert.equal(refusalLines(), 26);

    // The slow bodies end: their requests complete (unsigned → 403) and free the slots.
    for (const holder of holders) holder.write('x'.repeat(94));
    for (const holder of holders) {
      while (!parseResponse(Buffer.concat(holder.received))?.complete) await new Promise((r) => setTimeout(r, 10));
      assert.equal(parseResponse(Buffer.concat(holder.received))?.status, 403);
      holder.destroy();
    }
    const served: WireResponse[] = [];
    await runConcurrently(Array.from({ length: 20 }), 4, async () => {
      served.push(await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path })));
    });
    assert.deepEqual(served.map((r) => r.status), Array(20).fill(200));
  });

  test('a flood far above the cap: only 200s and AWS-shaped 429s, never a 5xx, and the server stays responsive', async () => {
    const poolId = await createPool(server.endpoint, 'flood');
    const path = recordsPath(poolId, newIdentityId());
    const statuses = new Map<number, number>();
    // Each request's body follows its headers 30 ms later, so a hundred at once really overlap on the server.
    const signed = serialize(await signRequest(server.endpoint, { method: 'POST', path: path.replace(/\/records$/, ''), headers: { 'content-type': 'application/json' }, body: '{"SyncSessionToken":"x"}' }));
    const split = signed.indexOf('\r\n\r\n') + 4;
    await runConcurrently(Array.from({ length: 300 }), 100, async () => {
      const socket = await openSocket(server.endpoint, signed.subarray(0, split).toString('latin1'));
      await new Promise((r) => setTimeout(r, 30));
      if (!socket.closedAt) socket.write(signed.subarray(split));
      await new Promise((r) => (socket.closedAt ? r(undefined) : socket.once('close', r)));
      const response = parseResponse(Buffer.concat(socket.received));
      assert.ok(response, 'every request is answered');
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      // Admitted requests fail on their made-up SyncSessionToken (400); the rest are turned away (429).
      assert.ok(response.status === 400 || response.status === 429, `${response.status} ${response.text}`);
      assert.equal(awsErrorShapeProblem(response), undefined);
    });
    assert.ok((statuses.get(429) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, JSON.stringify([...statuses]));
    assert.equal((await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path }))).status, 200);
    assert.doesNotMatch(server.stderr(), /"msg":"(unexpected error|request pipeline failed)"/);
  });
});

describe('stalled clients that never close their side', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_MAX_IN_FLIGHT_REQUESTS: '4', COGNISYNC_HEADERS_TIMEOUT_MS: '1000', COGNISYNC_REQUEST_TIMEOUT_MS: '2000' } });
  });
  after(() => server.stop());

  const openFds = () => readdirSync(`/proc/${server.child.pid}/fd`).length;

  test('a timed-out request gives back its in-flight slot and its socket, though the client keeps the connection open', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
    const poolId = await createPool(server.endpoint, 'stalled');
    const path = recordsPath(poolId, newIdentityId());
    const baseline = openFds();
    // Every slot held by a body that stops after one byte, and 40 more connections stuck in their headers.
    const stalled = await Promise.all([
      ...Array.from({ length: 4 }, () => openSocket(server.endpoint, `POST ${path.replace(/\/records$/, '')} HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{`, { allowHalfOpen: true })),
      ...Array.from({ length: 40 }, () => openSocket(server.endpoint, 'GET /health HTTP/1.1\r\nhost: x\r\n', { allowHalfOpen: true })),
    ]);
    try {
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path }))).status, 429, 'the stalled bodies hold every slot');
      assert.ok(openFds() >= baseline + 40);
      // Past the request timeout (2 s), its 408 and the 2 s the answered connection may linger, the slots and sockets are free.
      let status = 0;
      let fds = 0;
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        status = (await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path }))).status;
        fds = openFds();
        if (status === 200 && fds < baseline + 5) break;
      }
      assert.equal(status, 200, 'a signed request is served again');
      assert.ok(fds < baseline + 5, `the server still holds ${fds - baseline} more descriptors than before`);
      for (const socket of stalled.slice(4)) assert.equal(parseResponse(Buffer.concat(socket.received))?.status, 408);
    } finally {
      for (const socket of stalled) socket.destroy();
    }
  });
});

describe('bodies held at once', () => {
  let server: ServerProcess;
  const BODY_MAX = 64 * 1024;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_MAX_REQUEST_BODY_BYTES: String(BODY_MAX), COGNISYNC_MAX_BUFFERED_REQUEST_BYTES: String(3 * BODY_MAX) } });
  });
  after(() => server.stop());

  /** An unsigned POST to `path` that sends `sent` bytes of its declared body and then nothing. */
  async function stalledUpload(path: string, sent: number, declared = BODY_MAX) {
    return openSocket(server.endpoint, `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n${'{'.padEnd(sent, ' ')}`);
  }

  test('bodies count as their bytes arrive: past the budget a body is refused unread (429), and served once the stalled ones go; declaring alone holds nothing', async () => {
    const poolId = await createPool(server.endpoint, 'budget');
    const identityId = newIdentityId();
    const datasetPath = recordsPath(poolId, identityId).replace(/\/records$/, '');
    const client = syncClient(server.endpoint);
    const { SyncSessionToken } = await client.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'settings' }));
    const write = async (value = 'v'.repeat(1000)) =>
      send(server.endpoint, await signRequest(server.endpoint, {
        method: 'POST', path: datasetPath, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: value, SyncCount: 0 }] }),
      }));
    // Twenty connections that declare the largest body and send one byte of it hold (nearly) nothing.
    const declaring = await Promise.all(Array.from({ length: 20 }, () => stalledUpload(datasetPath, 1)));
    // Three that send all but the last 100 bytes hold the budget but for a few hundred bytes.
    const stalled = await Promise.all(Array.from({ length: 3 }, () => stalledUpload(datasetPath, BODY_MAX - 100)));
    try {
      await new Promise((r) => setTimeout(r, 300));
      assertAwsError(await write(), 429, 'TooManyRequestsException', /busy/);
      // A request without a body needs none of the budget.
      assert.equal((await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: recordsPath(poolId, identityId) }))).status, 200);
      for (const socket of stalled) socket.destroy();
      let status = 0;
      for (const deadline = Date.now() + 5_000; status !== 200 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) status = (await write()).status;
      assert.equal(status, 200, 'the budget came back when the stalled uploads went');
    } finally {
      for (const socket of [...declaring, ...stalled]) socket.destroy();
    }
  });

  test('bodies pipelined behind a live stream are not read while it lasts: they hold none of the budget, and are refused after 2 s', async () => {
    const poolId = await createPool(server.endpoint, 'behind-live');
    const guest = await identityCredentials(server.endpoint, poolId);
    const live = await signRequest(server.endpoint, { method: 'GET', path: `/live/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(guest.identityId)}`, credentials: guest.credentials });
    const datasetPath = recordsPath(poolId, guest.identityId).replace(/\/records$/, '');
    const body = ' '.repeat(BODY_MAX - 10);
    // Four bodies: more than the whole budget (three of the largest), were they read.
    const behind = Array.from({ length: 4 }, () => `POST ${datasetPath} HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n${body}`).join('');
    // Kept alive (serialize asks to close), so that node goes on to the requests behind it.
    const attacker = await openSocket(server.endpoint, serialize(live).toString('latin1').replace('connection: close\r\n', '') + behind);
    try {
      const victim = newIdentityId();
      const victimPath = recordsPath(poolId, victim).replace(/\/records$/, '');
      const { SyncSessionToken } = await syncClient(server.endpoint).send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: victim, DatasetName: 'settings' }));
      const victimWrite = async () =>
        (await send(server.endpoint, await signRequest(server.endpoint, {
          method: 'POST', path: victimPath, headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v'.repeat(BODY_MAX / 2), SyncCount: 0 }] }),
        }))).status;
      await new Promise((r) => setTimeout(r, 500));
      assert.match(Buffer.concat(attacker.received).toString('latin1'), /^HTTP\/1\.1 200/, 'the live stream is open');
      assert.equal(await victimWrite(), 200, 'while the pipelined bodies wait for their turn');
      await new Promise((r) => setTimeout(r, 2500));
      assert.ok(attacker.closedAt === undefined, 'the live stream still open');
      assert.equal((await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: recordsPath(poolId, victim) }))).status, 200);
    } finally {
      attacker.destroy();
    }
  });

  test('a body pipelined behind answers the client never reads gives its bytes back when the connection goes', async () => {
    const poolId = await createPool(server.endpoint, 'pipelined');
    const datasetPath = recordsPath(poolId, newIdentityId()).replace(/\/records$/, '');
    // Thousands of unread answers (the metrics page, over 10 KB each) back up, so the POST's answer is never begun:
    // there is no answer whose end would give its bytes back.
    const body = ' '.repeat(BODY_MAX - 10);
    const pipelined = await openSocket(server.endpoint, 'GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n'.repeat(2000) + `POST ${datasetPath} HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    pipelined.pause();
    await new Promise((r) => setTimeout(r, 1000));
    pipelined.destroy();
    await new Promise((r) => setTimeout(r, 500));
    // Two uploads stalled one byte short take two thirds of the budget; a third needs the rest, all of it.
    const probes = await Promise.all(Array.from({ length: 3 }, () => stalledUpload(datasetPath, BODY_MAX - 1)));
    try {
      await new Promise((r) => setTimeout(r, 300));
      for (const probe of probes) assert.equal(probe.received.length, 0, `refused at once: ${Buffer.concat(probe.received).toString('latin1').split('\r\n')[0]}`);
    } finally {
      for (const probe of probes) probe.destroy();
    }
  });
});

describe('slow clients and oversized headers', () => {
  let server: ServerProcess;
  const HEADERS_TIMEOUT_MS = 1000;
  const REQUEST_TIMEOUT_MS = 2000;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), COGNISYNC_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) } });
  });
  after(() => server.stop());

  test('slowloris: trickled headers and trickled bodies are cut off within the timeouts; other clients are served meanwhile', async () => {
    const poolId = await createPool(server.endpoint, 'slowloris');
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'settings' };
    const started = Date.now();
    const slowHeaders = await Promise.all(Array.from({ length: 20 }, () => openSocket(server.endpoint, 'GET /health HTTP/1.1\r\nhost: x\r\n')));
    const slowBodies = await Promise.all(
      Array.from({ length: 20 }, () => openSocket(server.endpoint, `POST ${recordsPath(poolId, key.IdentityId).replace(/\/records$/, '')} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{`)),
    );
    // One byte-sized piece every 100 ms: always just active enough to defeat an idle timeout.
    const trickle = setInterval(() => {
      for (const socket of slowHeaders) if (!socket.closedAt) socket.write('x-slow: 1\r\n');
      for (const socket of slowBodies) if (!socket.closedAt) socket.write(' ');
    }, 100);
    try {
      const client = syncClient(server.endpoint);
      while (Date.now() - started < REQUEST_TIMEOUT_MS + 500) {
        const before = Date.now();
        await client.send(new ListRecordsCommand(key));
        assert.ok(Date.now() - before < 2000, 'a normal request is served promptly while slow clients hold connections');
        await new Promise((r) => setTimeout(r, 100));
      }
      const deadline = started + REQUEST_TIMEOUT_MS + 4000;
      while ([...slowHeaders, ...slowBodies].some((socket) => !socket.closedAt) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      clearInterval(trickle);
    }
    for (const socket of slowHeaders) {
      assert.ok(socket.closedAt, 'a trickled header block is cut off');
      assert.ok(socket.closedAt - started < HEADERS_TIMEOUT_MS + 2500, `closed after ${socket.closedAt - started} ms`);
      const response = parseResponse(Buffer.concat(socket.received));
      assert.equal(response?.status, 408);
      assert.equal(awsErrorShapeProblem(response!), undefined);
    }
    for (const socket of slowBodies) {
      assert.ok(socket.closedAt, 'a trickled body is cut off');
      assert.ok(socket.closedAt - started < REQUEST_TIMEOUT_MS + 2500, `closed after ${socket.closedAt - started} ms`);
      const response = parseResponse(Buffer.concat(socket.received));
      if (response) assert.equal(awsErrorShapeProblem(response), undefined, `${response.status} ${response.text}`);
    }
    assert.equal((await fetch(`${server.endpoint}/health`)).status, 200);
    assert.doesNotMatch(server.stderr(), /"msg":"(unexpected error|request pipeline failed)"/);
    const metrics = await (await fetch(`${server.endpoint}/metrics`)).text();
    assert.doesNotMatch(metrics, /^cognisync_requests_total\{[^}]*status="5\d\d"[^}]*\} [1-9]/m, 'a timed-out request counts as a server error');
  });

  test('headers over 16 KiB → 431 AWS-shaped, in one header or many; 12 KiB is fine', async () => {
    const poolId = await createPool(server.endpoint, 'headers');
    const path = recordsPath(poolId, newIdentityId());
    const one = await signRequest(server.endpoint, { method: 'GET', path });
    const huge = await exchange(server.endpoint, serialize({ ...one, headers: { ...one.headers, 'x-padding': 'p'.repeat(20 * 1024) } }));
    assert.equal(huge.kind, 'response');
    assertAwsError((huge as { response: WireResponse }).response, 431, 'InvalidParameterException', /exceed the limit of 16384 bytes/);
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x-h${i}`, 'v'.repeat(16)]));
    const manyOutcome = await exchange(server.endpoint, serialize({ ...one, headers: { ...one.headers, ...many } }));
    assertAwsError((manyOutcome as { response: WireResponse }).response, 431, 'InvalidParameterException');
    const longUrl = await exchange(server.endpoint, serialize({ ...one, query: `q=${'u'.repeat(20 * 1024)}` }));
    assertAwsError((longUrl as { response: WireResponse }).response, 431, 'InvalidParameterException');
    // Below the cap an extra (unsigned) header changes nothing.
    const fine = await send(server.endpoint, { ...one, headers: { ...one.headers, 'x-padding': 'p'.repeat(12 * 1024) } });
    assert.equal(fine.status, 200, fine.text);
  });
});
