// Reads a request body into memory, refusing (before buffering it) anything over the configured cap.
import type { IncomingMessage } from 'node:http';
import { InvalidParameterException, RequestEntityTooLargeException } from '../errors.js';

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new RequestEntityTooLargeException(`Request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw new RequestEntityTooLargeException(`Request body exceeds the limit of ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof RequestEntityTooLargeException) throw error;
    // The client closed the connection mid-body or timed out: its mistake, not a server fault (no 500, no error log).
    throw new InvalidParameterException('The request body ended before its declared length');
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
