// Web Push for browsers (a cognisync extension; AWS never offered push for JavaScript): standard VAPID
// (RFC 8292) and aes128gcm payload encryption (RFC 8291) through the `web-push` package. The VAPID key pair
// is generated once, kept in the database sealed under the master key; its public half is served at
// GET /webpush/vapid-public-key for `pushManager.subscribe({ applicationServerKey })`.
import webpush from 'web-push';
import { seal, unseal } from '../auth/sealing.js';
import type { ClaimedOutboxEntry, Store } from '../store/store.js';
import type { PushPayload } from './entries.js';
import type { PushOutcome } from './sns-delivery.js';

export const WEB_PUSH_PLATFORM = 'WEB_PUSH';

export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** Parses a RegisterDevice Token for WEB_PUSH: the browser's PushSubscription as JSON. */
export function parseSubscription(token: string): WebPushSubscription | undefined {
  try {
    const value = JSON.parse(token) as WebPushSubscription;
    // Push services are always https (web-push speaks nothing else).
    if (typeof value?.endpoint !== 'string' || !/^https:\/\//.test(value.endpoint)) return undefined;
    if (typeof value.keys?.p256dh !== 'string' || typeof value.keys.auth !== 'string') return undefined;
    return value;
  } catch {
    return undefined;
  }
}

export class WebPushDelivery {
  private constructor(
    readonly publicKey: string,
    private readonly privateKey: string,
    private readonly subject: string,
    private readonly timeoutMs: number,
  ) {}

  static async load(store: Store, masterKey: Buffer, subject: string, timeoutMs = 10_000): Promise<WebPushDelivery> {
    const generated = webpush.generateVAPIDKeys();
    const stored = await store.getOrCreateSetting('vapid-keys', JSON.stringify({ publicKey: generated.publicKey, privateKey: seal(masterKey, 'vapid-private-key', generated.privateKey) }));
    const keys = JSON.parse(stored) as { publicKey: string; privateKey: string };
    return new WebPushDelivery(keys.publicKey, unseal(masterKey, 'vapid-private-key', keys.privateKey), subject, timeoutMs);
  }

  async deliverOne(entry: ClaimedOutboxEntry): Promise<PushOutcome> {
    const payload = entry.payload as PushPayload;
    const subscription = parseSubscription(payload.token);
    if (!subscription) return { outboxId: entry.outboxId, result: 'dead-token', payload };
    try {
      await webpush.sendNotification(subscription, JSON.stringify(payload.message), {
        vapidDetails: { subject: this.subject, publicKey: this.publicKey, privateKey: this.privateKey },
        TTL: 3600,
        timeout: this.timeoutMs,
      });
      return { outboxId: entry.outboxId, result: 'delivered' };
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      // 404/410: the browser unsubscribed or the subscription expired.
      if (status === 404 || status === 410) return { outboxId: entry.outboxId, result: 'dead-token', payload };
      return { outboxId: entry.outboxId, result: 'failed', error: `web push ${status ?? ''}: ${(error as Error).message}` };
    }
  }
}
