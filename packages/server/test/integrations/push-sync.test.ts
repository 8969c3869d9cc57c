// Push sync through a local SNS API (awsQuery wire format): every subscribed device but the writer gets one
// silent notification with AWS's push-sync keys; a disabled endpoint unregisters the device.
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import {
  DeleteDatasetCommand, ListRecordsCommand, RegisterDeviceCommand, SetIdentityPoolConfigurationCommand, SubscribeToDatasetCommand, UnsubscribeFromDatasetCommand,
  UpdateRecordsCommand,
} from '@aws-sdk/client-cognito-sync';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { identityClient, identityCredentials, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

const require = createRequire(import.meta.url);
const ece = require('http_ece') as { decrypt(body: Buffer, options: object): Buffer };

interface SnsCall {
  action: string;
  params: URLSearchParams;
}

let sns: Server;
let snsEndpoint: string;
const calls: SnsCall[] = [];
/** While set, the fake SNS fails every Publish. */
let publishFailing = false;
/** Calls for `slow-token-*` devices under way now, and the most at once. */
const slowCalls = { now: 0, most: 0 };
/** Publish calls to the endpoint of `hanging-token`, left unanswered while `hangingOn`; then it is a dead token. */
const hanging: import('node:http').ServerResponse[] = [];
let hangingOn = true;
/** Ends a test's hanging calls; the notifications' next tries find a dead token and unregister their devices. */
function stopHanging() {
  hangingOn = false;
  for (const res of hanging.splice(0)) res.destroy();
}
/** The fake SNS's endpoints: ARN → the CustomUserData they were created with. */
const endpointAttributes = new Map<string, string>();
let server: ServerProcess;
/** A self-signed certificate for 127.0.0.1 (push services are https-only); the server trusts it via NODE_EXTRA_CA_CERTS. */
const certDir = mkdtempSync(join(tmpdir(), 'cognisync-push-tls-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
  '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });

const xml = (action: string, result: string) =>
  `<${action}Response xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></${action}Response>`;

before(async () => {
  sns = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const action = params.get('Action')!;
    calls.push({ action, params });
    if (/slow-token/.test(`${params.get('Token')}${params.get('TargetArn')}${params.get('EndpointArn')}`)) {
      // A slow SNS: each call answered after 200 ms; how many are under way at once is recorded.
      slowCalls.now++;
      slowCalls.most = Math.max(slowCalls.most, slowCalls.now);
      await new Promise((r) => setTimeout(r, 200));
      slowCalls.now--;
    }
    res.setHeader('content-type', 'text/xml');
    if (action === 'CreatePlatformEndpoint') {
      // As SNS: idempotent only for the same token with the same attributes.
      const arn = `${params.get('PlatformApplicationArn')!.replace(':app/', ':endpoint/')}/${encodeURIComponent(params.get('Token')!)}`;
      const attributes = params.get('CustomUserData') ?? '';
      const existing = endpointAttributes.get(arn);
      if (existing !== undefined && existing !== attributes) {
        res.statusCode = 400;
        return void res.end(`<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>Invalid parameter: Token Reason: Endpoint ${arn} already exists with the same Token, but different attributes.</Message></Error><RequestId>r</RequestId></ErrorResponse>`);
      }
      endpointAttributes.set(arn, attributes);
      res.end(xml(action, `<EndpointArn>${arn}</EndpointArn>`));
    } else if (action === 'SetEndpointAttributes') {
      res.end(xml(action, ''));
    } else if (action === 'Publish' && publishFailing) {
      res.statusCode = 500;
      res.end('<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Receiver</Type><Code>InternalError</Code><Message>down</Message></Error><RequestId>r</RequestId></ErrorResponse>');
    } else if (action === 'Publish' && params.get('TargetArn')!.endsWith('/hanging-token') && hangingOn) {
      // Never answered (until the server gives up on the call and closes it).
      hanging.push(res);
    } else if (action === 'Publish' && /\/(dead|hanging)-token$/.test(params.get('TargetArn')!)) {
      res.statusCode = 400;
      res.end('<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>EndpointDisabled</Code><Message>Endpoint is disabled</Message></Error><RequestId>r</RequestId></ErrorResponse>');
    } else if (action === 'Publish') {
      res.end(xml(action, `<MessageId>m${calls.length}</MessageId>`));
    } else {
      res.statusCode = 400;
      res.end('<ErrorResponse><Error><Code>InvalidAction</Code><Message>no</Message></Error></ErrorResponse>');
    }
  });
  await new Promise<void>((resolve) => sns.listen(0, '127.0.0.1', resolve));
  snsEndpoint = `http://127.0.0.1:${(sns.address() as AddressInfo).port}`;
  server = await startServer({ env: { COGNISYNC_SNS_ENDPOINT: snsEndpoint, AWS_ACCESS_KEY_ID: 'AKIDSNS', AWS_SECRET_ACCESS_KEY: 'sns-secret', AWS_REGION: 'us-east-1', NODE_EXTRA_CA_CERTS: join(certDir, 'cert.pem'), COGNISYNC_WEB_PUSH_HOSTS: '127.0.0.1' } });
});
after(async () => {
  await server.stop();
  await new Promise<void>((resolve) => sns.close(() => resolve()));
  rmSync(certDir, { recursive: true, force: true });
});

async function publishes(count: number, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (calls.filter((c) => c.action === 'Publish').length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return calls.filter((c) => c.action === 'Publish');
}

/**
 * A new pool pushing through the SNS application `app`, an identity of it, and one GCM device with `token` subscribed
 * to `datasetName`: the identity's client, the dataset key and the device id. No SNS call made yet is left in `calls`.
 */
async function oneSubscribedDevice(app: string, token: string, datasetName: string) {
  const poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: `push-${datasetName}`, AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  await syncClient(server.endpoint).send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: { ApplicationArns: [app] } }));
  const user = await identityCredentials(server.endpoint, poolId);
  const client = syncClient(server.endpoint, user.credentials);
  const key = { IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: datasetName };
  const deviceId = (await client.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: user.identityId, Platform: 'GCM', Token: token }))).DeviceId!;
  await client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: deviceId }));
  calls.length = 0;
  return { client, key, deviceId };
}

