// Token buckets per identity and per identity pool: requests over the rate answer TooManyRequestsException
// before any work is done. The developer's own requests are not limited (they administer the service).
import { TooManyRequestsException } from '../errors.js';

export interface RateLimit {
  /** Sustained requests per second (0 disables the limit). */
  perSecond: number;
  /** Requests that may arrive at once after a quiet period. */
  burst: number;
}

/**
 * Buckets beyond which they are swept at most once a second rather than once a minute. Unsigned calls (GetId,
 * GetCredentialsForIdentity) are counted against the ids they name before those are checked, so a client naming a
 * new id in every call made a bucket each time: 277k of them in 25 s grew the heap by 80 MB until the minute's sweep.
 * A bucket one request took refills within 1/perSecond s, so a sweep a second later forgets nearly all of them.
 */
const SWEEP_EARLY_ABOVE = 10_000;

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; updated: number }>();
  private lastSweep = 0;

  constructor(private readonly limit: RateLimit) {}

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string, now: number): boolean {
    if (this.limit.perSecond <= 0) return true;
    const bucket = this.buckets.get(key) ?? { tokens: this.limit.burst, updated: now };
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.updated) / 1000) * this.limit.perSecond);
    bucket.updated = now;
    this.buckets.set(key, bucket);
    if (this.buckets.size > SWEEP_EARLY_ABOVE && now - this.lastSweep >= 1000) this.sweep(now);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets buckets that have refilled completely (an idle key costs nothing). */
  sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.updated) / 1000) * this.limit.perSecond >= this.limit.burst) this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}

export class RateLimiter {
  private readonly identities: TokenBuckets;
  private readonly pools: TokenBuckets;
  private readonly sweeper: NodeJS.Timeout;

  constructor(perIdentity: RateLimit, perPool: RateLimit) {
    this.identities = new TokenBuckets(perIdentity);
    this.pools = new TokenBuckets(perPool);
    this.sweeper = setInterval(() => {
      const now = Date.now();
      this.identities.sweep(now);
      this.pools.sweep(now);
    }, 60_000).unref();
  }

  /** Throws TooManyRequestsException when the identity's or the pool's rate is exceeded. */
  check(identityPoolId: string | undefined, identityId: string | undefined, now = Date.now()): void {
    if (identityId !== undefined && !this.identities.take(identityId, now)) {
      throw new TooManyRequestsException(`Rate exceeded for identity ${identityId}`);
    }
    if (identityPoolId !== undefined && !this.pools.take(identityPoolId, now)) {
      throw new TooManyRequestsException(`Rate exceeded for identity pool ${identityPoolId}`);
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}
