// Delivers `stream` outbox entries to Kinesis with PutRecords (@aws-sdk/client-kinesis over HTTP/1.1;
// endpoint from COGNISYNC_KINESIS_ENDPOINT, credentials from the standard AWS chain). The SDK is loaded on
// first use: most deployments never enable Cognito Streams, and it costs the process several MB.
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { ClaimedOutboxEntry } from '../store/store.js';
import { LazyAwsClient } from './lazy-aws-client.js';
import type { StreamPayload } from './entries.js';

const loadKinesisSdk = () => import('@aws-sdk/client-kinesis');

/** PutRecords accepts at most 500 records per call, and 5 MiB in all (data and partition keys). */
const MAX_RECORDS_PER_CALL = 500;
const MAX_BYTES_PER_CALL = 5 * 1024 * 1024;

/**
 * The entries in PutRecords calls within both limits, in order. Counted by records alone, seven changes of about
 * 900 KB went out in one call that Kinesis refused whole, again at every retry, since they fell due together (QA).
 */
export function putRecordsBatches<T>(items: readonly T[], bytesOf: (item: T) => number): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = bytesOf(item);
    if (batch.length > 0 && (batch.length === MAX_RECORDS_PER_CALL || bytes + size > MAX_BYTES_PER_CALL)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

export interface DeliveryResult {
  delivered: number[];
  failed: { outboxId: number; error: string }[];
}

export class KinesisDelivery {
  private readonly kinesis: LazyAwsClient<Awaited<ReturnType<typeof loadKinesisSdk>>, KinesisClient>;

  constructor(options: { region: string; endpoint?: string; timeoutMs?: number }) {
    this.kinesis = new LazyAwsClient(loadKinesisSdk, (sdk, config) => new sdk.KinesisClient(config), { ...options, timeoutMs: options.timeoutMs ?? 10_000 });
  }

  /** Sends the entries (heads of distinct partitions, so their relative order does not matter). */
  async deliver(entries: readonly ClaimedOutboxEntry[]): Promise<DeliveryResult> {
    const { client, sdk } = await this.kinesis.get();
    const result: DeliveryResult = { delivered: [], failed: [] };
    const byStream = new Map<string, ClaimedOutboxEntry[]>();
    for (const entry of entries) {
      const { streamName } = entry.payload as StreamPayload;
      byStream.set(streamName, [...(byStream.get(streamName) ?? []), entry]);
    }
    for (const [streamName, streamEntries] of byStream) {
      const records = streamEntries.map((entry) => ({ entry, record: { Data: Buffer.from(JSON.stringify((entry.payload as StreamPayload).record)), PartitionKey: entry.partitionKey } }));
      for (const batchRecords of putRecordsBatches(records, ({ record }) => record.Data.length + Buffer.byteLength(record.PartitionKey))) {
        const batch = batchRecords.map(({ entry }) => entry);
        try {
          const response = await client.send(new sdk.PutRecordsCommand({ StreamName: streamName, Records: batchRecords.map(({ record }) => record) }), this.kinesis.callOptions());
          (response.Records ?? []).forEach((record, index) => {
            const entry = batch[index]!;
            if (record.ErrorCode) result.failed.push({ outboxId: entry.outboxId, error: `${record.ErrorCode}: ${record.ErrorMessage ?? ''}` });
            else result.delivered.push(entry.outboxId);
          });
        } catch (error) {
          const message = `${(error as Error).name}: ${(error as Error).message}`;
          for (const entry of batch) result.failed.push({ outboxId: entry.outboxId, error: message });
        }
      }
    }
    return result;
  }

  /** Whether the stream exists: true/false when Kinesis says so, undefined when it cannot be asked. */
  async streamExists(streamName: string): Promise<boolean | undefined> {
    try {
      const { client, sdk } = await this.kinesis.get();
      await client.send(new sdk.DescribeStreamSummaryCommand({ StreamName: streamName }), { abortSignal: AbortSignal.timeout(3000) });
      return true;
    } catch (error) {
      return (error as { name?: string }).name === 'ResourceNotFoundException' ? false : undefined;
    }
  }

  /** Closes the client's sockets, if it was ever made. */
  async destroy(): Promise<void> {
    await this.kinesis.destroy();
  }
}
