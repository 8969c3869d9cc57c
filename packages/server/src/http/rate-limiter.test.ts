// Token buckets: the limit itself, and the memory a flood of distinct keys may take.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBuckets } from './rate-limiter.js';

test('a key gets its burst, then its rate', () => {
  const buckets = new TokenBuckets({ perSecond: 10, burst: 3 });
  assert.deepEqual([1, 2, 3, 4].map(() => buckets.take('k', 0)), [true, true, true, false]);
  assert.equal(buckets.take('k', 50), false);
  assert.equal(buckets.take('k', 100), true);
});

test('a flood of keys seen once is forgotten within a second or so, not a minute', () => {
  const buckets = new TokenBuckets({ perSecond: 50, burst: 100 });
  let now = 0;
  // 11,000 new keys a second for 10 s, as one client naming a random id in every unsigned call did.
  for (let second = 0; second < 10; second++) {
    for (let i = 0; i < 11_000; i++) buckets.take(`id-${second}-${i}`, (now = second * 1000 + i / 11));
  }
  assert.ok(buckets.size <= 25_000, `${buckets.size} buckets held`);
  // What is still limited stays limited: a bucket emptied now is not forgotten by the early sweeps.
  for (let i = 0; i < 100; i++) assert.equal(buckets.take('busy', now), true);
  assert.equal(buckets.take('busy', now), false);
  // A second of new keys (the early sweep runs), then 'busy' has refilled 50 of its 100 tokens, not all.
  for (let i = 0; i < 20_000; i++) buckets.take(`late-${i}`, (now += 0.0505));
  let granted = 0;
  while (buckets.take('busy', now)) granted++;
  assert.ok(granted >= 50 && granted <= 51, `${granted} granted`);
});
