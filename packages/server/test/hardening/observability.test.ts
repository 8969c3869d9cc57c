// What operators see: Prometheus metrics (requests by operation and status, conflicts, limit rejections, outbox
// backlog), /health and /ready without credentials, structured request logs that never contain a secret or a
// record value, security headers on every answer, and CORS that is off unless configured.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  CreateIdentityPoolCommand, GetCredentialsForIdentityCommand, GetIdCommand, GetOpenIdTokenCommand, GetOpenIdTokenForDeveloperIdentityCommand,
} from '@aws-sdk/client-cognito-identity';
import {
  ListRecordsCommand, RegisterDeviceCommand, SetCognitoEventsCommand, SetIdentityPoolConfigurationCommand, SubscribeToDatasetCommand, UpdateRecordsCommand,
} from '@aws-sdk/client-cognito-sync';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { identityClient, identityCredentials, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';
import { encodeQuery, exchange, send, serialize, signRequest, type WireResponse } from '../support/raw-http.ts';

const CLOSED_PORT = 'http://127.0.0.1:9';
const outboundEnv = { AWS_ACCESS_KEY_ID: 'AKIDOBSOUTBOUND', AWS_SECRET_ACCESS_KEY: 'observability-outbound-secret', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };

/** The value of one sample (`name{labels}`) in Prometheus text; 0 when absent. */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of metrics.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[4]);
  }
  return 0;
}

async function metricsOf(server: ServerProcess): Promise<string> {
  const response = await fetch(`${server.endpoint}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  return response.text();
}

describe('metrics', () => {
  let server: ServerProcess;
  let poolId: string;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '1', COGNISYNC_RATE_LIMIT_IDENTITY_BURST: '3', COGNISYNC_KINESIS_ENDPOINT: CLOSED_PORT, ...outboundEnv } });
    poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'metrics', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  });
  after(() => server.stop());

  test('GET /metrics is Prometheus text with cognisync_requests_total by operation and status, and latency', async () => {
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'd' };
    const before = sample(await metricsOf(server), 'cognisync_requests_total', { operation: 'ListRecords', status: '200' });
    await syncClient(server.endpoint).send(new ListRecordsCommand(key));
    await syncClient(server.endpoint).send(new ListRecordsCommand(key));
    await rejection(() => syncClient(server.endpoint).send(new ListRecordsCommand({ ...key, DatasetName: 'bad name!' })));
    const metrics = await metricsOf(server);
    assert.match(metrics, /^# TYPE cognisync_requests_total counter$/m);
    assert.match(metrics, /^# TYPE cognisync_request_duration_seconds histogram$/m);
    assert.equal(sample(metrics, 'cognisync_requests_total', { operation: 'ListRecords', status: '200' }), before + 2);
    assert.equal(sample(metrics, 'cognisync_requests_total', { operation: 'ListRecords', status: '400' }), 1);
    assert.ok(sample(metrics, 'cognisync_request_duration_seconds_count', { operation: 'ListRecords' }) >= 3);
    assert.ok(sample(metrics, 'cognisync_process_resident_memory_bytes') > 0, 'process metrics too');
  });

  test('live-stream openings and admin requests are counted too, refused ones included', async () => {
    const livePath = `/live/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(newIdentityId())}`;
    const unsigned = await fetch(`${server.endpoint}${livePath}`);
    assert.equal(unsigned.status, 403);
    await unsigned.text();
    const admin = await fetch(`${server.endpoint}/admin/outbox`);
    await admin.text();
    const metrics = await metricsOf(server);
    assert.equal(sample(metrics, 'cognisync_requests_total', { operation: 'LiveStream', status: '403' }), 1);
    assert.equal(sample(metrics, 'cognisync_requests_total', { operation: 'Admin', status: String(admin.status) }), 1);
  });

  test('a conflict increments cognisync_conflicts_total', async () => {
    const client = syncClient(server.endpoint);
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'd' };
    const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
    await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] }));
    const before = sample(await metricsOf(server), 'cognisync_conflicts_total');
    const conflict = await rejection(() => client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'w', SyncCount: 0 }] })));
    assert.equal(conflict.name, 'ResourceConflictException');
    const metrics = await metricsOf(server);
    assert.equal(sample(metrics, 'cognisync_conflicts_total'), before + 1);
    assert.equal(sample(metrics, 'cognisync_requests_total', { operation: 'UpdateRecords', status: '409' }), 1);
  });

  test('rate-limit rejections are counted', async () => {
    const user = await identityCredentials(server.endpoint, poolId);
    const client = syncClient(server.endpoint, user.credentials);
    const key = { IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'd' };
    const before = sample(await metricsOf(server), 'cognisync_limit_rejections_total', { error: 'TooManyRequestsException' });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => client.send(new ListRecordsCommand(key))));
    const refused = results.filter((r) => r.status === 'rejected' && (r.reason as Error).name === 'TooManyRequestsException').length;
    assert.ok(refused >= 1, `${refused} refused`);
    const metrics = await metricsOf(server);
    assert.equal(sample(metrics, 'cognisync_limit_rejections_total', { error: 'TooManyRequestsException' }), before + refused);
    assert.equal(sample(metrics, 'cognisync_requests_total', { operation: 'ListRecords', status: '429' }), refused);
  });

  test('the outbox backlog gauge counts undelivered stream records', async () => {
    const client = syncClient(server.endpoint);
    assert.match(await metricsOf(server), /^cognisync_outbox_backlog \d+$/m);
    const streamingPool = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'streaming', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
    await client.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: streamingPool, CognitoStreams: { StreamName: 's', RoleArn: 'arn:aws:iam::123456789012:role/r', StreamingStatus: 'ENABLED' } }));
    const before = sample(await metricsOf(server), 'cognisync_outbox_backlog');
    const key = { IdentityPoolId: streamingPool, IdentityId: newIdentityId(), DatasetName: 'd' };
    const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
    for (let i = 0; i < 3; i++) {
      await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: `k${i}`, Value: 'v', SyncCount: 0 }] }));
    }
    // Kinesis is unreachable (a closed local port), so the three entries wait. The gauge reads the store at most every
    // 5 s (a flood of scrapes must not keep the server counting), so it may show the earlier count until then.
    const deadline = Date.now() + 7_000;
    let backlog = sample(await metricsOf(server), 'cognisync_outbox_backlog');
    while (backlog !== before + 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      backlog = sample(await metricsOf(server), 'cognisync_outbox_backlog');
    }
    assert.equal(backlog, before + 3);
    assert.ok(sample(await metricsOf(server), 'cognisync_outbox_oldest_age_seconds') >= 0);
  });

  test('/health and /ready answer 200 without credentials; /metrics too; HEAD as GET, without a body', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      const response = await fetch(`${server.endpoint}${path}`);
      assert.equal(response.status, 200, path);
      await response.text();
      const head = await fetch(`${server.endpoint}${path}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `HEAD ${path}`);
      assert.equal(await head.text(), '');
    }
    assert.deepEqual(await (await fetch(`${server.endpoint}/ready`)).json(), { status: 'ready' });
  });
});

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function assertSecurityHeaders(response: WireResponse, what: string) {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(response.headers[name], value, `${name} on ${what} (${response.status})`);
}