/** One write of `key`, as a device would make it. */
async function writeOnce(client: ReturnType<typeof syncClient>, key: { IdentityPoolId: string; IdentityId: string; DatasetName: string }) {
  const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
  await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] }));
}

test('each subscribed device except the writer gets one notification with AWS’s push-sync payload', async () => {
  const poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'push', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  const gcmApp = 'arn:aws:sns:us-east-1:123456789012:app/GCM/my-android';
  const apnsApp = 'arn:aws:sns:us-east-1:123456789012:app/APNS/my-ios';
  await syncClient(server.endpoint).send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: { ApplicationArns: [gcmApp, apnsApp], RoleArn: 'arn:aws:iam::123456789012:role/push' } }));
  const user = await identityCredentials(server.endpoint, poolId);
  const client = syncClient(server.endpoint, user.credentials);
  const identity = { IdentityPoolId: poolId, IdentityId: user.identityId };
  const phone = (await client.send(new RegisterDeviceCommand({ ...identity, Platform: 'GCM', Token: 'phone-token' }))).DeviceId!;
  const tablet = (await client.send(new RegisterDeviceCommand({ ...identity, Platform: 'APNS', Token: 'tablet-token' }))).DeviceId!;
  const watch = (await client.send(new RegisterDeviceCommand({ ...identity, Platform: 'GCM', Token: 'watch-token' }))).DeviceId!;
  const key = { ...identity, DatasetName: 'news' };
  for (const deviceId of [phone, tablet, watch]) await client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: deviceId }));
  await client.send(new UnsubscribeFromDatasetCommand({ ...key, DeviceId: watch }));

  calls.length = 0;
  const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
  const written = await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, DeviceId: phone, RecordPatches: [{ Op: 'replace', Key: 'headline', Value: 'hi', SyncCount: 0 }] }));
  const published = await publishes(1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(calls.filter((c) => c.action === 'Publish').length, 1, 'only the tablet: not the writer (phone), not the unsubscribed watch');
  const endpoint = calls.find((c) => c.action === 'CreatePlatformEndpoint')!;
  assert.equal(endpoint.params.get('PlatformApplicationArn'), apnsApp);
  assert.equal(endpoint.params.get('Token'), 'tablet-token');
  assert.equal(published[0]!.params.get('MessageStructure'), 'json');
  const body = JSON.parse(published[0]!.params.get('Message')!);
  const apns = JSON.parse(body.APNS);
  assert.deepEqual(apns.aps, { 'content-available': 1 });
  assert.deepEqual(
    { source: apns.source, identityPoolId: apns.identityPoolId, identityId: apns.identityId, datasetName: apns.datasetName, syncCount: apns.syncCount },
    { source: 'cognito-sync', identityPoolId: poolId, identityId: user.identityId, datasetName: 'news', syncCount: String(written.Records![0]!.SyncCount) },
  );
  assert.deepEqual(JSON.parse(body.GCM).data.syncCount, String(written.Records![0]!.SyncCount));

  // A deletion notifies every subscriber (there is no writer device on DeleteDataset).
  calls.length = 0;
  await client.send(new DeleteDatasetCommand(key));
  const afterDelete = await publishes(2);
  assert.equal(afterDelete.length, 2);
  assert.ok(afterDelete.every((call) => JSON.parse(call.params.get('Message')!).default.includes('DatasetDeleted')));
});

