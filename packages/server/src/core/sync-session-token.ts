// SyncSessionTokens: opaque, HMAC-signed proofs that a ListRecords for one identity's dataset came
// first. They carry no server state, so any server process sharing the secret accepts them.
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { InvalidParameterException } from '../errors.js';
import type { DatasetKey } from '../store/store.js';

interface TokenBody {
  p: string;
  i: string;
  d: string;
  /** Issue time, epoch ms. */
  t: number;
  /** The dataset SyncCount the issuing ListRecords answered (absent in tokens issued before 2026-12-07). */
  c?: number;
}

export class SyncSessionTokens {
  /** A KeyObject: an HMAC takes it without preparing the key again on every token. */
  private readonly secret: KeyObject;

  constructor(
    secret: Buffer,
    private readonly ttlMs: number,
  ) {
    this.secret = createSecretKey(secret);
  }

  issue(key: DatasetKey, now: number, datasetSyncCount: number): string {
    const body: TokenBody = { p: key.identityPoolId, i: key.identityId, d: key.datasetName, t: now, c: datasetSyncCount };
    const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  /**
   * Throws InvalidParameterException unless the token was issued by us, for this dataset, and is still fresh; returns
   * the dataset SyncCount it was issued at (undefined for a token from before that was recorded).
   */
  verify(token: string, key: DatasetKey, now: number): number | undefined {
    const [payload, mac, extra] = token.split('.');
    // Compare byte lengths, not string lengths: timingSafeEqual throws on buffers of different sizes.
    const given = Buffer.from(mac ?? '');
    const expected = Buffer.from(payload ? this.mac(payload) : '');
    if (!payload || !mac || extra !== undefined || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new InvalidParameterException('Invalid SyncSessionToken');
    }
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenBody;
    if (body.p !== key.identityPoolId || body.i !== key.identityId || body.d !== key.datasetName) {
      throw new InvalidParameterException('SyncSessionToken was issued for a different identity or dataset');
    }
    if (now - body.t > this.ttlMs) throw new InvalidParameterException('SyncSessionToken has expired; call ListRecords again');
    return typeof body.c === 'number' ? body.c : undefined;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}
