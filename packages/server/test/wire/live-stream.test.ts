// The live stream (Server-Sent Events) of an identity's committed changes: signed with a header or as a
// pre-signed URL, scoped to the identity, fast on loopback, and shared across processes on PostgreSQL.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { CreateIdentityPoolCommand, DeleteIdentitiesCommand } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import pg from 'pg';
import { createTestDatabase, postgresAvailable } from '../support/postgres.ts';
import { developerCredentials, identityClient, identityCredentials, startServer, syncClient, type ClientCredentials, type ServerProcess } from '../support/server-process.ts';

interface LiveStream {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  events: any[];
  /** The server ended the stream. */
  ended: boolean;
  waitFor(count: number, timeoutMs?: number): Promise<any[]>;
  close(): void;
}

const livePath = (poolId: string, identityId: string) => `/live/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identityId)}`;

function signer(credentials: ClientCredentials) {
  return new SignatureV4({ service: 'cognito-sync', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials });
}

/** Opens a live stream; resolves as soon as the response headers arrive (before any event). */
function openStream(endpoint: string, path: string, query: Record<string, string>, headers: Record<string, string>): Promise<LiveStream> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const search = new URLSearchParams(query).toString().replace(/\+/g, '%20');
    const req = httpRequest({ host: url.hostname, port: url.port, path: `${path}${search ? `?${search}` : ''}`, headers, method: 'GET' }, (res) => {
      const stream: LiveStream = {
        status: res.statusCode!,
        headers: res.headers,
        body: '',
        events: [],
        ended: false,
        waitFor: (count, timeoutMs = 2000) =>
          new Promise((done, fail) => {
            const started = Date.now();
            const check = () => {
              if (stream.events.length >= count) return done(stream.events);
              if (Date.now() - started > timeoutMs) return fail(new Error(`only ${stream.events.length} of ${count} events`));
              setTimeout(check, 5);
            };
            check();
          }),
        close: () => req.destroy(),
      };
      res.on('end', () => (stream.ended = true));
      res.on('data', (chunk: Buffer) => {
        stream.body += chunk.toString();
        const blocks = stream.body.split('\n\n');
        stream.body = blocks.pop()!;
        for (const block of blocks) {
          const data = block.split('\n').find((line) => line.startsWith('data: '));
          if (data) stream.events.push({ ...JSON.parse(data.slice(6)), receivedAt: Date.now() });
        }
        if (res.statusCode !== 200) stream.body += '\n\n';
      });
      resolve(stream);
    });
    req.on('error', reject);
    req.end();
  });
}

async function openSigned(endpoint: string, poolId: string, identityId: string, credentials: ClientCredentials) {
  const url = new URL(endpoint);
  const signed = await signer(credentials).sign(new HttpRequest({ method: 'GET', hostname: url.hostname, port: Number(url.port), path: livePath(poolId, identityId), headers: { host: url.host } }));
  return openStream(endpoint, livePath(poolId, identityId), {}, signed.headers as Record<string, string>);
}

async function openPresigned(endpoint: string, poolId: string, identityId: string, credentials: ClientCredentials, expiresIn = 300) {
  const url = new URL(endpoint);
  const presigned = await signer(credentials).presign(new HttpRequest({ method: 'GET', hostname: url.hostname, port: Number(url.port), path: livePath(poolId, identityId), headers: { host: url.host } }), { expiresIn });
  return openStream(endpoint, livePath(poolId, identityId), presigned.query as Record<string, string>, { host: url.host });
}

async function write(endpoint: string, credentials: ClientCredentials, key: { IdentityPoolId: string; IdentityId: string; DatasetName: string }, value: string, deviceId?: string) {
  const client = syncClient(endpoint, credentials);
  const listed = await client.send(new ListRecordsCommand(key));
  const current = listed.Records!.find((r) => r.Key === 'k')?.SyncCount ?? 0;
  return client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, ...(deviceId ? { DeviceId: deviceId } : {}), RecordPatches: [{ Op: 'replace', Key: 'k', Value: value, SyncCount: current }] }));
}

