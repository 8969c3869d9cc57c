// The Node transport: SigV4 hashing on node:crypto gives the pure-JS hash's results, and the node:http exchange answers,
// fails and aborts as the fetch path does (local throw-away servers; the real server is driven by the sync tests).
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Sha256 as JsSha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { NetworkError, ServiceError } from '../src/errors.ts';
import { nodeHttpExchange } from '../src/transport/node-http.ts';
import { Sha256, sha256Implementation, type SourceData } from '../src/transport/sha256.ts';
import { fetchExchange, sendAwsRequest, type AwsRequest, type HttpExchange } from '../src/transport/signed-fetch.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

async function digestWith(Hash: new (secret?: SourceData) => { update(data: SourceData): void; digest(): Promise<Uint8Array> }, data: SourceData[], secret?: SourceData) {
  const hash = new Hash(secret);
  for (const part of data) hash.update(part);
  return hex(await hash.digest());
}

describe('SHA-256 for signing', () => {
  test('in Node it is node:crypto (the pure-JS hash is slow until V8 optimizes it)', () => {
    assert.equal(sha256Implementation, 'node:crypto');
  });

  test('hashes and HMACs equal @aws-crypto/sha256-js for strings, views at an offset, ArrayBuffers and empty input', async () => {
    const backing = new TextEncoder().encode('..héllo, wörld €..');
    const inputs: SourceData[][] = [
      [''],
      ['héllo, wörld €'],
      [backing.subarray(2, backing.length - 2)],
      [new DataView(backing.buffer, 2, 5), 'tail'],
      [backing.buffer.slice(0, 7)],
      ['x'.repeat(100_000)],
    ];
    const secrets: Array<SourceData | undefined> = [undefined, 'AWS4secret', backing.subarray(3, 20)];
    for (const data of inputs) {
      for (const secret of secrets) {
        assert.equal(await digestWith(Sha256, data, secret), await digestWith(JsSha256, data, secret), `${data.map(String).join('|').slice(0, 40)} / ${String(secret)}`);
      }
    }
  });

  test('SigV4 signatures (header and pre-signed, with and without a body) equal those made with the pure-JS hash', async () => {
    const credentials = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', sessionToken: 'token/+=' };
    const signer = (sha256: typeof Sha256) => new SignatureV4({ service: 'cognito-sync', region: 'eu-west-1', credentials, sha256, uriEscapePath: true });
    const requests = [
      { method: 'GET', path: '/identitypools/eu-west-1%3Aabc/identities/eu-west-1%3Adef/datasets/d/records', query: { lastSyncCount: '5', maxResults: '1024' } },
      { method: 'POST', path: '/identitypools/eu-west-1%3Aabc/identities/eu-west-1%3Adef/datasets/d', body: JSON.stringify({ RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'ü€😀', SyncCount: 0 }] }) },
    ];
    const signingDate = new Date('2026-12-05T10:00:00Z');
    for (const r of requests) {
      const request = () => ({ protocol: 'http:', hostname: '127.0.0.1', port: 8080, headers: { host: '127.0.0.1:8080', 'content-type': 'application/json' }, query: {}, ...r });
      const [native, js] = await Promise.all([signer(Sha256).sign(request(), { signingDate }), signer(JsSha256).sign(request(), { signingDate })]);
      assert.equal(native.headers.authorization, js.headers.authorization);
      assert.match(String(native.headers.authorization), /Signature=[0-9a-f]{64}$/);
      const [nativeUrl, jsUrl] = await Promise.all([signer(Sha256).presign(request(), { signingDate, expiresIn: 60 }), signer(JsSha256).presign(request(), { signingDate, expiresIn: 60 })]);
      assert.equal(nativeUrl.query?.['X-Amz-Signature'], jsUrl.query?.['X-Amz-Signature']);
      assert.match(String(nativeUrl.query?.['X-Amz-Signature']), /^[0-9a-f]{64}$/);
    }
  });
});

