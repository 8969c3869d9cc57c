// The paced sender's HTTP/1.1 reader and its connection handling, against servers that split answers at every
// byte, answer errors and close connections. (The load itself is exercised by every `npm run bench`.)
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pacedLoad } from './paced-load.ts';
import type { PreparedRequest } from './types.ts';

const listen = async (server: Server | ReturnType<typeof createHttpServer>) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

const post = (body: string): PreparedRequest => ({ method: 'POST', path: '/a%3Ab?x=1', headers: { host: 'h:1', 'x-amz-date': '20260101T000000Z' }, body: Buffer.from(body) });

test('requests arrive as node:http reads them, and every answer is counted by status', { timeout: 10_000 }, async () => {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers['x-amz-date']} ${body}`);
      const conflict = body === 'conflict';
      const answer = conflict ? '{"__type":"ResourceConflictException"}' : '{"ok":true}';
      res.writeHead(conflict ? 409 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
    });
  });
  const url = await listen(server);
  let n = 0;
  const result = await pacedLoad({ url, connections: 4, durationSeconds: 0.5, overallRate: 200 }, () => post(n++ % 2 ? 'conflict' : 'ü-body'));
  server.close();
  assert.equal(result.completed, n);
  assert.ok(n >= 90 && n <= 100, `sent ${n}`);
  assert.equal(result.errors, 0);
  assert.equal((result.statusCounts[200] ?? 0) + (result.statusCounts[409] ?? 0), n);
  assert.ok(Math.abs(result.statusCounts[200]! - result.statusCounts[409]!) <= 1);
  assert.equal(seen[0], 'POST /a%3Ab?x=1 20260101T000000Z ü-body');
  assert.equal(seen[1], 'POST /a%3Ab?x=1 20260101T000000Z conflict');
  assert.deepEqual(result.errorSamples.slice(0, 1), ['409 {"__type":"ResourceConflictException"}']);
  assert.equal(result.errorSamples.length, 3);
});

/** A server that answers each request (one per packet) with `answer`, written one byte at a time. */
function byteByByte(answer: (index: number) => string | undefined) {
  let index = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('data', async () => {
      const text = answer(index++);
      if (text === undefined) return socket.destroy();
      for (const byte of Buffer.from(text)) {
        socket.write(Buffer.of(byte));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  });
  return { server, close: () => (server.close(), sockets.forEach((s) => s.destroy())) };
}

test('answers split at every byte, heads included, are read whole', { timeout: 10_000 }, async () => {
  const body = '{"Records":[]}';
  const { server, close } = byteByByte(() => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const url = await listen(server);
  const result = await pacedLoad({ url, connections: 2, durationSeconds: 0.3, overallRate: 50 }, () => ({ method: 'GET', path: '/', headers: { host: 'h' }, body: undefined }));
  close();
  assert.ok(result.completed >= 13, `completed ${result.completed}`);
  assert.deepEqual(result.statusCounts, { 200: result.completed });
  assert.equal(result.errors, 0);
});

test('a connection the server closes counts its request as an error, and a new one takes its place', { timeout: 10_000 }, async () => {
  // Every fourth request is dropped with its connection.
  const { server, close } = byteByByte((index) => (index % 4 === 3 ? undefined : 'HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n'));
  const url = await listen(server);
  const result = await pacedLoad({ url, connections: 1, durationSeconds: 0.4, overallRate: 50 }, () => ({ method: 'GET', path: '/', headers: { host: 'h' }, body: undefined }));
  close();
  assert.ok(result.errors >= 3, `errors ${result.errors}`);
  assert.ok(result.statusCounts[204]! >= 3 * result.errors - 3, JSON.stringify(result));
});

test('an answer without Content-Length fails its request instead of hanging the run', { timeout: 10_000 }, async () => {
  const { server, close } = byteByByte(() => 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n');
  const url = await listen(server);
  const result = await pacedLoad({ url, connections: 2, durationSeconds: 0.2, overallRate: 20 }, () => ({ method: 'GET', path: '/', headers: { host: 'h' }, body: undefined }));
  close();
  assert.equal(result.completed, 0);
  assert.ok(result.errors >= 3, `errors ${result.errors}`);
});