describe('live stream on one server', () => {
  let server: ServerProcess;
  let poolId: string;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_LIVE_HEARTBEAT_MS: '200' } });
    poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'live', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'open live streams do not keep SIGTERM from finishing');
  });

  test('each identity sees only its own changes, within 100 ms, with the writer’s DeviceId', async () => {
    const alice = await identityCredentials(server.endpoint, poolId);
    const bob = await identityCredentials(server.endpoint, poolId);
    const aliceStream = await openSigned(server.endpoint, poolId, alice.identityId, alice.credentials);
    const bobStream = await openPresigned(server.endpoint, poolId, bob.identityId, bob.credentials);
    try {
      assert.equal(aliceStream.status, 200);
      assert.match(String(aliceStream.headers['content-type']), /^text\/event-stream/);
      assert.equal(bobStream.status, 200, 'a pre-signed URL works where headers cannot be sent');
      const sent = Date.now();
      const result = await write(server.endpoint, alice.credentials, { IdentityPoolId: poolId, IdentityId: alice.identityId, DatasetName: 'notes' }, 'one', 'alice-phone');
      const [event] = await aliceStream.waitFor(1);
      assert.deepEqual({ ...event, receivedAt: undefined }, { identityPoolId: poolId, identityId: alice.identityId, datasetName: 'notes', syncCount: result.Records![0]!.SyncCount, deviceId: 'alice-phone', receivedAt: undefined });
      assert.ok(event.receivedAt - sent < 100 + 50, `latency ${event.receivedAt - sent} ms (includes the write's own round trips)`);
      await write(server.endpoint, bob.credentials, { IdentityPoolId: poolId, IdentityId: bob.identityId, DatasetName: 'todo' }, 'x');
      const [bobEvent] = await bobStream.waitFor(1);
      assert.equal(bobEvent.identityId, bob.identityId);
      assert.equal(bobEvent.deviceId, null);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(aliceStream.events.length, 1, 'alice saw nothing of bob');
      assert.equal(bobStream.events.length, 1, 'bob saw nothing of alice');
    } finally {
      aliceStream.close();
      bobStream.close();
    }
  });

  test('the developer may watch any identity; another identity, a bad signature, an expired URL get AWS-shaped 403s', async () => {
    const alice = await identityCredentials(server.endpoint, poolId);
    const eve = await identityCredentials(server.endpoint, poolId);
    const developerStream = await openSigned(server.endpoint, poolId, alice.identityId, developerCredentials);
    assert.equal(developerStream.status, 200);
    await write(server.endpoint, alice.credentials, { IdentityPoolId: poolId, IdentityId: alice.identityId, DatasetName: 'd' }, 'v');
    await developerStream.waitFor(1);
    developerStream.close();

    const intruder = await openSigned(server.endpoint, poolId, alice.identityId, eve.credentials);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(intruder.status, 403);
    assert.equal(intruder.headers['x-amzn-errortype'], 'NotAuthorizedException');
    assert.match(intruder.body, /"__type":"NotAuthorizedException"/);

    const forged = await openPresigned(server.endpoint, poolId, alice.identityId, { ...alice.credentials, secretAccessKey: 'wrong' });
    assert.equal(forged.status, 403);
    assert.equal(forged.headers['x-amzn-errortype'], 'InvalidSignatureException');

    const unsigned = await openStream(server.endpoint, livePath(poolId, alice.identityId), {}, {});
    assert.equal(unsigned.status, 403);
    assert.equal(unsigned.headers['x-amzn-errortype'], 'MissingAuthenticationTokenException');

    const url = new URL(server.endpoint);
    const old = await signer(alice.credentials).presign(
      new HttpRequest({ method: 'GET', hostname: url.hostname, port: Number(url.port), path: livePath(poolId, alice.identityId), headers: { host: url.host } }),
      { expiresIn: 60, signingDate: new Date(Date.now() - 20 * 60_000) },
    );
    const expired = await openStream(server.endpoint, livePath(poolId, alice.identityId), old.query as Record<string, string>, { host: url.host });
    assert.equal(expired.status, 403);
    assert.equal(expired.headers['x-amzn-errortype'], 'InvalidSignatureException');
  });

  test('idle streams get a comment line every heartbeat interval', async () => {
    const alice = await identityCredentials(server.endpoint, poolId);
    const url = new URL(server.endpoint);
    const signed = await signer(alice.credentials).sign(new HttpRequest({ method: 'GET', hostname: url.hostname, port: Number(url.port), path: livePath(poolId, alice.identityId), headers: { host: url.host } }));
    const raw = await new Promise<string>((resolve) => {
      let text = '';
      const req = httpRequest({ host: url.hostname, port: url.port, path: livePath(poolId, alice.identityId), headers: signed.headers as Record<string, string> }, (res) => {
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        setTimeout(() => {
          req.destroy();
          resolve(text);
        }, 700);
      });
      req.end();
    });
    assert.match(raw, /^: connected\n\n/);
    assert.ok((raw.match(/: keep-alive\n\n/g) ?? []).length >= 2);
  });

  test('a stream ends once its credentials are gone (DeleteIdentities), and shows no change made after', async () => {
    const doomed = await identityCredentials(server.endpoint, poolId);
    const stream = await openSigned(server.endpoint, poolId, doomed.identityId, doomed.credentials);
    assert.equal(stream.status, 200);
    await identityClient(server.endpoint).send(new DeleteIdentitiesCommand({ IdentityIdsToDelete: [doomed.identityId] }));
    // The developer may still write for that identity id; the stream must not show it.
    await new Promise((r) => setTimeout(r, 1100));
    await write(server.endpoint, developerCredentials, { IdentityPoolId: poolId, IdentityId: doomed.identityId, DatasetName: 'after' }, 'secret name');
    for (let waited = 0; !stream.ended && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    assert.equal(stream.ended, true, 'ended');
    assert.deepEqual(stream.events, []);
  });
});

