// The outbox entries a committed change or a bulk publish produces (pure; both stores write them).
import { streamPartitionKey, streamRecordsFor, type CognitoStreamsRecord } from '../core/stream-records.js';
import type { DatasetKey, OutboxEntry, PoolSyncSettings, StoredRecord, StreamTarget } from '../store/store.js';

/** Payload of a `stream` entry: one Cognito Streams record for a Kinesis stream. */
export interface StreamPayload {
  streamName: string;
  record: CognitoStreamsRecord;
}

/** Payload of `bulk-publish` / `bulk-finish` entries: where the walk over the pool's datasets stands. */
export interface BulkPublishPayload {
  identityPoolId: string;
  streamName: string;
  after?: { identityId: string; datasetName: string };
}

/** The outbox entries that carry one committed change to the pool's stream. */
export function streamEntries(stream: StreamTarget, key: DatasetKey, operation: 'replace' | 'remove', records: readonly StoredRecord[], syncCount: number, now: number): OutboxEntry[] {
  return streamRecordsFor(key, operation, records, syncCount, now).map((record) => ({
    kind: 'stream' as const,
    partitionKey: streamPartitionKey(key),
    payload: { streamName: stream.streamName, record } satisfies StreamPayload,
  }));
}

/** The first step of a bulk publish job: walk the pool's datasets from the start. */
export function bulkPublishJob(identityPoolId: string, settings: PoolSyncSettings): OutboxEntry {
  return { kind: 'bulk-publish', partitionKey: `bulk:${identityPoolId}`, payload: { identityPoolId, streamName: settings.cognitoStreams?.StreamName ?? '' } satisfies BulkPublishPayload, bulkPoolId: identityPoolId };
}
