// Web Push for browsers (a cognisync extension; AWS never offered push for JavaScript): standard VAPID
// (RFC 8292) and aes128gcm payload encryption (RFC 8291) through the `web-push` package. The VAPID key pair
// is generated once, kept in the database sealed under the master key; its public half is served at
// GET /webpush/vapid-public-key for `pushManager.subscribe({ applicationServerKey })`.
import webpush from 'web-push';
import { seal, unseal } from '../auth/sealing.js';
import { DEFAULT_WEB_PUSH_HOSTS } from '../config.js';
import type { ClaimedOutboxEntry, Store } from '../store/store.js';
import type { PushPayload } from './entries.js';
import type { PushOutcome } from './sns-delivery.js';

export const WEB_PUSH_PLATFORM = 'WEB_PUSH';

export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/**
 * Checks a RegisterDevice Token for WEB_PUSH (the browser's PushSubscription as JSON): the subscription, or why it is
 * refused. Any identity, unauthenticated ones too, registers devices, and the server then POSTs to the endpoint: an
 * endpoint anywhere would let them make it call addresses inside its own network. So the endpoint must be https on
 * one of `hosts` (`*`: any host), and the keys must be what a browser makes (a P-256 public key, a 16-byte secret).
 */
export function checkSubscription(token: string, hosts: readonly string[]): WebPushSubscription | string {
  let value: WebPushSubscription;
  try {
    value = JSON.parse(token) as WebPushSubscription;
  } catch {
    return 'A WEB_PUSH Token must be the PushSubscription JSON: {"endpoint":"https://…","keys":{"p256dh":"…","auth":"…"}}';
  }
  let endpoint: URL;
  try {
    endpoint = new URL(typeof value?.endpoint === 'string' ? value.endpoint : '');
  } catch {
    return 'A WEB_PUSH Token needs the push service\'s https endpoint';
  }
  if (endpoint.protocol !== 'https:' || endpoint.username || endpoint.password) return 'A WEB_PUSH Token needs the push service\'s https endpoint';
  const host = endpoint.hostname.toLowerCase();
  // Only plain host names and IP addresses: web-push sends with the legacy url.parse, which reads a host with
  // `{`, `;` or a quote differently (`localhost{.fcm.googleapis.com` is localhost to it).
  if (!/^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/.test(host)) return `Push service ${JSON.stringify(host)} is not a host name`;
  if (!hosts.includes('*') && !hosts.some((allowed) => host === allowed || host.endsWith(`.${allowed}`))) {
    return `Push service ${host} is not one this server sends to (COGNISYNC_WEB_PUSH_HOSTS)`;
  }
  const p256dh = typeof value.keys?.p256dh === 'string' ? Buffer.from(value.keys.p256dh, 'base64url') : undefined;
  const auth = typeof value.keys?.auth === 'string' ? Buffer.from(value.keys.auth, 'base64url') : undefined;
  if (p256dh?.length !== 65 || p256dh[0] !== 0x04 || auth?.length !== 16) {
    return 'A WEB_PUSH Token\'s keys must be the browser\'s: p256dh a P-256 public key (65 bytes), auth 16 bytes, both base64url';
  }
  // The URL as checked, not as given.
  return { endpoint: endpoint.href, keys: { p256dh: value.keys.p256dh, auth: value.keys.auth } };
}

export class WebPushDelivery {
  private constructor(
    readonly publicKey: string,
    private readonly privateKey: string,
    private readonly subject: string,
    private readonly timeoutMs: number,
    private readonly hosts: readonly string[],
  ) {}

  static async load(store: Store, masterKey: Buffer, subject: string, timeoutMs = 10_000, hosts: readonly string[] = DEFAULT_WEB_PUSH_HOSTS): Promise<WebPushDelivery> {
    const generated = webpush.generateVAPIDKeys();
    const stored = await store.getOrCreateSetting('vapid-keys', JSON.stringify({ publicKey: generated.publicKey, privateKey: seal(masterKey, 'vapid-private-key', generated.privateKey) }));
    const keys = JSON.parse(stored) as { publicKey: string; privateKey: string };
    return new WebPushDelivery(keys.publicKey, unseal(masterKey, 'vapid-private-key', keys.privateKey), subject, timeoutMs, hosts);
  }

  /** The subscription a RegisterDevice Token names, or why it is refused (see checkSubscription). */
  check(token: string): WebPushSubscription | string {
    return checkSubscription(token, this.hosts);
  }

  async deliverOne(entry: ClaimedOutboxEntry): Promise<PushOutcome> {
    const payload = entry.payload as PushPayload;
    // Checked again: registered before the check existed, or before the operator narrowed the hosts.
    const subscription = this.check(payload.token);
    if (typeof subscription === 'string') return { outboxId: entry.outboxId, result: 'dead-token', payload };
    let timer: NodeJS.Timeout | undefined;
    try {
      // web-push's own timeout is the socket's idle time, and its promise never settles when the connection drops
      // after the answer's head: a deadline for the whole call, so one push service cannot stop the outbox.
      const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs)));
      await Promise.race([
        webpush.sendNotification(subscription, JSON.stringify(payload.message), {
          vapidDetails: { subject: this.subject, publicKey: this.publicKey, privateKey: this.privateKey },
          TTL: 3600,
          timeout: this.timeoutMs,
        }),
        deadline,
      ]);
      return { outboxId: entry.outboxId, result: 'delivered' };
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      // 404/410: the browser unsubscribed or the subscription expired.
      if (status === 404 || status === 410) return { outboxId: entry.outboxId, result: 'dead-token', payload };
      return { outboxId: entry.outboxId, result: 'failed', error: `web push ${status ?? ''}: ${(error as Error).message}` };
    } finally {
      clearTimeout(timer);
    }
  }
}
