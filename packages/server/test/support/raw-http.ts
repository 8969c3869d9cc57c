// Byte-level HTTP for hardening tests: SigV4-sign a request, serialize it to the exact bytes that go on the
// wire (so tests can flip, cut or pad any of them), send them over a plain TCP socket and parse the answer.
import { connect } from 'node:net';
import assert from 'node:assert/strict';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { developerCredentials, type ClientCredentials } from './server-process.ts';

export interface WireRequest {
  method: string;
  /** Path as it goes on the wire (already percent-encoded), without the query. */
  path: string;
  /** The raw query string (already percent-encoded), without `?`. */
  query: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface SignOptions {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Buffer;
  service?: 'cognito-sync' | 'cognito-identity';
  credentials?: ClientCredentials;
  signingDate?: Date;
  region?: string;
  /** Send x-amz-content-sha256 (the SDKs do); without it the server hashes the body itself. */
  payloadHashHeader?: boolean;
}

/** Percent-encodes a query the way the AWS SDKs do (RFC 3986, space as %20). */
export function encodeQuery(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([key, value]) => `${encodeRfc3986(key)}=${encodeRfc3986(value)}`)
    .join('&');
}

export function encodeRfc3986(text: string): string {
  // A lone surrogate has no UTF-8 form (encodeURIComponent throws): send U+FFFD, as a client would.
  return encodeURIComponent(text.toWellFormed()).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A SigV4-signed request, ready to serialize. The signer sees the already-encoded path, as the SDKs' signer does. */
export async function signRequest(endpoint: string, options: SignOptions): Promise<WireRequest> {
  const url = new URL(endpoint);
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body);
  const headers: Record<string, string> = { host: url.host, ...(options.headers ?? {}) };
  if (body.length > 0) headers['content-length'] = String(body.length);
  const signer = new SignatureV4({
    service: options.service ?? 'cognito-sync',
    region: options.region ?? 'us-east-1',
    sha256: Hash.bind(null, 'sha256'),
    credentials: options.credentials ?? developerCredentials,
    applyChecksum: options.payloadHashHeader ?? true,
  });
  const signed = await signer.sign(
    new HttpRequest({ method: options.method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: options.path, query: options.query ?? {}, headers, body }),
    options.signingDate ? { signingDate: options.signingDate } : {},
  );
  return { method: options.method, path: options.path, query: encodeQuery(options.query ?? {}), headers: { ...(signed.headers as Record<string, string>) }, body };
}

/** The request's bytes as HTTP/1.1 with `Connection: close` (one request per connection). */
export function serialize(request: WireRequest): Buffer {
  const target = request.query ? `${request.path}?${request.query}` : request.path;
  const lines = [`${request.method} ${target} HTTP/1.1`];
  for (const [name, value] of Object.entries(request.headers)) if (name.toLowerCase() !== 'connection') lines.push(`${name}: ${value}`);
  lines.push('connection: close');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), request.body]);
}

export interface WireResponse {
  /** Whether the whole body arrived (per Content-Length or the last chunk). */
  complete?: boolean;
  status: number;
  headers: Record<string, string>;
  text: string;
  json: any;
}

export type WireOutcome = { kind: 'response'; response: WireResponse } | { kind: 'closed'; error?: string; gaveUp: boolean };

export interface ExchangeOptions {
  /** End our side right after writing, as a client that abandons a request it cut short. */
  halfClose?: boolean;
  /** End our side if nothing arrived after this long (a server still waiting for bytes that never come). */
  giveUpAfterMs?: number;
  /** Fail if the server has not closed the connection by then. */
  timeoutMs?: number;
}

