// Prometheus metrics (prom-client) on GET /metrics: requests and latency by operation and status,
// conflicts, limit rejections, outbox backlog, open live streams.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/store.js';
import { sharedFor } from './shared-answer.js';

/** How long one reading of the outbox backlog serves the scrapes that follow. */
const BACKLOG_READ_INTERVAL_MS = 5_000;
/**
 * Pages rendered per second at most; the scrapes beyond get the last one. /metrics needs no credentials, and rendering
 * the registry (about 11 KB) costs about 1.6 ms of the event loop: 128 connections scraping it without pause held API
 * requests for up to 7 s (20 renderings a second take 3 % of the CPU). A monitor scrapes every few seconds and always
 * gets a fresh page.
 */
const RENDERS_PER_SECOND = 20;

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'cognisync_requests_total', help: 'API requests by operation and HTTP status', labelNames: ['operation', 'status'] as const, registers: [this.registry] });
  private readonly latency = new Histogram({
    name: 'cognisync_request_duration_seconds',
    help: 'API request latency by operation',
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly conflicts = new Counter({ name: 'cognisync_conflicts_total', help: 'UpdateRecords refused with ResourceConflictException', registers: [this.registry] });
  private readonly rejections = new Counter({ name: 'cognisync_limit_rejections_total', help: 'Requests refused by a limit', labelNames: ['error'] as const, registers: [this.registry] });

  constructor(store: Store, liveStreams: () => number) {
    collectDefaultMetrics({ register: this.registry, prefix: 'cognisync_' });
    // The outbox gauges read the store once for both, and at most once per BACKLOG_READ_INTERVAL_MS: /metrics needs no
    // credentials, and a flood of scrapes during a large backlog (when the metrics matter most) kept the SQLite
    // server's one thread counting the outbox, stalling every API request for seconds.
    const backlog = sharedFor(BACKLOG_READ_INTERVAL_MS, () => store.outboxBacklog());
    // While the store cannot be read the outbox gauges are NaN (unknown, not 0), and every other metric is still
    // served (a failing collect would fail the whole page).
    new Gauge({
      name: 'cognisync_outbox_backlog',
      help: 'Outbox entries not yet delivered (stream records, notifications, bulk publish steps)',
      registers: [this.registry],
      async collect() {
        try {
          this.set((await backlog()).pending);
        } catch {
          this.set(Number.NaN);
        }
      },
    });
    new Gauge({
      name: 'cognisync_outbox_oldest_age_seconds',
      help: 'Age of the oldest undelivered outbox entry',
      registers: [this.registry],
      async collect() {
        try {
          const oldest = (await backlog()).oldestCreatedAt;
          this.set(oldest === undefined ? 0 : (Date.now() - oldest) / 1000);
        } catch {
          this.set(Number.NaN);
        }
      },
    });
    new Gauge({ name: 'cognisync_live_streams', help: 'Open live streams', registers: [this.registry], collect() { this.set(liveStreams()); } });
  }

  observe(operation: string | undefined, status: number, errorCode: string | undefined, seconds: number): void {
    const name = operation ?? 'unknown';
    this.requests.inc({ operation: name, status: String(status) });
    this.latency.observe({ operation: name }, seconds);
    if (errorCode === 'ResourceConflictException') this.conflicts.inc();
    if (errorCode === 'TooManyRequestsException' || errorCode === 'LimitExceededException' || errorCode === 'RequestEntityTooLargeException') this.rejections.inc({ error: errorCode });
  }

  /** The last page rendered, and whether its rendering is still under way (scrapes meanwhile share it). */
  private page: { body: Promise<string>; rendering: boolean } | undefined;
  private second = { start: 0, renders: 0 };

  /** The page: fresh, unless RENDERS_PER_SECOND were rendered in the last second or one is being rendered now. */
  async render(): Promise<{ contentType: string; body: string }> {
    const now = Date.now();
    if (now - this.second.start >= 1000) this.second = { start: now, renders: 0 };
    if (!this.page || (!this.page.rendering && this.second.renders < RENDERS_PER_SECOND)) {
      this.second.renders++;
      // prom-client writes NaN as `Nan`; the text format's is `NaN` (Prometheus reads either, stricter parsers only that).
      const page = { body: this.registry.metrics().then((text) => text.replace(/ Nan$/gm, ' NaN')), rendering: true };
      this.page = page;
      page.body.then(
        () => (page.rendering = false),
        // A failed rendering is not kept for the next scrapes.
        () => {
          if (this.page === page) this.page = undefined;
        },
      );
    }
    return { contentType: this.registry.contentType, body: await this.page.body };
  }
}
