// Pool-level Cognito Sync settings through the real AWS SDK v3: configuration, events, bulk publish, devices.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import {
  BulkPublishCommand, GetBulkPublishDetailsCommand, GetCognitoEventsCommand, GetIdentityPoolConfigurationCommand, RegisterDeviceCommand,
  ListRecordsCommand, SetCognitoEventsCommand, SetIdentityPoolConfigurationCommand, UpdateRecordsCommand, SubscribeToDatasetCommand, UnsubscribeFromDatasetCommand, type CognitoSyncClient,
} from '@aws-sdk/client-cognito-sync';
import { identityClient, identityCredentials, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

let server: ServerProcess;
let sync: CognitoSyncClient;

before(async () => {
  // No Kinesis here: stream deliveries fail and retry, so a bulk publish stays IN_PROGRESS long enough to observe.
  server = await startServer({
    env: {
      COGNISYNC_KINESIS_ENDPOINT: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y',
      COGNISYNC_LIMIT_DEVICES_PER_IDENTITY: '3', COGNISYNC_LIMIT_SUBSCRIPTIONS_PER_DEVICE: '2',
    },
  });
  sync = syncClient(server.endpoint);
});
after(async () => {
  await server.stop();
});

async function newPool() {
  return (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'settings', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
}

const pushSync = { ApplicationArns: ['arn:aws:sns:us-east-1:123456789012:app/GCM/my-app'], RoleArn: 'arn:aws:iam::123456789012:role/push' };
const streams = { StreamName: 'changes', RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'ENABLED' as const };

test('Set/GetIdentityPoolConfiguration store and echo PushSync and CognitoStreams, keeping what is not given', async () => {
  const poolId = await newPool();
  const empty = await sync.send(new GetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId }));
  assert.equal(empty.IdentityPoolId, poolId);
  assert.equal(empty.PushSync, undefined);
  const set = await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: pushSync }));
  assert.deepEqual(set.PushSync, pushSync);
  const both = await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: streams }));
  assert.deepEqual(both.PushSync, pushSync);
  assert.deepEqual(both.CognitoStreams, streams);
  const read = await sync.send(new GetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId }));
  assert.deepEqual({ PushSync: read.PushSync, CognitoStreams: read.CognitoStreams }, { PushSync: pushSync, CognitoStreams: streams });
});

test('SetIdentityPoolConfiguration validates ARNs and the streaming status against the model', async () => {
  const poolId = await newPool();
  const badArn = await rejection(() => sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: { ApplicationArns: ['not-an-arn'] } })));
  assert.equal(badArn.name, 'InvalidParameterException');
  assert.match(badArn.message, /pushSync\.applicationArns\.1\.member/);
  const badStatus = await rejection(() =>
    sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: { ...streams, StreamingStatus: 'ON' as 'ENABLED' } })),
  );
  assert.equal(badStatus.name, 'InvalidParameterException');
  assert.match(badStatus.message, /ENABLED, DISABLED/);
  const noStream = await rejection(() => sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: { StreamingStatus: 'ENABLED' } })));
  assert.equal(noStream.name, 'InvalidParameterException');
  assert.equal(noStream.$metadata?.httpStatusCode, 400);
  assert.equal(noStream.message, 'CognitoStreams.StreamName is required when StreamingStatus is ENABLED.');
  assert.equal((await sync.send(new GetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId }))).CognitoStreams, undefined);
  // Disabled streams need no name.
  const disabled = await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: { StreamingStatus: 'DISABLED' } }));
  assert.deepEqual(disabled.CognitoStreams, { StreamingStatus: 'DISABLED' });
  await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: { StreamingStatus: 'ENABLED', StreamName: '' } })).then(
    () => assert.fail('an empty StreamName was taken'),
    (error: Error) => assert.equal(error.name, 'InvalidParameterException'),
  );
  assert.deepEqual((await sync.send(new GetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId }))).CognitoStreams, { StreamingStatus: 'DISABLED' });
});