/** Writes `bytes` to a fresh connection and reads until the server closes it. */
export function exchange(endpoint: string, bytes: Buffer, options: ExchangeOptions = {}): Promise<WireOutcome> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    let socketError: string | undefined;
    let gaveUp = false;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${timeoutMs} ms: ${JSON.stringify(bytes.subarray(0, 200).toString('latin1'))}`));
    }, timeoutMs);
    const giveUp = options.giveUpAfterMs === undefined ? undefined : setTimeout(() => {
      if (chunks.length === 0) {
        gaveUp = true;
        socket.end();
      }
    }, options.giveUpAfterMs);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      // A whole answer is enough: a server keeping the connection alive must not hold the test up.
      const response = parseResponse(Buffer.concat(chunks));
      // An answer to HEAD has headers only.
      if (response?.complete || (response && bytes.subarray(0, 5).toString('latin1') === 'HEAD ')) socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (socketError = error.code ?? error.message));
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(giveUp);
      const response = parseResponse(Buffer.concat(chunks));
      resolve(response ? { kind: 'response', response } : { kind: 'closed', gaveUp, ...(socketError ? { error: socketError } : {}) });
    });
    socket.write(bytes, () => {
      if (options.halfClose) socket.end();
    });
  });
}

/** Parses the first HTTP/1.1 response in `data` (Content-Length or chunked body); undefined if there is none. */
export function parseResponse(data: Buffer): WireResponse | undefined {
  // Interim answers (100 Continue) come first; the final response follows.
  while (/^HTTP\/1\.[01] 1\d\d /.test(data.subarray(0, 16).toString('latin1')) && data.indexOf('\r\n\r\n') >= 0) data = data.subarray(data.indexOf('\r\n\r\n') + 4);
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1];
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = data.subarray(end + 4);
  let complete = false;
  if (headers['content-length'] !== undefined) {
    complete = body.length >= Number(headers['content-length']);
    body = body.subarray(0, Number(headers['content-length']));
  } else if (headers['transfer-encoding'] === 'chunked') {
    complete = body.includes('0\r\n\r\n');
    body = dechunk(body);
  }
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { complete, status: Number(status), headers, text, json };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Sends a signed request as-is and returns the response (a closed connection fails the test). */
export async function send(endpoint: string, request: WireRequest): Promise<WireResponse> {
  const outcome = await exchange(endpoint, serialize(request));
  if (outcome.kind !== 'response') throw new Error(`connection closed without an answer (${outcome.error ?? 'no error'})`);
  return outcome.response;
}

/** Why `response` is not an AWS-shaped error (x-amzn-ErrorType + {"__type","message"} agreeing), or undefined. */
export function awsErrorShapeProblem(response: WireResponse): string | undefined {
  const type = response.headers['x-amzn-errortype'];
  if (!type) return `no x-amzn-ErrorType header (status ${response.status}, body ${response.text.slice(0, 200)})`;
  if (!response.json || typeof response.json !== 'object') return `body is not JSON: ${response.text.slice(0, 200)}`;
  if (response.json.__type !== type) return `__type ${response.json.__type} differs from x-amzn-ErrorType ${type}`;
  if (typeof response.json.message !== 'string' || response.json.message === '') return `no message: ${response.text.slice(0, 200)}`;
  if (!response.headers['x-amzn-requestid']) return `no x-amzn-RequestId header (status ${response.status})`;
  if (/\.ts:\d+|\n\s+at /.test(response.text)) return `stack trace on the wire: ${response.text.slice(0, 300)}`;
  return undefined;
}

/** Asserts an AWS-shaped error with this status and name (and message, if given). */
export function assertAwsError(response: WireResponse, status: number, name: string, message?: RegExp): void {
  assert.equal(response.status, status, response.text);
  assert.equal(awsErrorShapeProblem(response), undefined);
  assert.equal(response.headers['x-amzn-errortype'], name, response.text);
  if (message) assert.match(response.json.message, message);
}

/** Runs `work` over `items` with at most `concurrency` at a time; resolves when all are done. */
export async function runConcurrently<T>(items: Iterable<T>, concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let index = 0;
  async function worker() {
    for (;;) {
      const next = iterator.next();
      if (next.done) return;
      await work(next.value, index++);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
}
