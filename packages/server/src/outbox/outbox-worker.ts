// The delivery loop over the transactional outbox. Every process runs one; leases make each entry go to
// exactly one process at a time, and an entry is removed only after it was delivered (at least once).
//
//   idle ──(poll interval or notify())──▶ claim heads of partitions ──▶ deliver by kind ──▶ complete / retry
//     ▲                                        │ nothing due                                   │
//     └────────────────────────────────────────┴───────────────────────────────────────────────┘
//   A failed entry is retried with exponential backoff (200 ms doubling, capped at 60 s) and blocks only
//   its own partition (one dataset), so order per dataset is kept while other datasets flow.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ClaimedOutboxEntry, Store } from '../store/store.js';
import { BulkPublishJob, MAX_BULK_ATTEMPTS } from './bulk-publish-job.js';
import type { KinesisDelivery } from './kinesis-delivery.js';
import type { BulkPublishPayload, PushPayload, StreamPayload } from './entries.js';
import type { SnsDelivery } from './sns-delivery.js';
import { fittedStreamRecord } from './stream-payloads.js';
import { WEB_PUSH_PLATFORM, type WebPushDelivery } from './web-push-delivery.js';

/** A notification that could not be delivered this many times is dropped (notifications are hints). */
const MAX_PUSH_ATTEMPTS = 10;
/**
 * Rounds of push deliveries under way at once, and notifications per round; claimed notifications beyond them wait
 * for a later round. So at most 48 SNS calls are under way, within the SDK's 50 sockets: all of a backlog at once
 * (500 in QA) queued for sockets, their timeouts running meanwhile, and an SNS answering in 6 s got none of them.
 */
const MAX_PUSH_ROUNDS = 3;
const PUSHES_PER_ROUND = 16;

export interface OutboxWorkerOptions {
  pollMs?: number;
  leaseMs?: number;
  batchSize?: number;
  /** The server's URL as consumers reach it: where a change too large for Kinesis is served (stream-payloads.ts). */
  publicUrl?: string;
}

/** How often expired stream payloads are removed. */
const PAYLOAD_SWEEP_MS = 10 * 60 * 1000;

export function retryDelayMs(attempts: number): number {
  return Math.min(60_000, 200 * 2 ** Math.min(attempts, 20));
}