test('a token whose endpoint exists with other attributes is delivered through it, and the endpoint is enabled again', async () => {
  const app = 'arn:aws:sns:us-east-1:123456789012:app/GCM/shared';
  const endpointArn = `${app.replace(':app/', ':endpoint/')}/shared-token`;
  // Made by something else (an older cognisync set CustomUserData): SNS refuses to create it again without.
  endpointAttributes.set(endpointArn, 'an-old-device-id');
  const { client, key } = await oneSubscribedDevice(app, 'shared-token', 'shared');
  await writeOnce(client, key);
  const published = await publishes(1);
  assert.equal(published[0]?.params.get('TargetArn'), endpointArn, server.stderr().slice(-2000));
  const enabled = calls.find((c) => c.action === 'SetEndpointAttributes');
  assert.equal(enabled?.params.get('EndpointArn'), endpointArn);
  assert.equal(enabled?.params.get('Attributes.entry.1.value'), 'true');
});

test('a notification still queued when its device unsubscribes is not sent', async () => {
  const { client, key, deviceId: device } = await oneSubscribedDevice('arn:aws:sns:us-east-1:123456789012:app/GCM/later', 'leaving-token', 'later');
  publishFailing = true;
  try {
    await writeOnce(client, key);
    await publishes(1);
    await client.send(new UnsubscribeFromDatasetCommand({ ...key, DeviceId: device }));
  } finally {
    publishFailing = false;
  }
  const attempts = calls.filter((c) => c.action === 'Publish').length;
  assert.ok(attempts >= 1, 'it was tried while SNS failed');
  // Retries come within 200 ms doubling: several would have passed by now.
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(calls.filter((c) => c.action === 'Publish').length, attempts, 'not sent once SNS works again');
});

