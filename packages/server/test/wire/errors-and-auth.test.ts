// The front door over raw HTTP: SigV4 failures, malformed input, routing and body limits all get AWS-shaped
// errors (status, x-amzn-ErrorType, {"__type","message"}) — and the server keeps serving.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { developerCredentials, identityClient, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';
import { exchange, serialize } from '../support/raw-http.ts';
import { rawRequest, type RawResponse } from '../support/signed-fetch.ts';

let server: ServerProcess;
let poolId: string;
let identityId: string;
let datasetPath: string;

before(async () => {
  server = await startServer({ env: { COGNISYNC_MAX_REQUEST_BODY_BYTES: '65536', COGNISYNC_MAX_IDENTITY_REQUEST_BODY_BYTES: '32768' } });
  poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'errors', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  identityId = newIdentityId();
  datasetPath = `/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identityId)}/datasets/ds`;
});
after(async () => {
  assert.equal(await server.stop(), 0, 'SIGTERM exits 0');
});

function assertAwsError(response: RawResponse, status: number, name: string, message?: RegExp) {
  assert.equal(response.status, status, response.text);
  assert.equal(response.headers.get('x-amzn-errortype'), name);
  assert.ok(response.headers.get('x-amzn-requestid'));
  assert.equal(response.json?.__type, name);
  assert.equal(typeof response.json?.message, 'string');
  if (message) assert.match(response.json.message, message);
  assert.doesNotMatch(response.text, /at .*\.ts:\d+/, 'no stack trace on the wire');
}

async function sessionToken(): Promise<string> {
  const listed = await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records` });
  assert.equal(listed.status, 200);
  return listed.json.SyncSessionToken;
}

describe('SigV4', () => {
  test('no Authorization → 403 MissingAuthenticationTokenException', async () => {
    assertAwsError(await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, unsigned: true }), 403, 'MissingAuthenticationTokenException');
  });

  test('wrong secret → InvalidSignatureException as the SDK parses it', async () => {
    const client = syncClient(server.endpoint, { accessKeyId: developerCredentials.accessKeyId, secretAccessKey: 'wrong' });
    const error = await rejection(() => client.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'ds' })));
    assert.equal(error.name, 'InvalidSignatureException');
    assert.equal(error.$metadata?.httpStatusCode, 403);
  });

  test('unknown access key → 403 UnrecognizedClientException', async () => {
    const response = await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' } });
    assertAwsError(response, 403, 'UnrecognizedClientException', /security token included in the request is invalid/);
  });

  test('long-term (developer) credentials with a session token → 403 UnrecognizedClientException, as AWS', async () => {
    const response = await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, credentials: { ...developerCredentials, sessionToken: 'junk' } });
    assertAwsError(response, 403, 'UnrecognizedClientException', /security token included in the request is invalid/);
  });

  test('a signature older than 15 minutes → InvalidSignatureException "Signature expired"', async () => {
    const response = await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, signingDate: new Date(Date.now() - 16 * 60_000) });
    assertAwsError(response, 403, 'InvalidSignatureException', /Signature expired/);
    const future = await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, signingDate: new Date(Date.now() + 16 * 60_000) });
    assertAwsError(future, 403, 'InvalidSignatureException', /not yet current/);
  });

  test('a credential scoped to another service is refused', async () => {
    assertAwsError(await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, service: 'cognito-identity' }), 403, 'InvalidSignatureException', /cognito-sync/);
  });

  test('a body or path changed after signing is refused', async () => {
    const token = await sessionToken();
    const body = JSON.stringify({ SyncSessionToken: token, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] });
    const tamperedBody = await rawRequest(server.endpoint, {
      method: 'POST', path: datasetPath, headers: { 'content-type': 'application/json' }, body,
      tamper: (r) => (r.body = body.replace('"v"', '"w"')),
    });
    assertAwsError(tamperedBody, 403, 'InvalidSignatureException', /does not match/);
    const tamperedPath = await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, tamper: (r) => (r.path = r.path.replace('/ds', '/other')) });
    assertAwsError(tamperedPath, 403, 'InvalidSignatureException');
    const check = await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records` });
    assert.equal(check.json.DatasetExists, false, 'the tampered write changed nothing');
  });

  test('a malformed Authorization header → IncompleteSignatureException', async () => {
    const response = await rawRequest(server.endpoint, { method: 'GET', path: datasetPath, unsigned: true, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=abc' } });
    assertAwsError(response, 403, 'IncompleteSignatureException');
  });
});

