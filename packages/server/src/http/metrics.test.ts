// /metrics while the store cannot be read: every other metric is still served, the outbox gauges NaN.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../store/store.js';
import { Metrics } from './metrics.js';

test('the outbox gauges are NaN while the store fails; the page is still rendered', async () => {
  let down = true;
  const store = { outboxBacklog: async () => (down ? Promise.reject(new Error('connect ECONNREFUSED')) : { pending: 3, oldestCreatedAt: Date.now() - 2000 }) } as unknown as Store;
  const metrics = new Metrics(store, () => 1);
  metrics.observe('ListRecords', 200, undefined, 0.001);
  const during = (await metrics.render()).body;
  assert.match(during, /cognisync_requests_total\{operation="ListRecords",status="200"\} 1/);
  assert.match(during, /cognisync_live_streams 1/);
  assert.match(during, /^cognisync_outbox_backlog NaN$/im, 'unknown, not 0 (prom-client writes it Nan, which Prometheus reads)');
  down = false;
  assert.match((await metrics.render()).body, /^cognisync_outbox_backlog 3$/m);
});