test('a notification whose SNS call hangs holds up no other delivery', async () => {
  hangingOn = true;
  const stuck = await oneSubscribedDevice('arn:aws:sns:us-east-1:123456789012:app/GCM/app', 'hanging-token', 'stuck');
  await writeOnce(stuck.client, stuck.key);
  const deadline = Date.now() + 5000;
  while (hanging.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(hanging.length, 1, 'the stuck Publish is under way');
  const other = await oneSubscribedDevice('arn:aws:sns:us-east-1:123456789012:app/GCM/app', 'other-token', 'other');
  const started = Date.now();
  await writeOnce(other.client, other.key);
  // The server gives up on a call after 10 s (COGNISYNC_DELIVERY_TIMEOUT_MS); the other device's is not behind it.
  const sent = await publishes(1, 5000);
  assert.equal(sent.length, 1, 'the other device was notified while the stuck call hangs');
  assert.match(sent[0]!.params.get('TargetArn')!, /other-token$/);
  assert.ok(Date.now() - started < 5000, `notified after ${Date.now() - started} ms`);
  stopHanging();
});

test('notifications to an SNS that hangs go out at most three rounds at a time; the rest wait their turn', async () => {
  hangingOn = true;
  const devices = [];
  for (let i = 0; i < 6; i++) devices.push(await oneSubscribedDevice('arn:aws:sns:us-east-1:123456789012:app/GCM/app', 'hanging-token', `stuck-${i}`));
  for (const device of devices) {
    await writeOnce(device.client, device.key);
    await new Promise((r) => setTimeout(r, 300));
  }
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(hanging.length, 3, 'three Publish calls hang; the other three notifications were not sent into the same hole');
  stopHanging();
});

test('a backlog of notifications to a slow SNS is delivered whole, at most 48 calls at a time', { timeout: 60_000 }, async () => {
  // Two users with 31 devices each, every one subscribed to the user's dataset (fewer calls each than the identity's
  // burst of requests allows): two writes make 62 notifications at once.
  const users = [];
  for (const name of ['fanout-a', 'fanout-b']) {
    const user = await oneSubscribedDevice('arn:aws:sns:us-east-1:123456789012:app/GCM/app', `slow-token-${name}`, name);
    for (let i = 0; i < 30; i++) {
      const { DeviceId } = await user.client.send(new RegisterDeviceCommand({ IdentityPoolId: user.key.IdentityPoolId, IdentityId: user.key.IdentityId, Platform: 'GCM', Token: `slow-token-${name}-${i}` }));
      await user.client.send(new SubscribeToDatasetCommand({ ...user.key, DeviceId: DeviceId! }));
    }
    users.push(user);
  }
  calls.length = 0;
  slowCalls.most = 0;
  await Promise.all(users.map((user) => writeOnce(user.client, user.key)));
  const slowPublishes = () => calls.filter((c) => c.action === 'Publish' && /slow-token/.test(c.params.get('TargetArn')!));
  for (const deadline = Date.now() + 30_000; slowPublishes().length < 62 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  const sent = slowPublishes();
  assert.equal(new Set(sent.map((c) => c.params.get('TargetArn'))).size, 62, 'every device notified');
  assert.equal(sent.length, 62, 'once each');
  assert.ok(slowCalls.most <= 48 && slowCalls.most >= 16, `${slowCalls.most} SNS calls at once`);
});

test('a disabled endpoint (dead token) unregisters the device', async () => {
  const { client, key, deviceId: dead } = await oneSubscribedDevice('arn:aws:sns:us-east-1:123456789012:app/GCM/app', 'dead-token', 'feed');
  await writeOnce(client, key);
  await publishes(1);
  let error;
  for (let i = 0; i < 50; i++) {
    error = await rejection(() => client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: dead }))).catch(() => undefined);
    if (error) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(error?.name, 'ResourceNotFoundException', 'the device is gone');
});