describe('malformed input', () => {
  test('invalid JSON, a non-object body, invalid UTF-8 and a wrong content type → 400, nothing written', async () => {
    const headers = { 'content-type': 'application/json' };
    assertAwsError(await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, headers, body: '{"SyncSessionToken":' }), 400, 'InvalidParameterException', /not valid JSON/);
    assertAwsError(await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, headers, body: '[1,2]' }), 400, 'InvalidParameterException', /JSON object/);
    assertAwsError(await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, headers, body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }), 400, 'InvalidParameterException', /UTF-8/);
    assertAwsError(await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, headers: { 'content-type': 'application/xml' }, body: '<x/>' }), 400, 'InvalidParameterException', /Content-Type/);
    const check = await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records` });
    assert.equal(check.json.DatasetExists, false);
  });

  test('wrong member types → InvalidParameterException naming the member', async () => {
    const token = await sessionToken();
    const body = JSON.stringify({ SyncSessionToken: token, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: '0' }] });
    const response = await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, headers: { 'content-type': 'application/json' }, body });
    assertAwsError(response, 400, 'InvalidParameterException', /recordPatches\.1\.member\.syncCount/);
    const huge = JSON.stringify({ SyncSessionToken: token, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 1e300 }] });
    assertAwsError(await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, headers: { 'content-type': 'application/json' }, body: huge }), 400, 'InvalidParameterException');
  });

  test('non-numeric or out-of-range query numbers and bad percent-encoding → 400', async () => {
    assertAwsError(await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records`, query: { lastSyncCount: 'abc' } }), 400, 'InvalidParameterException', /lastSyncCount/);
    assertAwsError(await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records`, query: { lastSyncCount: '99999999999999999999' } }), 400, 'InvalidParameterException');
    assertAwsError(await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records`, query: { maxResults: '3000000000' } }), 400, 'InvalidParameterException', /32-bit/);
    const badPath = `/identitypools/${encodeURIComponent(poolId)}/identities/%E0%A4%A/datasets/ds`;
    assertAwsError(await rawRequest(server.endpoint, { method: 'GET', path: badPath }), 400, 'InvalidParameterException', /percent-encoding/);
  });

  test('unknown routes and methods → 404 UnknownOperationException', async () => {
    assertAwsError(await rawRequest(server.endpoint, { method: 'GET', path: '/nothing/here' }), 404, 'UnknownOperationException');
    assertAwsError(await rawRequest(server.endpoint, { method: 'PUT', path: datasetPath }), 404, 'UnknownOperationException', /not allowed/);
  });

  test('a LastSyncCount anywhere in a long\'s range is taken (nothing after it); past 19 digits it is refused by name', async () => {
    const far = await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records`, query: { lastSyncCount: '9223372036854775807' } });
    assert.equal(far.status, 200, far.text);
    assert.deepEqual(far.json.Records, []);
    const beyond = await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records`, query: { lastSyncCount: '92233720368547758070' } });
    assertAwsError(beyond, 400, 'InvalidParameterException', /^1 validation error detected: Value '92233720368547758070' at 'lastSyncCount' failed to satisfy constraint: .*at most 19 digits/);
    // The checks outside the model speak the same Coral wording.
    const negative = await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records`, query: { lastSyncCount: '-1' } });
    assertAwsError(negative, 400, 'InvalidParameterException', /^1 validation error detected: Value '-1' at 'lastSyncCount' failed to satisfy constraint: Member must have value greater than or equal to 0$/);
    const none = await rawRequest(server.endpoint, { method: 'GET', path: `${datasetPath}/records`, query: { maxResults: '0' } });
    assertAwsError(none, 400, 'InvalidParameterException', /^1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1$/);
  });

  test('Cognito Identity bodies have their own, smaller cap (read before anything is authenticated)', async () => {
    const body = JSON.stringify({ IdentityPoolId: poolId, Logins: { 'graph.facebook.com': 'x'.repeat(40_000) } });
    const identity = await rawRequest(server.endpoint, { method: 'POST', path: '/', unsigned: true, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.GetId' }, body });
    assertAwsError(identity, 413, 'RequestEntityTooLargeException', /limit of 32768 bytes/);
    // The same size is below the Sync API's cap: that request gets as far as authentication.
    const sync = await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, unsigned: true, headers: { 'content-type': 'application/json' }, body });
    assertAwsError(sync, 403, 'MissingAuthenticationTokenException');
    // Nesting no model needs is refused before the parse (a body nested 500,000 deep took 100-300 ms of it).
    const nested = `{"IdentityPoolId":"${poolId}","Zzz":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const deep = await rawRequest(server.endpoint, { method: 'POST', path: '/', unsigned: true, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.GetId' }, body: nested });
    assertAwsError(deep, 400, 'SerializationException', /deeper than 64 levels/);
  });

  test('Expect: 100-continue: a body too large by its declared length gets 413 at once, never 100 Continue; one within the limit is asked for', async () => {
    const firstLine = (headers: string) =>
      new Promise<string>((resolve, reject) => {
        const url = new URL(server.endpoint);
        const socket = connect(Number(url.port), url.hostname, () => socket.write(headers));
        socket.once('data', (chunk) => {
          resolve(chunk.toString('latin1').split('\r\n')[0]!);
          socket.destroy();
        });
        socket.once('error', reject);
      });
    const head = (length: number) => `POST ${datasetPath} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\nexpect: 100-continue\r\n\r\n`;
    assert.match(await firstLine(head(70_000)), /^HTTP\/1.1 413 /);
    assert.equal(await firstLine(head(100)), 'HTTP/1.1 100 Continue');
  });

  test('an oversized body is refused with 413 before it is read, and the server keeps serving', async () => {
    const response = await rawRequest(server.endpoint, { method: 'POST', path: datasetPath, headers: { 'content-type': 'application/json' }, body: 'x'.repeat(70_000) });
    assertAwsError(response, 413, 'RequestEntityTooLargeException');
    const health = await fetch(`${server.endpoint}/health`);
    assert.equal(health.status, 200);
  });

  // Closing on a client that is still sending makes the kernel reset the connection, and the 413 already sent is
  // lost (before the lingering close, about one 16 MB upload in three ended in EPIPE here).
  test('a client still sending a large body gets its 413 (lingering close), through raw TCP and the SDK', async () => {
    const size = 16_000_000;
    const bytes = serialize({ method: 'POST', path: datasetPath, query: '', headers: { host: '127.0.0.1', 'content-type': 'application/json', 'content-length': String(size) }, body: Buffer.alloc(size, 0x7b) });
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const outcome = await exchange(server.endpoint, bytes);
      outcomes.push(outcome.kind === 'response' ? `${outcome.response.status} ${outcome.response.headers['x-amzn-errortype']}` : `closed (${outcome.error})`);
    }
    assert.deepEqual(outcomes, Array(10).fill('413 RequestEntityTooLargeException'));
    const token = await sessionToken();
    const patches = Array.from({ length: 16 }, (_, i) => ({ Op: 'replace' as const, Key: `big-${i}`, Value: 'v'.repeat(1_000_000), SyncCount: 0 }));
    for (let i = 0; i < 3; i++) {
      const error = await rejection(() => syncClient(server.endpoint).send(new UpdateRecordsCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'ds', SyncSessionToken: token, RecordPatches: patches })));
      assert.equal(error.name, 'RequestEntityTooLargeException', error.message);
      assert.equal(error.$metadata?.httpStatusCode, 413);
    }
  });

  test('the lingering close is bounded: a client that keeps sending, or goes quiet, is disconnected', async () => {
    const url = new URL(server.endpoint);
    // allowHalfOpen: the server's FIN must not end our side, or we could not tell when the server really closes.
    const refused = (trickleMs: number | undefined) =>
      new Promise<{ status: string; closedAfterMs: number }>((resolve, reject) => {
        const socket = connect({ host: url.hostname, port: Number(url.port), allowHalfOpen: true });
        const started = Date.now();
        let received = '';
        socket.on('data', (chunk) => (received += chunk.toString('latin1')));
        socket.on('error', () => undefined);
        socket.write(`POST ${datasetPath} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n`);
        socket.write(Buffer.alloc(100_000, 0x7b));
        // A quiet client learns that the server has gone only by writing again: the first write draws a reset,
        // the next one fails on it.
        const trickle =
          trickleMs === undefined
            ? setTimeout(() => socket.write('{', () => setTimeout(() => socket.writable && socket.write('{'), 300)), 3_500)
            : setInterval(() => socket.writable && socket.write(Buffer.alloc(1_000, 0x7b)), trickleMs);
        const timer = setTimeout(() => reject(new Error('still connected after 15 s')), 15_000);
        socket.on('close', () => {
          clearTimeout(trickle); // node clears an interval with clearTimeout too
          clearTimeout(timer);
          resolve({ status: received.slice(0, 12), closedAfterMs: Date.now() - started });
        });
      });
    const [sending, quiet] = await Promise.all([refused(200), refused(undefined)]);
    assert.equal(sending.status, 'HTTP/1.1 413');
    assert.equal(quiet.status, 'HTTP/1.1 413');
    // 5 s in all (while data keeps coming) and 2 s without data, on the server; a client notices on its next write.
    assert.ok(sending.closedAfterMs >= 4_000 && sending.closedAfterMs < 9_000, `sending client closed after ${sending.closedAfterMs} ms`);
    assert.ok(quiet.closedAfterMs >= 3_500 && quiet.closedAfterMs < 5_000, `quiet client closed after ${quiet.closedAfterMs} ms`);
  });
});

