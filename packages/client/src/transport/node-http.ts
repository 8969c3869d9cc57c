// One buffered HTTP exchange over node:http / node:https: in Node, how the API calls go when the app passes no `fetch`.
//
// Why not Node's fetch (undici) for them: fetch sends every request body through a web ReadableStream and an async
// generator, and reads every answer through another stream. For a sync's small requests that costs about 1 ms more per
// request than node:http while the code is cold, and it stays cold in an app that synchronizes now and then (one
// UpdateRecords per push). The AWS SDK v3 uses node:http in Node for the same reason (@smithy/node-http-handler).
// Streamed answers (the live stream) still use fetch. Sockets come from the global agents (keep-alive, and whatever
// proxy agent the app installed there).
import { nodeBuiltin } from './node-builtin.ts';
import type { HttpAnswer, HttpExchange } from './signed-fetch.ts';

type Http = typeof import('node:http');
type Https = typeof import('node:https');
type IncomingMessage = import('node:http').IncomingMessage;

/** As fetch's (undici's) defaults: the answer's head, and then each part of its body, must come within 300 s. */
const idleTimeoutMs = 300_000;

/** A node:http error meaning the server had closed the kept-alive socket before this request went out on it. */
const isStaleSocket = (error: unknown) => (error as { code?: string } | undefined)?.code === 'ECONNRESET';

function answerOf(response: IncomingMessage): HttpAnswer {
  // Collected from the start, so that an error mid-body is seen even before text() is called.
  let progress: (() => void) | undefined;
  const body = new Promise<string>((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    response.on('data', (chunk: Uint8Array) => {
      chunks.push(chunk);
      progress?.();
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
    response.on('close', () => {
      if (!response.complete) reject(new Error('the connection closed before the answer ended'));
    });
  });
  body.catch(() => undefined);
  return {
    status: response.statusCode ?? 0,
    statusText: response.statusMessage ?? '',
    header(name) {
      const value = response.headers[name.toLowerCase()];
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
    },
    text: (onProgress) => {
      progress = onProgress;
      return body;
    },
  };
}

/**
 * An HttpExchange over node:http / node:https, or undefined outside Node (the modules are looked up with
 * `process.getBuiltinModule`, Node ≥ 20.16, so this module imports nothing from Node and bundles for browsers).
 */
export function nodeHttpExchange(): HttpExchange | undefined {
  const http = nodeBuiltin<Http>('node:http');
  const https = nodeBuiltin<Https>('node:https');
  if (!http || !https) return undefined;
  const { request: httpRequest } = http;
  const { request: httpsRequest } = https;

  const send = (url: URL, init: Parameters<HttpExchange>[1], retryStaleSocket: boolean): Promise<HttpAnswer> =>
    new Promise((resolve, reject) => {
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: init.method, headers: init.headers, signal: init.signal });
      let answered = false;
      request.setTimeout(idleTimeoutMs, () => request.destroy(new Error(`no answer within ${idleTimeoutMs / 1000} s`)));
      request.on('response', (response) => {
        answered = true;
        resolve(answerOf(response));
      });
      request.on('error', (error) => {
        // The race every keep-alive client has with a server closing an idle socket: the request never reached the
        // server, so send it once more on a new socket (as Node's documentation recommends).
        if (!answered && retryStaleSocket && request.reusedSocket && isStaleSocket(error) && !init.signal?.aborted) resolve(send(url, init, false));
        else reject(error);
      });
      request.end(init.body);
    });

  return (url, init) => send(new URL(url), init, true);
}