test('Web Push (VAPID, aes128gcm): a browser subscription gets the notification, decryptable only with its keys', async () => {
  // A push service stand-in: records the VAPID header and the encrypted body; /gone answers 410.
  const received: { authorization: string; encoding: string; body: Buffer }[] = [];
  const pushService = createHttpsServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.url === '/gone') return void res.writeHead(410).end();
    received.push({ authorization: String(req.headers.authorization), encoding: String(req.headers['content-encoding']), body: Buffer.concat(chunks) });
    res.writeHead(201).end();
  });
  await new Promise<void>((resolve) => pushService.listen(0, '127.0.0.1', resolve));
  const pushUrl = `https://127.0.0.1:${(pushService.address() as AddressInfo).port}`;
  try {
    const browserKeys = createECDH('prime256v1');
    browserKeys.generateKeys();
    const authSecret = randomBytes(16);
    const subscription = { endpoint: `${pushUrl}/sub/1`, keys: { p256dh: browserKeys.getPublicKey().toString('base64url'), auth: authSecret.toString('base64url') } };

    const poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'webpush', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
    const user = await identityCredentials(server.endpoint, poolId);
    const client = syncClient(server.endpoint, user.credentials);
    const identity = { IdentityPoolId: poolId, IdentityId: user.identityId };
    const unconfigured = await rejection(() => client.send(new RegisterDeviceCommand({ ...identity, Platform: 'WEB_PUSH' as 'GCM', Token: JSON.stringify(subscription) })));
    assert.equal(unconfigured.name, 'InvalidConfigurationException');
    await syncClient(server.endpoint).send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: {} }));
    const badToken = await rejection(() => client.send(new RegisterDeviceCommand({ ...identity, Platform: 'WEB_PUSH' as 'GCM', Token: 'not json' })));
    assert.equal(badToken.name, 'InvalidParameterException');
    // Any identity registers devices and the server then POSTs to them: only push services (COGNISYNC_WEB_PUSH_HOSTS,
    // here this test's), and only keys a browser makes.
    for (const [token, message] of [
      [{ ...subscription, endpoint: 'https://169.254.169.254/latest/meta-data' }, /^Push service 169\.254\.169\.254 is not one this server sends to/],
      [{ ...subscription, endpoint: `http://127.0.0.1/sub/1` }, /https endpoint/],
      [{ ...subscription, keys: { p256dh: 'a', auth: subscription.keys.auth } }, /P-256 public key/],
    ] as const) {
      const refused = await rejection(() => client.send(new RegisterDeviceCommand({ ...identity, Platform: 'WEB_PUSH' as 'GCM', Token: JSON.stringify(token) })));
      assert.equal(refused.name, 'InvalidParameterException');
      assert.match(refused.message, message);
    }
    const browser = (await client.send(new RegisterDeviceCommand({ ...identity, Platform: 'WEB_PUSH' as 'GCM', Token: JSON.stringify(subscription) }))).DeviceId!;
    const gone = (await client.send(new RegisterDeviceCommand({ ...identity, Platform: 'WEB_PUSH' as 'GCM', Token: JSON.stringify({ ...subscription, endpoint: `${pushUrl}/gone` }) }))).DeviceId!;
    const key = { ...identity, DatasetName: 'prefs' };
    await client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: browser }));
    await client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: gone }));

    const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
    const written = await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'theme', Value: 'dark', SyncCount: 0 }] }));
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(received.length, 1, server.stderr().slice(-2000));
    assert.equal(received[0]!.encoding, 'aes128gcm');
    const message = JSON.parse(ece.decrypt(received[0]!.body, { version: 'aes128gcm', privateKey: browserKeys, authSecret: authSecret.toString('base64url') }).toString('utf8'));
    assert.deepEqual(message, { source: 'cognito-sync', eventType: 'DatasetUpdated', identityPoolId: poolId, identityId: user.identityId, datasetName: 'prefs', syncCount: String(written.Records![0]!.SyncCount) });

    // The VAPID token is signed by the server's key, published at /webpush/vapid-public-key.
    const { publicKey } = (await (await fetch(`${server.endpoint}/webpush/vapid-public-key`)).json()) as { publicKey: string };
    const [, token, k] = /^vapid t=([^,]+), k=(.+)$/.exec(received[0]!.authorization)!;
    assert.equal(k, publicKey);
    assert.equal(decodeProtectedHeader(token!).alg, 'ES256');
    const raw = Buffer.from(publicKey, 'base64url');
    const jwk = { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') };
    const { payload } = await jwtVerify(token!, await importJWK(jwk, 'ES256'), { audience: pushUrl });
    assert.equal(payload.sub, 'mailto:cognisync@localhost');

    // The subscription that answered 410 was unregistered.
    let error;
    for (let i = 0; i < 50 && !error; i++) {
      error = await rejection(() => client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: gone }))).catch(() => undefined);
      if (!error) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(error?.name, 'ResourceNotFoundException');
  } finally {
    await new Promise<void>((resolve) => pushService.close(() => resolve()));
  }
});
