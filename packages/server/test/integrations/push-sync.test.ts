// Push sync through a local SNS API (awsQuery wire format): every subscribed device but the writer gets one
// silent notification with AWS's push-sync keys; a disabled endpoint unregisters the device.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import {
  DeleteDatasetCommand, ListRecordsCommand, RegisterDeviceCommand, SetIdentityPoolConfigurationCommand, SubscribeToDatasetCommand, UnsubscribeFromDatasetCommand,
  UpdateRecordsCommand,
} from '@aws-sdk/client-cognito-sync';
import { identityClient, identityCredentials, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

interface SnsCall {
  action: string;
  params: URLSearchParams;
}

let sns: Server;
let snsEndpoint: string;
const calls: SnsCall[] = [];
let server: ServerProcess;

const xml = (action: string, result: string) =>
  `<${action}Response xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></${action}Response>`;

before(async () => {
  sns = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const action = params.get('Action')!;
    calls.push({ action, params });
    res.setHeader('content-type', 'text/xml');
    if (action === 'CreatePlatformEndpoint') {
      const arn = `${params.get('PlatformApplicationArn')!.replace(':app/', ':endpoint/')}/${encodeURIComponent(params.get('Token')!)}`;
      res.end(xml(action, `<EndpointArn>${arn}</EndpointArn>`));
    } else if (action === 'Publish' && params.get('TargetArn')!.endsWith('/dead-token')) {
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
  server = await startServer({ env: { COGNISYNC_SNS_ENDPOINT: snsEndpoint, AWS_ACCESS_KEY_ID: 'AKIDSNS', AWS_SECRET_ACCESS_KEY: 'sns-secret', AWS_REGION: 'us-east-1' } });
});
after(async () => {
  await server.stop();
  await new Promise<void>((resolve) => sns.close(() => resolve()));
});

async function publishes(count: number, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (calls.filter((c) => c.action === 'Publish').length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return calls.filter((c) => c.action === 'Publish');
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

test('a disabled endpoint (dead token) unregisters the device', async () => {
  const poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'push-dead', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  await syncClient(server.endpoint).send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: { ApplicationArns: ['arn:aws:sns:us-east-1:123456789012:app/GCM/app'] } }));
  const user = await identityCredentials(server.endpoint, poolId);
  const client = syncClient(server.endpoint, user.credentials);
  const key = { IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'feed' };
  const dead = (await client.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: user.identityId, Platform: 'GCM', Token: 'dead-token' }))).DeviceId!;
  await client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: dead }));
  calls.length = 0;
  const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
  await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] }));
  await publishes(1);
  let error;
  for (let i = 0; i < 50; i++) {
    error = await rejection(() => client.send(new SubscribeToDatasetCommand({ ...key, DeviceId: dead }))).catch(() => undefined);
    if (error) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(error?.name, 'ResourceNotFoundException', 'the device is gone');
});
