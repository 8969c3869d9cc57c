// Cognito Streams records as pure functions: what a committed change looks like on the Kinesis stream
// (AWS's format: `dataSetName` with a capital S, epoch-millisecond dates, payloadType Inline).
import type { DatasetKey, StoredRecord } from '../store/store.js';

export interface KinesisSyncRecord {
  key: string;
  value: string | null;
  syncCount: number;
  lastModifiedDate: number;
  deviceLastModifiedDate: number;
  op: 'replace' | 'remove';
}

export interface CognitoStreamsRecord {
  identityPoolId: string;
  identityId: string;
  dataSetName: string;
  /** `replace` for UpdateRecords (and bulk publish), `remove` for DeleteDataset. */
  operation: 'replace' | 'remove';
  kinesisSyncRecords: KinesisSyncRecord[];
  lastModifiedDate: number;
  /** Where the records are when they did not fit a Kinesis record (outbox/stream-payloads.ts); null when inline. */
  kinesisSyncRecordsURL: string | null;
  payloadType: 'Inline' | 'S3Url';
  syncCount: number;
}

/** Kinesis takes at most 1 MiB per record (data + partition key); we keep well under it. */
export const MAX_STREAM_RECORD_BYTES = 900 * 1024;

export const streamPartitionKey = (key: DatasetKey) => `${key.identityPoolId}:${key.identityId}:${key.datasetName}`.slice(0, 256);

/**
 * The stream records for one committed change. AWS moved oversized changes to S3 (payloadType S3Url);
 * cognisync has no S3, so it splits the change into several Inline records with the same syncCount instead.
 */
export function streamRecordsFor(
  key: DatasetKey,
  operation: 'replace' | 'remove',
  records: readonly StoredRecord[],
  syncCount: number,
  lastModifiedDate: number,
): CognitoStreamsRecord[] {
  const base = { identityPoolId: key.identityPoolId, identityId: key.identityId, dataSetName: key.datasetName, operation, lastModifiedDate, kinesisSyncRecordsURL: null, payloadType: 'Inline' as const, syncCount };
  const chunks: KinesisSyncRecord[][] = [[]];
  let size = Buffer.byteLength(JSON.stringify({ ...base, kinesisSyncRecords: [] }));
  for (const record of records) {
    const entry: KinesisSyncRecord = {
      key: record.key,
      value: record.value,
      syncCount: record.syncCount,
      lastModifiedDate: record.lastModifiedDate,
      deviceLastModifiedDate: record.deviceLastModifiedDate,
      op: record.value === null ? 'remove' : 'replace',
    };
    const entrySize = Buffer.byteLength(JSON.stringify(entry)) + 1;
    if (size + entrySize > MAX_STREAM_RECORD_BYTES && chunks[chunks.length - 1]!.length > 0) {
      chunks.push([]);
      size = Buffer.byteLength(JSON.stringify({ ...base, kinesisSyncRecords: [] }));
    }
    chunks[chunks.length - 1]!.push(entry);
    size += entrySize;
  }
  return chunks.map((kinesisSyncRecords) => ({ ...base, kinesisSyncRecords }));
}
