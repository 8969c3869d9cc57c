// GET /streams/payloads/{id}: the records of a stream change too large for a Kinesis record, at the
// kinesisSyncRecordsURL its stream record names (outbox/stream-payloads.ts). No credentials: the URL's 32 random bytes
// are its key, as a pre-signed S3 URL's signature is (the stream's consumer holds it, with no cognisync credentials).
import type { ServerResponse } from 'node:http';
import { ResourceNotFoundException } from '../errors.js';
import type { Store } from '../store/store.js';

const PAYLOAD_PATH = /^\/streams\/payloads\/([A-Za-z0-9_-]{43})$/;

export const isStreamPayloadPath = (rawPath: string) => rawPath.startsWith('/streams/payloads/');

export async function serveStreamPayload(res: ServerResponse, rawPath: string, store: Store): Promise<void> {
  const payloadId = PAYLOAD_PATH.exec(rawPath)?.[1];
  const body = payloadId === undefined ? undefined : await store.getStreamPayload(payloadId, Date.now());
  if (body === undefined) throw new ResourceNotFoundException('No such stream payload; it may have expired.');
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}