describe('security headers and CORS (off by default)', () => {
  let server: ServerProcess;
  let poolId: string;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_MAX_REQUEST_BODY_BYTES: '1024' } });
    poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'headers', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  });
  after(() => server.stop());

  test('every answer carries the security headers: success, errors of every kind, health, metrics', async () => {
    const path = `/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(newIdentityId())}/datasets/d/records`;
    const raw = (text: string) => exchange(server.endpoint, Buffer.from(text)).then((o) => (o as { response: WireResponse }).response);
    const cases: [string, WireResponse][] = [
      ['a signed ListRecords', await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path }))],
      ['an Identity call', await send(server.endpoint, await signRequest(server.endpoint, { method: 'POST', path: '/', service: 'cognito-identity', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.ListIdentityPools' }, body: '{"MaxResults":5}' }))],
      ['an unsigned request', await raw(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)],
      ['an unknown route', await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: '/nothing/here' }))],
      ['a body over the cap', await raw(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\nconnection: close\r\n\r\n`)],
      ['malformed HTTP', await raw('GARBAGE\r\n\r\n')],
      ['overlong headers', await raw(`GET / HTTP/1.1\r\nhost: x\r\nx-pad: ${'p'.repeat(20_000)}\r\n\r\n`)],
      ['/health', await raw('GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')],
      ['/ready', await raw('GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')],
      ['/metrics', await raw('GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')],
      ['a preflight', await raw('OPTIONS / HTTP/1.1\r\nhost: x\r\norigin: https://app.example\r\naccess-control-request-method: POST\r\nconnection: close\r\n\r\n')],
    ];
    assert.deepEqual(cases.map(([, r]) => r.status), [200, 200, 403, 404, 413, 400, 431, 200, 200, 200, 204]);
    for (const [what, response] of cases) assertSecurityHeaders(response, what);
  });

  test('CORS is off by default: no Access-Control-Allow-* on requests or preflights from any origin', async () => {
    const preflight = await fetch(`${server.endpoint}/`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,x-amz-date' } });
    assert.equal(preflight.status, 204);
    const simple = await fetch(`${server.endpoint}/health`, { headers: { origin: 'https://app.example' } });
    for (const response of [preflight, simple]) {
      for (const name of ['access-control-allow-origin', 'access-control-allow-headers', 'access-control-allow-methods', 'access-control-allow-credentials']) {
        assert.equal(response.headers.get(name), null, name);
      }
    }
  });
});

describe('CORS when configured', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_CORS_ORIGINS: 'https://app.example, https://admin.example' } });
  });
  after(() => server.stop());

  test('a preflight from an allowed origin → 204 with the SigV4 headers allowed, never credentials', async () => {
    const preflight = await fetch(`${server.endpoint}/identitypools/x/identities/y/datasets/z`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-amz-date,x-amz-security-token' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(preflight.headers.get('access-control-allow-methods')!, /POST/);
    const allowed = preflight.headers.get('access-control-allow-headers')!.split(',').map((h) => h.trim());
    for (const header of ['authorization', 'content-type', 'x-amz-date', 'x-amz-security-token', 'x-amz-target', 'x-amz-content-sha256']) assert.ok(allowed.includes(header), header);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), null);
    assert.match(preflight.headers.get('vary') ?? '', /Origin/i);
  });

  test('answers to an allowed origin expose the AWS headers; other origins get no CORS headers', async () => {
    const allowed = await fetch(`${server.endpoint}/identitypools`, { headers: { origin: 'https://admin.example' } });
    assert.equal(allowed.status, 403, 'unsigned, so refused — but readable by the page');
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://admin.example');
    assert.match(allowed.headers.get('access-control-expose-headers')!, /x-amzn-errortype/);
    assert.match(allowed.headers.get('access-control-expose-headers')!, /x-amzn-requestid/);
    assert.equal(allowed.headers.get('access-control-allow-credentials'), null);
    const other = await fetch(`${server.endpoint}/identitypools`, { headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const otherPreflight = await fetch(`${server.endpoint}/`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(otherPreflight.headers.get('access-control-allow-origin'), null);
    assert.equal(otherPreflight.headers.get('access-control-allow-headers'), null);
  });
});

describe('logs', () => {
  let server: ServerProcess;
  let webhook: Server;
  const webhookSecret = `whsec-${randomUUID()}`;
  const developerSecret = `devsecret-${randomUUID()}`;
  const masterKey = randomBytes(32).toString('base64');
  const webhookSignatures: string[] = [];

  before(async () => {
    // The SyncTrigger webhook: answers with the event it got (no change), as a pass-through function does.
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        webhookSignatures.push(String(req.headers['x-cognisync-signature']));
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    server = await startServer({
      env: {
        COGNISYNC_LOG_LEVEL: 'debug',
        COGNISYNC_SECRET_ACCESS_KEY: developerSecret,
        COGNISYNC_WEBHOOK_SECRET: webhookSecret,
        COGNISYNC_MASTER_KEY: masterKey,
        COGNISYNC_KINESIS_ENDPOINT: CLOSED_PORT,
        COGNISYNC_SNS_ENDPOINT: CLOSED_PORT,
        ...outboundEnv,
      },
    });
  });
  after(async () => {
    await server.stop();
    await new Promise<void>((resolve) => webhook.close(() => resolve()));
  });

  test('every request is logged as JSON with request id, operation, status and latency', async () => {
    const developer = { accessKeyId: 'AKIDCOGNISYNCTEST01', secretAccessKey: developerSecret };
    const response = await send(server.endpoint, await signRequest(server.endpoint, { method: 'POST', path: '/', service: 'cognito-identity', credentials: developer, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.ListIdentityPools' }, body: '{"MaxResults":5}' }));
    assert.equal(response.status, 200, response.text);
    const requestId = response.headers['x-amzn-requestid']!;
    // Request lines are written in batches, at least once a second.
    const findLine = () => server.stderr().split('\n').find((l) => l.includes(requestId));
    const deadline = Date.now() + 3000;
    while (!findLine() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const line = findLine();
    assert.ok(line, 'the request id appears in the log');
    const entry = JSON.parse(line);
    assert.equal(entry.requestId, requestId);
    assert.equal(entry.operation, 'ListIdentityPools');
    assert.equal(entry.status, 200);
    assert.equal(typeof entry.ms, 'number');
    assert.equal(entry.caller, 'developer');
  });

  test('stderr is JSON lines only, also when an integration\'s AWS SDK client warns (NodeVersionSupportWarning on node 20)', async () => {
    // A Lambda endpoint nobody listens on: the SyncTrigger's client is created (and warns), then the call fails.
    const own = await startServer({ env: { COGNISYNC_LAMBDA_ENDPOINT: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret', AWS_REGION: 'us-east-1' } });
    try {
      const poolId = (await identityClient(own.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'warnings', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
      await syncClient(own.endpoint).send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:f' } }));
      const user = await identityCredentials(own.endpoint, poolId);
      const key = { IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'd' };
      const client = syncClient(own.endpoint, user.credentials);
      const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
      await rejection(() => client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] })));
    } finally {
      await own.stop();
    }
    const lines = own.stderr().split('\n').filter((line) => line.trim() !== '');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);
    assert.ok(lines.some((line) => line.includes('"msg":"process warning"') && line.includes('NodeVersionSupportWarning')), 'the SDK\'s warning is a log line');
  });

  test('a graceful stop (SIGTERM) writes out every request line still waiting in the log buffer', async () => {
    const own = await startServer({ env: { COGNISYNC_LOG_LEVEL: 'info' } });
    let code: number | null;
    const requestIds: string[] = [];
    try {
      // Unsigned calls: each is answered (MissingAuthenticationTokenException) and logged.
      for (let i = 0; i < 10; i++) {
        const response = await fetch(`${own.endpoint}/`, { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.ListIdentityPools' }, body: '{}' });
        await response.arrayBuffer();
        requestIds.push(response.headers.get('x-amzn-requestid')!);
      }
    } finally {
      // At once: the lines are still in the server's buffer (written in batches, at least once a second).
      code = await own.stop();
    }
    assert.equal(code, 0);
    const logged = new Set(own.stderr().split('\n').filter((line) => line.includes('"msg":"request"')).map((line) => JSON.parse(line).requestId));
    assert.deepEqual(requestIds.filter((id) => !logged.has(id)), [], 'every answered request is in the log');
  });

  test('no secret, token or record value ever reaches the log (debug level, every kind of traffic)', async () => {
    const developer = { accessKeyId: 'AKIDCOGNISYNCTEST01', secretAccessKey: developerSecret };
    const cognito = identityClient(server.endpoint, developer);
    const secrets: Record<string, string> = { developerSecret, webhookSecret, masterKey };

    const poolId = (await cognito.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'logs', AllowUnauthenticatedIdentities: true, DeveloperProviderName: 'login.logs' }))).IdentityPoolId!;
    // Unauthenticated identity: GetId, credentials, OpenID token.
    const { IdentityId } = await cognito.send(new GetIdCommand({ IdentityPoolId: poolId }));
    const { Credentials } = await cognito.send(new GetCredentialsForIdentityCommand({ IdentityId }));
    secrets.identitySecretKey = Credentials!.SecretKey!;
    secrets.sessionToken = Credentials!.SessionToken!;
    secrets.openIdToken = (await cognito.send(new GetOpenIdTokenCommand({ IdentityId })))!.Token!;
    // Developer-authenticated identity: the user identifier and the token.
    const userIdentifier = `user-${randomUUID()}`;
    const developerToken = await cognito.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.logs': userIdentifier } }));
    secrets.userIdentifier = userIdentifier;
    secrets.developerOpenIdToken = developerToken.Token!;
    // An OpenID login presented back (GetId with the cognito-identity.amazonaws.com login).
    await cognito.send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { 'cognito-identity.amazonaws.com': developerToken.Token! } }));

    // Records with identity credentials, through a SyncTrigger webhook (signed with the webhook secret), with
    // Cognito Streams and push sync on (their deliveries fail and are logged: Kinesis and SNS are unreachable).
    const admin = syncClient(server.endpoint, developer);
    await admin.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/trigger` } }));
    await admin.send(new SetIdentityPoolConfigurationCommand({
      IdentityPoolId: poolId,
      CognitoStreams: { StreamName: 'logs', RoleArn: 'arn:aws:iam::123456789012:role/r', StreamingStatus: 'ENABLED' },
      PushSync: { ApplicationArns: ['arn:aws:sns:us-east-1:123456789012:app/GCM/logs'], RoleArn: 'arn:aws:iam::123456789012:role/r' },
    }));
    const user = { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretKey!, sessionToken: Credentials!.SessionToken! };
    const sync = syncClient(server.endpoint, user);
    const key = { IdentityPoolId: poolId, IdentityId: IdentityId!, DatasetName: 'diary' };
    const pushToken = `push-token-${randomUUID()}`;
    secrets.pushToken = pushToken;
    const { DeviceId } = await sync.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: IdentityId!, Platform: 'GCM', Token: pushToken }));
    await sync.send(new SubscribeToDatasetCommand({ ...key, DeviceId: DeviceId! }));
    const listed = await sync.send(new ListRecordsCommand(key));
    secrets.syncSessionToken = listed.SyncSessionToken!;
    const values = [`value-${randomUUID()}`, `second-${randomUUID()}`, `conflict-${randomUUID()}`, `invalid-${randomUUID()}`];
    values.forEach((value, i) => (secrets[`recordValue${i}`] = value));
    await sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'entry', Value: values[0], SyncCount: 0 }] }));
    await sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'entry', Value: values[1], SyncCount: 1 }] }));
    assert.ok(webhookSignatures.length >= 2, 'the webhook was called (so its secret was used)');
    // Errors whose messages would echo values: a conflict, a validation failure, a forged SyncSessionToken.
    await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'entry', Value: values[2], SyncCount: 0 }] })));
    await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: values[3], Value: 'x'.repeat(2_000_000), SyncCount: 0 }] })));
    const forgedToken = `${listed.SyncSessionToken!.slice(0, -4)}AAAA`;
    secrets.forgedToken = forgedToken;
    await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: forgedToken, RecordPatches: [] })));
    // Failed authentications: a wrong secret, a foreign session token, a request with the token in the query.
    await rejection(() => syncClient(server.endpoint, { ...user, secretAccessKey: `wrong-${randomUUID()}` }).send(new ListRecordsCommand(key)));
    await rejection(() => syncClient(server.endpoint, { ...user, sessionToken: `forged-${randomUUID()}` }).send(new ListRecordsCommand(key)));
    // A pre-signed live-stream URL (the session token and signature travel in the query string).
    const url = new URL(server.endpoint);
    const livePath = `/live/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(IdentityId!)}`;
    const presigned = await new SignatureV4({ service: 'cognito-sync', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials: user })
      .presign(new HttpRequest({ method: 'GET', hostname: url.hostname, port: Number(url.port), path: livePath, headers: { host: url.host } }), { expiresIn: 60 });
    const liveStatus = await new Promise<number>((resolve, reject) => {
      const req = httpGet(`${server.endpoint}${livePath}?${encodeQuery(presigned.query as Record<string, string>)}`, (res) => {
        res.once('data', () => {
          resolve(res.statusCode!);
          req.destroy();
        });
      });
      req.on('error', reject);
    });
    assert.equal(liveStatus, 200);
    // A raw request with credentials in a malformed Authorization header.
    await send(server.endpoint, { method: 'GET', path: livePath, query: '', headers: { host: url.host, authorization: `AWS4-HMAC-SHA256 Credential=${developerSecret}` }, body: Buffer.alloc(0) });

    // Let the outbox worker try (and fail) to deliver the stream records and notifications.
    const deadline = Date.now() + 5000;
    while (!(/stream delivery failed/.test(server.stderr()) && /push delivery failed/.test(server.stderr())) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const log = server.stderr();
    assert.match(log, /stream delivery failed/);
    assert.match(log, /push delivery failed/);
    assert.ok(log.split('\n').filter((line) => line.includes('"msg":"request"')).length >= 15, 'requests were logged');
    for (const [name, secret] of Object.entries(secrets)) {
      assert.ok(secret.length >= 16, name);
      assert.equal(log.includes(secret), false, `${name} appears in the log`);
      // Nor a recognizable part of it (a log that truncates would still leak).
      assert.equal(log.includes(secret.slice(0, 24)), false, `the start of ${name} appears in the log`);
    }
  });
});