describe('live stream of expiring credentials', () => {
  test('a stream ends when the credentials that opened it expire', async () => {
    const server = await startServer({ env: { COGNISYNC_CREDENTIALS_TTL_SECONDS: '2', COGNISYNC_LIVE_HEARTBEAT_MS: '60000' } });
    try {
      const pool = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'expiring', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
      const user = await identityCredentials(server.endpoint, pool);
      const stream = await openSigned(server.endpoint, pool, user.identityId, user.credentials);
      assert.equal(stream.status, 200);
      for (let waited = 0; !stream.ended && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      assert.equal(stream.ended, true);
    } finally {
      await server.stop();
    }
  });
});

describe('live stream limits', () => {
  test('one identity holds at most COGNISYNC_LIMIT_LIVE_STREAMS_PER_IDENTITY streams (LimitExceededException), and opening one counts against its request rate', async () => {
    const server = await startServer({ env: { COGNISYNC_LIMIT_LIVE_STREAMS_PER_IDENTITY: '2', COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '1', COGNISYNC_RATE_LIMIT_IDENTITY_BURST: '5' } });
    try {
      const poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'live-limits', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
      const alice = await identityCredentials(server.endpoint, poolId);
      const first = await openSigned(server.endpoint, poolId, alice.identityId, alice.credentials);
      const second = await openSigned(server.endpoint, poolId, alice.identityId, alice.credentials);
      const third = await openSigned(server.endpoint, poolId, alice.identityId, alice.credentials);
      assert.deepEqual([first.status, second.status, third.status], [200, 200, 400]);
      assert.equal(third.headers['x-amzn-errortype'], 'LimitExceededException');
      // A closed stream frees its place.
      first.close();
      await new Promise((r) => setTimeout(r, 100));
      const again = await openSigned(server.endpoint, poolId, alice.identityId, alice.credentials);
      assert.equal(again.status, 200);
      // GetCredentialsForIdentity and four opens used the burst of 5: Alice's next request (a stream or an API call) waits.
      const throttled = await openSigned(server.endpoint, poolId, alice.identityId, alice.credentials);
      assert.equal(throttled.status, 429);
      assert.equal(throttled.headers['x-amzn-errortype'], 'TooManyRequestsException');
      for (const stream of [second, third, again, throttled]) stream.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

describe('live stream across processes on PostgreSQL', { skip: (await postgresAvailable()) ? false : 'PostgreSQL is not reachable' }, () => {
  test('a change written through one process reaches a listener on another', async () => {
    const database = await createTestDatabase('cognisync_live');
    const env = { COGNISYNC_MASTER_KEY: 'shared-live-key' };
    const first = await startServer({ databaseUrl: database.url, env });
    const second = await startServer({ databaseUrl: database.url, env });
    try {
      const poolId = (await identityClient(first.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'live-pg', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
      const user = await identityCredentials(first.endpoint, poolId);
      const stream = await openPresigned(second.endpoint, poolId, user.identityId, user.credentials);
      assert.equal(stream.status, 200);
      const sent = Date.now();
      await write(first.endpoint, user.credentials, { IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'shared' }, 'hello', 'laptop');
      const [event] = await stream.waitFor(1);
      assert.equal(event.datasetName, 'shared');
      assert.equal(event.deviceId, 'laptop');
      assert.ok(event.receivedAt - sent < 500);
      // The second process's LISTEN connection drops: once it is back, its streams end, so that their clients
      // reconnect and catch up what it may have missed.
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'");
      await admin.end();
      const deadline = Date.now() + 3000;
      while (!stream.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(stream.ended, true, 'the stream ended after the gap');
      stream.close();
    } finally {
      await first.stop();
      await second.stop();
      await database.drop();
    }
  });
});