test('Set/GetCognitoEvents merge bindings; an empty value removes one; at most one entry; only SyncTrigger', async () => {
  const poolId = await newPool();
  assert.deepEqual((await sync.send(new GetCognitoEventsCommand({ IdentityPoolId: poolId }))).Events, {});
  await sync.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:f' } }));
  assert.deepEqual((await sync.send(new GetCognitoEventsCommand({ IdentityPoolId: poolId }))).Events, { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:f' });
  await sync.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: '' } }));
  assert.deepEqual((await sync.send(new GetCognitoEventsCommand({ IdentityPoolId: poolId }))).Events, {});
  const two = await rejection(() => sync.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: 'f', Other: 'g' } })));
  assert.equal(two.name, 'InvalidParameterException');
  assert.match(two.message, /length less than or equal to 1/);
  const unknown = await rejection(() => sync.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { PreSync: 'f' } })));
  assert.equal(unknown.name, 'InvalidParameterException');
  // A webhook (cognisync's alternative to an ARN) must be a URL without a user name or password.
  const withPassword = await rejection(() => sync.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: 'https://user:secret@hooks.example.com/sync' } })));
  assert.equal(withPassword.name, 'InvalidParameterException');
  assert.doesNotMatch(withPassword.message, /secret/);
  const broken = await rejection(() => sync.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: 'http://' } })));
  assert.equal(broken.message, 'The SyncTrigger webhook is not a valid URL.');
  assert.deepEqual((await sync.send(new GetCognitoEventsCommand({ IdentityPoolId: poolId }))).Events, {});
  await sync.send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: 'https://hooks.example.com/sync?team=a' } }));
});

test('BulkPublish needs enabled streams, runs once at a time, and GetBulkPublishDetails reports it', async () => {
  const poolId = await newPool();
  const notStarted = await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }));
  assert.equal(notStarted.BulkPublishStatus, 'NOT_STARTED');
  assert.equal(notStarted.BulkPublishStartTime, undefined);
  const disabled = await rejection(() => sync.send(new BulkPublishCommand({ IdentityPoolId: poolId })));
  assert.equal(disabled.name, 'InvalidConfigurationException');
  await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: streams }));
  const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'd' };
  const { SyncSessionToken } = await sync.send(new ListRecordsCommand(key));
  await sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] }));
  const started = await sync.send(new BulkPublishCommand({ IdentityPoolId: poolId }));
  assert.equal(started.IdentityPoolId, poolId);
  const details = await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }));
  assert.equal(details.BulkPublishStatus, 'IN_PROGRESS');
  assert.ok(Math.abs(details.BulkPublishStartTime!.getTime() - Date.now()) < 60_000);
  const duplicate = await rejection(() => sync.send(new BulkPublishCommand({ IdentityPoolId: poolId })));
  assert.equal(duplicate.name, 'DuplicateRequestException');
  assert.equal(duplicate.$metadata?.httpStatusCode, 400);
});

