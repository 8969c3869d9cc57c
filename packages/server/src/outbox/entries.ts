// The outbox entries a committed change or a bulk publish produces (pure; both stores write them).
import { streamPartitionKey, streamRecordsFor, type CognitoStreamsRecord } from '../core/stream-records.js';
import type { DatasetKey, DeviceRecord, OutboxEntry, PoolSyncSettings, PushTarget, StoredRecord, StreamTarget } from '../store/store.js';

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

/** AWS's push-sync message (the keys the mobile SDKs' PushSyncUpdate parses; syncCount is a string). */
export interface PushMessage {
  source: 'cognito-sync';
  eventType: 'DatasetUpdated' | 'DatasetDeleted';
  identityPoolId: string;
  identityId: string;
  datasetName: string;
  syncCount: string;
}

/** Payload of a `push` entry: one notification to one device through its platform application. */
export interface PushPayload {
  /** The SNS platform application ('' for Web Push). */
  applicationArn: string;
  platform: string;
  token: string;
  deviceId: string;
  message: PushMessage;
}

/** The platform segment of an SNS platform application ARN (`arn:aws:sns:…:app/GCM/name` → GCM). */
export const applicationPlatform = (arn: string) => arn.split(':')[5]?.split('/')[1];

/** One push entry per subscribed device, except the one that made the change and those with no application. */
export function pushEntries(push: PushTarget, key: DatasetKey, devices: readonly DeviceRecord[], eventType: PushMessage['eventType'], syncCount: number, writerDeviceId: string | undefined): OutboxEntry[] {
  const entries: OutboxEntry[] = [];
  for (const device of devices) {
    if (device.deviceId === writerDeviceId) continue;
    // Web Push needs no platform application (cognisync's own VAPID keys sign it).
    const applicationArn = device.platform === 'WEB_PUSH' ? '' : push.applicationArns.find((arn) => applicationPlatform(arn) === device.platform);
    if (applicationArn === undefined) continue;
    const message: PushMessage = { source: 'cognito-sync', eventType, identityPoolId: key.identityPoolId, identityId: key.identityId, datasetName: key.datasetName, syncCount: String(syncCount) };
    entries.push({ kind: 'push', partitionKey: `push:${device.identityPoolId}:${device.deviceId}`, payload: { applicationArn, platform: device.platform, token: device.token, deviceId: device.deviceId, message } satisfies PushPayload });
  }
  return entries;
}