export class OutboxWorker {
  private readonly owner = randomUUID();
  private readonly bulk: BulkPublishJob;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly batchSize: number;
  private readonly publicUrl: string;
  private lastPayloadSweep = 0;
  /** Push deliveries under way: they run beside the loop, which goes on with the stream and bulk entries. */
  private readonly pushDeliveries = new Set<Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly kinesis: KinesisDelivery,
    private readonly sns: SnsDelivery,
    private readonly webPush: WebPushDelivery,
    private readonly logger: Logger,
    options: OutboxWorkerOptions = {},
  ) {
    this.bulk = new BulkPublishJob(store);
    this.pollMs = options.pollMs ?? 250;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.batchSize = options.batchSize ?? 200;
    this.publicUrl = options.publicUrl ?? 'http://127.0.0.1:8080';
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Something was just committed: look now rather than at the next poll. */
  notify(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
    await Promise.all(this.pushDeliveries);
  }

  private async run(): Promise<void> {
    while (this.running) {
      let worked = 0;
      try {
        worked = await this.tick();
      } catch (error) {
        this.logger.warn({ err: error }, 'outbox tick failed; retrying');
      }
      if (worked === 0 && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.pollMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }

  /** One round: claim due entries, deliver them, record the outcome. Returns how many were claimed. */
  async tick(): Promise<number> {
    const now = Date.now();
    if (now - this.lastPayloadSweep >= PAYLOAD_SWEEP_MS) {
      this.lastPayloadSweep = now;
      await this.store.dropExpiredStreamPayloads(now);
    }
    const claimed = await this.store.claimOutbox(this.owner, now, this.leaseMs, this.batchSize);
    if (claimed.length === 0) return 0;
    // Push notifications are not awaited here: an SNS endpoint that hangs takes up to three calls of the delivery
    // timeout per notification, and waited for, it held up every pool's stream for as long (QA: 10 s a round, for
    // minutes while it kept failing). Their entries stay leased meanwhile, so the next rounds pass them by.
    const claimedPushes = claimed.filter((entry) => entry.kind === 'push');
    const pushes = this.pushDeliveries.size < MAX_PUSH_ROUNDS ? claimedPushes.slice(0, PUSHES_PER_ROUND) : [];
    // The rest go back, no attempt counted: soon if a round can take them, after a poll interval if all are busy.
    const later = now + (this.pushDeliveries.size + 1 < MAX_PUSH_ROUNDS ? 0 : this.pollMs);
    for (const entry of claimedPushes.slice(pushes.length)) await this.store.retryOutbox(entry.outboxId, later);
    if (pushes.length > 0) {
      const delivery: Promise<void> = this.deliverPushes(pushes)
        .catch((error: unknown) => this.logger.warn({ err: error }, 'push delivery round failed; retrying'))
        .finally(() => this.pushDeliveries.delete(delivery));
      this.pushDeliveries.add(delivery);
    }
    const streams = claimed.filter((entry) => entry.kind === 'stream');
    if (streams.length > 0) await this.deliverStreams(streams);
    for (const entry of claimed) {
      if (entry.kind === 'stream' || entry.kind === 'push') continue;
      try {
        if (entry.kind === 'bulk-publish') await this.bulk.step(entry, Date.now());
        else await this.bulk.finish(entry, Date.now());
      } catch (error) {
        const reason = String((error as Error).message ?? error);
        if (entry.kind === 'bulk-publish' && entry.attempts + 1 >= MAX_BULK_ATTEMPTS) {
          // As for its stream entries: a job that cannot go on does not stay IN_PROGRESS for ever.
          this.logger.warn({ err: error, outboxId: entry.outboxId, kind: entry.kind }, 'bulk publish step failed for the last time; the job fails');
          await this.bulk.fail((entry.payload as BulkPublishPayload).identityPoolId, `A step failed ${MAX_BULK_ATTEMPTS} times: ${reason}`);
          continue;
        }
        this.logger.warn({ err: error, outboxId: entry.outboxId, kind: entry.kind }, 'bulk publish step failed; retrying');
        await this.store.retryOutbox(entry.outboxId, Date.now() + retryDelayMs(entry.attempts), reason);
      }
    }
    return claimed.length;
  }

  private async deliverPushes(claimed: ClaimedOutboxEntry[]): Promise<void> {
    // Queued before its device unsubscribed, or before the device or identity was deleted (a delivery that kept
    // failing meanwhile): not sent to a device that no longer asks for it.
    const entries: ClaimedOutboxEntry[] = [];
    for (const entry of claimed) {
      const { deviceId, message } = entry.payload as PushPayload;
      const subscribed = await this.store.listSubscriptions({ identityPoolId: message.identityPoolId, identityId: message.identityId, datasetName: message.datasetName });
      if (subscribed.includes(deviceId)) entries.push(entry);
      else await this.store.completeOutbox([entry.outboxId]);
    }
    const byId = new Map(entries.map((entry) => [entry.outboxId, entry]));
    const outcomes = await Promise.all(
      entries.map((entry) => ((entry.payload as PushPayload).platform === WEB_PUSH_PLATFORM ? this.webPush.deliverOne(entry) : this.sns.deliverOne(entry))),
    );
    for (const outcome of outcomes) {
      const entry = byId.get(outcome.outboxId)!;
      if (outcome.result === 'delivered') {
        await this.store.completeOutbox([entry.outboxId]);
      } else if (outcome.result === 'dead-token') {
        this.logger.info({ deviceId: outcome.payload.deviceId, platform: outcome.payload.platform }, 'push endpoint disabled; unregistering the device');
        await this.store.deleteDevice(outcome.payload.message.identityPoolId, outcome.payload.message.identityId, outcome.payload.deviceId);
        await this.store.completeOutbox([entry.outboxId]);
      } else if (entry.attempts + 1 >= MAX_PUSH_ATTEMPTS) {
        this.logger.warn({ outboxId: entry.outboxId, error: outcome.error }, 'push notification dropped after repeated failures');
        await this.store.completeOutbox([entry.outboxId]);
      } else {
        this.logger.warn({ outboxId: entry.outboxId, attempts: entry.attempts + 1, error: outcome.error }, 'push delivery failed; will retry');
        await this.store.retryOutbox(entry.outboxId, Date.now() + retryDelayMs(entry.attempts), outcome.error);
      }
    }
  }

  /**
   * Whether a change's failed entry is given up: its identity pool was deleted (a change of a pool that is gone is
   * not retried for ever, whatever the failure: with Kinesis unreachable it was, once a minute), or its stream does
   * not exist and its pool has stopped streaming there (streaming switched off, or to another stream). A change is
   * streamed to the stream configured when it was committed; while that is still the pool's stream, a failure is
   * retried (the operator may create the stream, or bring Kinesis back).
   */
  private async streamAbandoned(entry: ClaimedOutboxEntry, error: string): Promise<'pool deleted' | 'stream replaced' | undefined> {
    const payload = entry.payload as StreamPayload;
    const settings = await this.store.getPoolSyncSettings(payload.record.identityPoolId);
    if (!settings) return 'pool deleted';
    if (!error.startsWith('ResourceNotFoundException')) return undefined;
    const streams = settings.cognitoStreams;
    return streams?.StreamingStatus !== 'ENABLED' || streams.StreamName !== payload.streamName ? 'stream replaced' : undefined;
  }

  private async deliverStreams(claimed: ClaimedOutboxEntry[]): Promise<void> {
    const now = Date.now();
    const entries = await Promise.all(
      claimed.map(async (entry) => {
        const payload = entry.payload as StreamPayload;
        const record = await fittedStreamRecord(this.store, entry.outboxId, payload.record, entry.partitionKey, this.publicUrl, now);
        return record === payload.record ? entry : { ...entry, payload: { ...payload, record } };
      }),
    );
    const result = await this.kinesis.deliver(entries);
    await this.store.completeOutbox(result.delivered);
    const byId = new Map(entries.map((entry) => [entry.outboxId, entry]));
    for (const failure of result.failed) {
      const entry = byId.get(failure.outboxId)!;
      const abandoned = entry.bulkPoolId ? undefined : await this.streamAbandoned(entry, failure.error);
      if (abandoned) {
        // Retried, it would fail for ever and hold up its dataset's later changes (and any bulk publish of the pool)
        // behind it.
        const why = abandoned === 'pool deleted' ? 'its identity pool was deleted' : 'its stream is gone and the pool streams elsewhere now';
        this.logger.warn({ outboxId: entry.outboxId, partitionKey: entry.partitionKey, error: failure.error }, `stream change dropped: ${why}`);
        await this.store.completeOutbox([entry.outboxId]);
        continue;
      }
      this.logger.warn({ outboxId: entry.outboxId, partitionKey: entry.partitionKey, attempts: entry.attempts + 1, error: failure.error }, 'stream delivery failed; will retry');
      if (entry.attempts + 1 >= MAX_BULK_ATTEMPTS) {
        const reason = `Delivery to the stream failed ${MAX_BULK_ATTEMPTS} times: ${failure.error}`;
        if (entry.bulkPoolId) {
          await this.bulk.fail(entry.bulkPoolId, reason);
          continue;
        }
        // A change's entry is kept and retried (changes are delivered at least once), but a bulk publish of its pool
        // would wait behind it for as long as it fails: that job fails now (nothing happens when none is running).
        await this.bulk.fail((entry.payload as StreamPayload).record.identityPoolId, reason);
      }
      await this.store.retryOutbox(entry.outboxId, Date.now() + retryDelayMs(entry.attempts), failure.error);
    }
  }
}
