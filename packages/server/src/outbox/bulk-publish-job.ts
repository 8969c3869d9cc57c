// The BulkPublish job, run from the outbox so it survives restarts: `bulk-publish` walks the pool's datasets
// a page at a time, turning each into `stream` entries (tagged with the pool); `bulk-finish` waits until
// those are delivered and marks the job SUCCEEDED. A stream entry that keeps failing fails the job: one of the job's,
// or a change's entry of the same pool, which holds back the job's entries queued behind it in its dataset's partition.
import type { BulkPublishState } from '../core/bulk-publish.js';
import type { ClaimedOutboxEntry, DatasetKey, OutboxEntry, Store } from '../store/store.js';
import { streamEntries, type BulkPublishPayload } from './entries.js';

/**
 * How many datasets each read of a step covers: a step that lost the race against a write reads fewer, down to one
 * dataset, whose read-and-queue takes about a millisecond, so a pool with busy datasets still gets through. After
 * the last, the entry is retried later with backoff, and after MAX_BULK_ATTEMPTS of those the job fails.
 */
const STEP_SIZES = [25, 25, 5, 1, 1];
const FINISH_POLL_MS = 200;
/** A bulk stream entry that failed this many times fails the whole bulk publish. */
export const MAX_BULK_ATTEMPTS = 6;

export class BulkPublishJob {
  constructor(private readonly store: Store) {}

  /**
   * One step of the walk: the next page of datasets becomes stream entries, plus the next step. The snapshots are
   * queued only if no dataset changed since it was read (Store.advanceOutbox): a change committed in between
   * would otherwise be streamed before the older snapshot, and a consumer replaying the stream would end on stale
   * data. A step that loses that race reads again.
   */
  async step(entry: ClaimedOutboxEntry, now: number): Promise<void> {
    for (const size of STEP_SIZES) if (await this.tryStep(entry, now, size)) return;
    throw new Error(`the pool's datasets kept changing during ${STEP_SIZES.length} reads`);
  }

  private async tryStep(entry: ClaimedOutboxEntry, now: number, size: number): Promise<boolean> {
    const job = entry.payload as BulkPublishPayload;
    const datasets = await this.store.listPoolDatasets(job.identityPoolId, job.after, size);
    const next: OutboxEntry[] = [];
    const unchanged: Array<DatasetKey & { syncCount: number }> = [];
    for (const dataset of datasets) {
      const page = await this.store.listRecords(dataset, 0, undefined, Number.MAX_SAFE_INTEGER);
      if (!page.dataset) continue;
      unchanged.push({ identityPoolId: dataset.identityPoolId, identityId: dataset.identityId, datasetName: dataset.datasetName, syncCount: page.dataset.syncCount });
      const entries = streamEntries({ streamName: job.streamName }, dataset, 'replace', page.records, page.dataset.syncCount, page.dataset.lastModifiedDate);
      next.push(...entries.map((e) => ({ ...e, bulkPoolId: job.identityPoolId })));
    }
    const last = datasets[datasets.length - 1];
    next.push(
      last && datasets.length === size
        ? { kind: 'bulk-publish', partitionKey: entry.partitionKey, payload: { ...job, after: { identityId: last.identityId, datasetName: last.datasetName } }, bulkPoolId: job.identityPoolId }
        : { kind: 'bulk-finish', partitionKey: entry.partitionKey, payload: { identityPoolId: job.identityPoolId, streamName: job.streamName }, bulkPoolId: job.identityPoolId },
    );
    return this.store.advanceOutbox(entry.outboxId, next, now, unchanged);
  }

  /** SUCCEEDED once every stream entry of the job is delivered; until then, look again shortly. */
  async finish(entry: ClaimedOutboxEntry, now: number): Promise<void> {
    const job = entry.payload as BulkPublishPayload;
    if ((await this.store.countBulkOutbox(job.identityPoolId, 'stream')) > 0) {
      await this.store.retryOutbox(entry.outboxId, now + FINISH_POLL_MS);
      return;
    }
    const settings = await this.store.getPoolSyncSettings(job.identityPoolId);
    // No entries left can also mean fail() dropped them while this entry was claimed: a FAILED job stays FAILED.
    if (settings?.bulkPublish.status === 'IN_PROGRESS') {
      await this.store.setBulkPublishState(job.identityPoolId, { ...settings.bulkPublish, status: 'SUCCEEDED', completeTime: now });
    }
    await this.store.completeOutbox([entry.outboxId]);
  }

  /**
   * Gives up on the pool's bulk publish, if one is in progress: FAILED with the reason, then its remaining entries
   * dropped (in that order, so that a `bulk-finish` counting no entries left already reads FAILED).
   */
  async fail(identityPoolId: string, reason: string): Promise<void> {
    const settings = await this.store.getPoolSyncSettings(identityPoolId);
    if (settings?.bulkPublish.status === 'IN_PROGRESS') {
      const failed: BulkPublishState = { status: 'FAILED', ...(settings.bulkPublish.startTime !== undefined ? { startTime: settings.bulkPublish.startTime } : {}), failureMessage: reason };
      await this.store.setBulkPublishState(identityPoolId, failed);
    }
    await this.store.dropBulkOutbox(identityPoolId);
  }
}