describe('what real clients send', () => {
  test('body-less POST operations accept no body, an empty body with no content type, and {}', async () => {
    const path = `/identitypools/${encodeURIComponent(poolId)}/getBulkPublishDetails`;
    for (const request of [{}, { body: '' }, { body: '{}', headers: { 'content-type': 'application/json' } }]) {
      const response = await rawRequest(server.endpoint, { method: 'POST', path, ...request });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.BulkPublishStatus, 'NOT_STARTED');
    }
  });

  test('DeviceLastModifiedDate as whole, fractional or string epoch seconds; dates come back as epoch-second numbers', async () => {
    const path = `/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(newIdentityId())}/datasets/dates`;
    const token = (await rawRequest(server.endpoint, { method: 'GET', path: `${path}/records` })).json.SyncSessionToken;
    const body = JSON.stringify({
      SyncSessionToken: token,
      RecordPatches: [
        { Op: 'replace', Key: 'whole', Value: '1', SyncCount: 0, DeviceLastModifiedDate: 1700000000 },
        { Op: 'replace', Key: 'fraction', Value: '2', SyncCount: 0, DeviceLastModifiedDate: 1700000000.123 },
        { Op: 'replace', Key: 'text', Value: '3', SyncCount: 0, DeviceLastModifiedDate: '1700000001' },
      ],
    });
    const response = await rawRequest(server.endpoint, { method: 'POST', path, headers: { 'content-type': 'application/json', 'x-amz-client-context': 'Y2M=' }, body });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(response.json.Records.map((r: { DeviceLastModifiedDate: number }) => r.DeviceLastModifiedDate), [1700000000, 1700000000.123, 1700000001]);
    for (const record of response.json.Records) assert.equal(typeof record.LastModifiedDate, 'number');
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.ok(response.headers.get('x-amzn-requestid'));
  });
});

