// /metrics while the store cannot be read (every other metric is still served, the outbox gauges NaN), and how often a
// flood of scrapes reads the store.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../store/store.js';
import { Metrics } from './metrics.js';

test('the outbox gauges are NaN while the store fails (written as the text format spells it); the page is still rendered', async (t) => {
  t.mock.timers.enable({ apis: ['Date'] });
  let down = true;
  const store = { outboxBacklog: async () => (down ? Promise.reject(new Error('connect ECONNREFUSED')) : { pending: 3, oldestCreatedAt: Date.now() - 2000 }) } as unknown as Store;
  const metrics = new Metrics(store, () => 1);
  metrics.observe('ListRecords', 200, undefined, 0.001);
  const during = (await metrics.render()).body;
  assert.match(during, /cognisync_requests_total\{operation="ListRecords",status="200"\} 1/);
  assert.match(during, /cognisync_live_streams 1/);
  assert.match(during, /^cognisync_outbox_backlog NaN$/m, 'unknown, not 0');
  assert.match(during, /^cognisync_outbox_oldest_age_seconds NaN$/m);
  down = false;
  t.mock.timers.tick(5_000);
  const after = (await metrics.render()).body;
  assert.match(after, /^cognisync_outbox_backlog 3$/m);
  assert.match(after, /^cognisync_outbox_oldest_age_seconds 2$/m);
});

test('scrapes read the outbox backlog once for both gauges, and at most once every 5 s however many come', async (t) => {
  t.mock.timers.enable({ apis: ['Date'] });
  let reads = 0;
  const store = { outboxBacklog: async () => ({ pending: ++reads, oldestCreatedAt: undefined }) } as unknown as Store;
  const metrics = new Metrics(store, () => 0);
  const pages = await Promise.all(Array.from({ length: 50 }, () => metrics.render()));
  for (let i = 0; i < 20; i++) {
    t.mock.timers.tick(200);
    pages.push(await metrics.render());
  }
  assert.equal(reads, 1);
  assert.ok(pages.every((page) => /^cognisync_outbox_backlog 1$/m.test(page.body)));
  t.mock.timers.tick(1_000);
  assert.match((await metrics.render()).body, /^cognisync_outbox_backlog 2$/m);
  assert.equal(reads, 2);
});

test('concurrent scrapes share one rendering; beyond 20 renderings a second, scrapes get the last page', async (t) => {
  t.mock.timers.enable({ apis: ['Date'] });
  const metrics = new Metrics({ outboxBacklog: async () => ({ pending: 0, oldestCreatedAt: undefined }) } as unknown as Store, () => 0);
  let renders = 0;
  const render = metrics.registry.metrics.bind(metrics.registry);
  metrics.registry.metrics = () => (renders++, render());
  const requests = async () => Number(/cognisync_requests_total\{operation="ListRecords",status="200"\} (\d+)$/m.exec((await metrics.render()).body)?.[1]);
  metrics.observe('ListRecords', 200, undefined, 0.001);
  await Promise.all(Array.from({ length: 20 }, () => metrics.render()));
  assert.equal(renders, 1);
  // A scrape after a request sees it, 19 more times this second.
  for (let n = 2; n <= 20; n++) {
    metrics.observe('ListRecords', 200, undefined, 0.001);
    assert.equal(await requests(), n);
  }
  metrics.observe('ListRecords', 200, undefined, 0.001);
  for (let i = 0; i < 50; i++) assert.equal(await requests(), 20, 'the last page');
  assert.equal(renders, 20);
  t.mock.timers.tick(1000);
  assert.equal(await requests(), 21);
  assert.equal(renders, 21);
});
