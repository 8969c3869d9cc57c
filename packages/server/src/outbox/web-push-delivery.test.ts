// Which WEB_PUSH device tokens are taken: https endpoints of the configured push services, with a browser's keys.
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DEFAULT_WEB_PUSH_HOSTS } from '../config.js';
import { checkSubscription } from './web-push-delivery.js';

const browser = createECDH('prime256v1');
browser.generateKeys();
const keys = { p256dh: browser.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
const token = (endpoint: string, k: object = keys) => JSON.stringify({ endpoint, keys: k });

test('the browsers\' push services and their subdomains are taken by default; anything else is refused with the reason', () => {
  for (const endpoint of ['https://fcm.googleapis.com/fcm/send/abc', 'https://updates.push.services.mozilla.com/wpush/v2/x', 'https://web.push.apple.com/QGx', 'https://wns2-by3p.notify.windows.com/w/?token=x']) {
    assert.equal(typeof checkSubscription(token(endpoint), DEFAULT_WEB_PUSH_HOSTS), 'object', endpoint);
  }
  for (const [endpoint, reason] of [
    ['https://127.0.0.1/x', /^Push service 127\.0\.0\.1 is not one/],
    ['https://metadata.google.internal/x', /not one this server sends to/],
    ['https://fcm.googleapis.com.attacker.example/x', /not one this server sends to/],
    ['https://evilfcm.googleapis.com/x', /evilfcm\.googleapis\.com is not one/],
    ['http://fcm.googleapis.com/x', /https endpoint/],
    ['https://user:pass@fcm.googleapis.com/x', /https endpoint/],
    ['not a url', /https endpoint/],
    // Hosts the legacy url.parse web-push sends with would read as another host (localhost, 127.0.0.1).
    ['https://localhost{.fcm.googleapis.com/x', /is not a host name/],
    ['https://127.0.0.1;.push.apple.com/x', /is not a host name/],
    ["https://127.0.0.1'.notify.windows.com/x", /is not a host name/],
  ] as const) {
    assert.match(String(checkSubscription(token(endpoint), DEFAULT_WEB_PUSH_HOSTS)), reason, endpoint);
  }
  assert.equal(typeof checkSubscription(token('https://127.0.0.1:8443/x'), ['*']), 'object', '* takes any host');
});

test('the keys must be a P-256 public key and a 16-byte secret; the token JSON', () => {
  const endpoint = 'https://fcm.googleapis.com/fcm/send/abc';
  for (const bad of [{ p256dh: 'a', auth: keys.auth }, { p256dh: keys.p256dh, auth: randomBytes(8).toString('base64url') }, { p256dh: Buffer.alloc(65, 2).toString('base64url'), auth: keys.auth }, {}]) {
    assert.match(String(checkSubscription(token(endpoint, bad), DEFAULT_WEB_PUSH_HOSTS)), /P-256 public key \(65 bytes\), auth 16 bytes/);
  }
  assert.match(String(checkSubscription('{', DEFAULT_WEB_PUSH_HOSTS)), /must be the PushSubscription JSON/);
  assert.match(String(checkSubscription('null', DEFAULT_WEB_PUSH_HOSTS)), /https endpoint/);
});