describe('Cognito Identity front door', () => {
  const target = (op: string) => ({ 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSCognitoIdentityService.${op}` });

  test('malformed JSON → 400 SerializationException; no target → 400 UnknownOperationException', async () => {
    const bad = await rawRequest(server.endpoint, { method: 'POST', path: '/', service: 'cognito-identity', headers: target('ListIdentityPools'), body: '{nope' });
    assertAwsError(bad, 400, 'SerializationException');
    const none = await rawRequest(server.endpoint, { method: 'POST', path: '/', service: 'cognito-identity', headers: { 'content-type': 'application/x-amz-json-1.1' }, body: '{}' });
    assertAwsError(none, 400, 'UnknownOperationException', /X-Amz-Target/);
  });

  test('unsigned requests to signed operations → 400 MissingAuthenticationTokenException', async () => {
    const response = await rawRequest(server.endpoint, { method: 'POST', path: '/', unsigned: true, headers: target('ListIdentityPools'), body: '{"MaxResults":1}' });
    assertAwsError(response, 400, 'MissingAuthenticationTokenException');
  });
});

describe('health', () => {
  test('/health and /ready answer 200 without credentials', async () => {
    assert.equal((await fetch(`${server.endpoint}/health`)).status, 200);
    const ready = await fetch(`${server.endpoint}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
  });
});