test('RegisterDevice needs PushSync for the platform and returns a stable DeviceId; Subscribe/Unsubscribe need a registered device', async () => {
  const poolId = await newPool();
  const user = await identityCredentials(server.endpoint, poolId);
  const device = syncClient(server.endpoint, user.credentials);
  const identityId = user.identityId;
  const unconfigured = await rejection(() => device.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: identityId, Platform: 'GCM', Token: 't1' })));
  assert.equal(unconfigured.name, 'InvalidConfigurationException');
  assert.equal(unconfigured.$metadata?.httpStatusCode, 400);
  await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: pushSync }));
  const wrongPlatform = await rejection(() => device.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: identityId, Platform: 'APNS', Token: 't1' })));
  assert.equal(wrongPlatform.name, 'InvalidConfigurationException');
  const badPlatform = await rejection(() => device.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: identityId, Platform: 'WP8' as 'GCM', Token: 't1' })));
  assert.equal(badPlatform.name, 'InvalidParameterException');
  const developer = await rejection(() => sync.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: identityId, Platform: 'GCM', Token: 't1' })));
  assert.equal(developer.name, 'NotAuthorizedException', 'RegisterDevice is for identity credentials only');
  assert.equal(developer.$metadata?.httpStatusCode, 403);

  const first = await device.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: identityId, Platform: 'GCM', Token: 't1' }));
  const again = await device.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: identityId, Platform: 'GCM', Token: 't1' }));
  const other = await device.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: identityId, Platform: 'GCM', Token: 't2' }));
  assert.ok(first.DeviceId);
  assert.equal(again.DeviceId, first.DeviceId);
  assert.notEqual(other.DeviceId, first.DeviceId);

  const key = { IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'news' };
  const subscribed = await device.send(new SubscribeToDatasetCommand({ ...key, DeviceId: first.DeviceId! }));
  assert.deepEqual(Object.keys(subscribed).filter((k) => k !== '$metadata'), []);
  await device.send(new SubscribeToDatasetCommand({ ...key, DeviceId: first.DeviceId! }));
  await device.send(new UnsubscribeFromDatasetCommand({ ...key, DeviceId: first.DeviceId! }));
  const unknownDevice = await rejection(() => device.send(new SubscribeToDatasetCommand({ ...key, DeviceId: 'dev/1' })));
  assert.equal(unknownDevice.name, 'ResourceNotFoundException');
  assert.match(unknownDevice.message, /dev\/1/, 'the percent-encoded DeviceId arrives decoded');
  const otherIdentity = await rejection(() => device.send(new SubscribeToDatasetCommand({ ...key, IdentityId: newIdentityId(), DeviceId: first.DeviceId! })));
  assert.equal(otherIdentity.name, 'NotAuthorizedException', 'identity credentials reach only their own identity');
});

test('push sync is bounded: token length (8,192), subscriptions per device, devices per identity (the oldest go)', async () => {
  const poolId = await newPool();
  await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, PushSync: pushSync }));
  const user = await identityCredentials(server.endpoint, poolId);
  const device = syncClient(server.endpoint, user.credentials);
  const register = (Token: string) => device.send(new RegisterDeviceCommand({ IdentityPoolId: poolId, IdentityId: user.identityId, Platform: 'GCM', Token }));
  const longest = await register('t'.repeat(8192));
  assert.ok(longest.DeviceId);
  const tooLong = await rejection(() => register(`secret-${'t'.repeat(8190)}`));
  assert.equal(tooLong.name, 'InvalidParameterException');
  assert.equal(tooLong.$metadata?.httpStatusCode, 400);
  assert.equal(tooLong.message, "1 validation error detected: Value at 'token' failed to satisfy constraint: Member must have length less than or equal to 8192");

  // COGNISYNC_LIMIT_SUBSCRIPTIONS_PER_DEVICE=2 on this server.
  const subscribe = (DatasetName: string, DeviceId: string) => device.send(new SubscribeToDatasetCommand({ IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName, DeviceId }));
  await subscribe('a', longest.DeviceId!);
  await subscribe('b', longest.DeviceId!);
  await subscribe('b', longest.DeviceId!);
  const third = await rejection(() => subscribe('c', longest.DeviceId!));
  assert.equal(third.name, 'InvalidParameterException');
  assert.match(third.message, /is subscribed to 2 datasets, the most one device may be/);

  // COGNISYNC_LIMIT_DEVICES_PER_IDENTITY=3: a fourth token unregisters the first device.
  const later = [];
  for (const token of ['t2', 't3', 't4']) later.push((await register(token)).DeviceId!);
  const gone = await rejection(() => subscribe('a', longest.DeviceId!));
  assert.equal(gone.name, 'ResourceNotFoundException');
  for (const deviceId of later) await subscribe('a', deviceId);
});
