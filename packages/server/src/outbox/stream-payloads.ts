// Changes too large for one Kinesis record: their records are kept in the store, and the stream gets AWS's S3Url form
// of the change instead (`payloadType: "S3Url"`, no records inline), whose `kinesisSyncRecordsURL` serves them at
// GET /streams/payloads/{id} (http/stream-payload.ts) until it expires. AWS kept such changes in S3; cognisync has
// its store.
import { randomBytes } from 'node:crypto';
import type { CognitoStreamsRecord } from '../core/stream-records.js';
import type { Store } from '../store/store.js';

/** Kinesis takes at most 1 MiB per record, its data and its partition key together. */
export const KINESIS_MAX_RECORD_BYTES = 1024 * 1024;
/** How long a stored payload is served: as long as Kinesis keeps a record at the most that it is usually set to. */
export const STREAM_PAYLOAD_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * The record as it goes to Kinesis: itself when it fits a Kinesis record, else its S3Url form, its records stored
 * for STREAM_PAYLOAD_TTL_MS. A record split at the commit (core/stream-records.ts) stays over the limit only when one
 * of its records does alone: a value near the dataset's 1 MB, or one that JSON escaping makes larger (a quote takes
 * two bytes, a control character six). Sent as it is, Kinesis refused it at every try, and the dataset's later
 * changes waited behind it for good (QA).
 */
export async function fittedStreamRecord(
  store: Store,
  outboxId: number,
  record: CognitoStreamsRecord,
  partitionKey: string,
  baseUrl: string,
  now: number,
): Promise<CognitoStreamsRecord> {
  if (Buffer.byteLength(JSON.stringify(record)) + Buffer.byteLength(partitionKey) <= KINESIS_MAX_RECORD_BYTES) return record;
  // Stored once per outbox entry: each failed try stored another copy for 7 days (QA: 1.7 GB a day per change while
  // Kinesis failed).
  const payloadId = await store.putStreamPayload(outboxId, randomBytes(32).toString('base64url'), JSON.stringify(record.kinesisSyncRecords), now + STREAM_PAYLOAD_TTL_MS);
  return { ...record, kinesisSyncRecords: [], kinesisSyncRecordsURL: `${baseUrl}/streams/payloads/${payloadId}`, payloadType: 'S3Url' };
}
