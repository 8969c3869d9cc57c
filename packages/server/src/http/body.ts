// Reads a request body into memory, refusing (before buffering it) anything over the configured cap.
// Plain 'data'/'end' listeners rather than `for await`: the async iterator costs more than the rest of reading a
// small body, and a request without a body (every GET) is answered without waiting for the stream at all.
import type { IncomingMessage } from 'node:http';
import { InvalidParameterException, RequestEntityTooLargeException } from '../errors.js';

const EMPTY = Buffer.alloc(0);

export function readBody(req: IncomingMessage, maxBytes: number): Buffer | Promise<Buffer> {
  const length = req.headers['content-length'];
  // HTTP/1.1: a request has a body only when it declares a length or a transfer coding.
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return EMPTY;
  const declared = Number(length);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(new RequestEntityTooLargeException(`Request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData).off('end', onEnd).off('error', onEnded).off('close', onEnded);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // The rest is never read: the answer carries `connection: close`, so the socket goes once it is written.
        stop();
        req.pause();
        reject(new RequestEntityTooLargeException(`Request body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // The client closed the connection mid-body or timed out: its mistake, not a server fault (no 500, no error log).
    const onEnded = () => {
      stop();
      reject(new InvalidParameterException('The request body ended before its declared length'));
    };
    req.on('data', onData).on('end', onEnd).on('error', onEnded).on('close', onEnded);
  });
}