describe('node:http exchange', () => {
  const exchange = nodeHttpExchange()!;
  let server: Server;
  let base: string;
  /** What the test server does with each request; `n` counts requests on the same socket, from 1. */
  let handler: (req: IncomingMessage, res: ServerResponse, n: number, body: string) => void;
  const sockets = new Set<unknown>();
  let received: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; body: string }> = [];

  before(async () => {
    server = createServer((req, res) => {
      const socket = req.socket as typeof req.socket & { served?: number };
      socket.served = (socket.served ?? 0) + 1;
      sockets.add(socket);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ method: req.method, url: req.url, headers: req.headers, body });
        handler(req, res, socket.served!, body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const request = (path: string, overrides: Partial<AwsRequest> = {}): AwsRequest => ({
    method: 'POST',
    endpoint: base,
    path,
    body: { Value: 'ü€' },
    service: 'cognito-sync',
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' },
    fetch: () => assert.fail('fetch is not used when an exchange is given'),
    exchange,
    ...overrides,
  });

  test('sends what fetch sends (method, path and query, signed headers, body) and reads a UTF-8 body split inside a character', async () => {
    handler = (_req, res) => {
      const euro = Buffer.from('{"v":"€"}');
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'r1' });
      res.write(euro.subarray(0, 7)); // ends inside the three bytes of €
      setTimeout(() => res.end(euro.subarray(7)), 5);
    };
    for (const send of [exchange, fetchExchange(fetch)]) {
      received = [];
      assert.deepEqual(await sendAwsRequest(request('/a%3Ab/c', { exchange: send, query: { x: 'a b', y: '1' } })), { v: '€' });
      const [r] = received;
      assert.equal(r!.method, 'POST');
      assert.equal(r!.url, '/a%3Ab/c?x=a+b&y=1');
      assert.equal(r!.body, '{"Value":"ü€"}');
      assert.equal(r!.headers['content-length'], String(Buffer.byteLength('{"Value":"ü€"}')));
      assert.match(String(r!.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/cognito-sync\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/);
      assert.equal(r!.headers.host, new URL(base).host);
    }
  });

  test('an AWS error answer becomes its ServiceError; a non-JSON answer a SerializationException', async () => {
    handler = (_req, res) => {
      res.writeHead(409, { 'x-amzn-ErrorType': 'ResourceConflictException:http://internal', 'x-amzn-RequestId': 'req-9' });
      res.end(JSON.stringify({ message: 'Current SyncCount for: k is: 2 not: 1' }));
    };
    await assert.rejects(sendAwsRequest(request('/conflict')), (error: unknown) => {
      assert.ok(error instanceof ServiceError);
      assert.deepEqual([error.name, error.message, error.statusCode, error.requestId], ['ResourceConflictException', 'Current SyncCount for: k is: 2 not: 1', 409, 'req-9']);
      return true;
    });
    handler = (_req, res) => res.end('<html>proxy</html>');
    await assert.rejects(sendAwsRequest(request('/html')), (error: unknown) => error instanceof ServiceError && error.name === 'SerializationException');
  });

  test('no answer is a NetworkError; a connection closed mid-body is a NetworkError about reading the answer', async () => {
    await assert.rejects(sendAwsRequest(request('/x', { endpoint: 'http://127.0.0.1:9' })), (error: unknown) => error instanceof NetworkError && /^POST http:\/\/127\.0\.0\.1:9\/x failed: /.test(error.message));
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 5);
    };
    await assert.rejects(sendAwsRequest(request('/cut')), (error: unknown) => error instanceof NetworkError && error.message.startsWith(`Reading the answer of POST ${base}/cut failed`));
  });

  test('aborting rejects with the signal’s reason, before the answer and while reading it', async () => {
    handler = () => undefined; // never answers
    const early = new AbortController();
    setTimeout(() => early.abort(new Error('stop early')), 10);
    await assert.rejects(sendAwsRequest(request('/hang', { signal: early.signal })), { message: 'stop early' });
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"slow":');
    };
    const late = new AbortController();
    const answer = await exchange(`${base}/slow`, { method: 'GET', headers: {}, body: undefined, signal: late.signal });
    late.abort(new Error('stop late'));
    await assert.rejects(answer.text());
    await assert.rejects(sendAwsRequest(request('/slow', { signal: AbortSignal.abort(new Error('already')) })), { message: 'already' });
  });

  test('an answer that does not begin within answerTimeoutMs is a NetworkError (over node:http and fetch); a slow body is not cut', { timeout: 10_000 }, async () => {
    handler = () => undefined; // never answers
    for (const send of [exchange, fetchExchange(fetch)]) {
      const started = Date.now();
      await assert.rejects(sendAwsRequest(request('/silent', { exchange: send, answerTimeoutMs: 100 })), (error: unknown) => error instanceof NetworkError && error.message === `POST ${base}/silent got no answer within 100 ms`);
      assert.ok(Date.now() - started < 5000);
    }
    // A body that keeps coming, for longer than the timeout, is read whole; one that stops for the timeout ends it.
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const parts = ['{"slow":', ' ', ' ', ' ', ' ', ' ', 'true}'];
      const next = () => {
        const part = parts.shift()!;
        if (parts.length === 0) return void res.end(part);
        res.write(part);
        setTimeout(next, 50);
      };
      next();
    };
    for (const send of [exchange, fetchExchange(fetch)]) assert.deepEqual(await sendAwsRequest(request('/slow-body', { exchange: send, answerTimeoutMs: 150 })), { slow: true });
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"stalled":');
    };
    await assert.rejects(sendAwsRequest(request('/stalled-body', { exchange: fetchExchange(fetch), answerTimeoutMs: 150 })), (error: unknown) => error instanceof NetworkError && error.message === `POST ${base}/stalled-body: the answer stopped for 150 ms`);
    // No kept-alive socket left for the next test, which counts requests per socket.
    server.closeAllConnections();
  });

  test('a kept-alive socket the server closed is retried once on a new socket; a fresh socket that fails is not', async () => {
    // The server drops every second request on a socket without answering, as when its idle timeout closes the socket
    // just as the client reuses it.
    handler = (req, res, n) => (n >= 2 ? req.socket.destroy() : res.end('{"ok":true}'));
    received = [];
    sockets.clear();
    const send: HttpExchange = exchange;
    const get = async (path: string) => (await (await send(`${base}${path}`, { method: 'GET', headers: {}, body: undefined })).text()) as string;
    assert.equal(await get('/one'), '{"ok":true}');
    assert.equal(await get('/two'), '{"ok":true}', 'the reused socket failed; the retry on a new one succeeded');
    assert.deepEqual(
      received.map((r) => r.url),
      ['/one', '/two', '/two'],
    );
    assert.equal(sockets.size, 2);
    handler = (req) => req.socket.destroy();
    await assert.rejects(sendAwsRequest(request('/always-dropped')), NetworkError);
  });
});
