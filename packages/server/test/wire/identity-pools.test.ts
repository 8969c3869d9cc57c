// Cognito Identity pool administration through the real @aws-sdk/client-cognito-identity (awsJson1_1).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CreateIdentityPoolCommand, DeleteIdentityPoolCommand, DescribeIdentityPoolCommand, ListIdentityPoolsCommand, UpdateIdentityPoolCommand,
  ListTagsForResourceCommand, type CognitoIdentityClient,
} from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { identityClient, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

let server: ServerProcess;
let identity: CognitoIdentityClient;

before(async () => {
  server = await startServer({ env: { COGNISYNC_LIMIT_IDENTITY_POOLS: '6' }, args: ['--region', 'eu-west-1'] });
  identity = identityClient(server.endpoint);
});
after(async () => {
  await server.stop();
});

test('CreateIdentityPool returns the pool with a REGION:GUID id; DescribeIdentityPool returns the same', async () => {
  const created = await identity.send(
    new CreateIdentityPoolCommand({
      IdentityPoolName: 'My App',
      AllowUnauthenticatedIdentities: true,
      AllowClassicFlow: false,
      DeveloperProviderName: 'login.myapp',
      SupportedLoginProviders: { 'graph.facebook.com': '1234' },
      IdentityPoolTags: { team: 'mobile' },
    }),
  );
  assert.match(created.IdentityPoolId!, /^eu-west-1:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(created.IdentityPoolName, 'My App');
  assert.equal(created.AllowUnauthenticatedIdentities, true);
  assert.equal(created.DeveloperProviderName, 'login.myapp');
  const described = await identity.send(new DescribeIdentityPoolCommand({ IdentityPoolId: created.IdentityPoolId! }));
  const { $metadata: _a, ...describedBody } = described;
  const { $metadata: _b, ...createdBody } = created;
  assert.deepEqual(describedBody, createdBody);
});

test('UpdateIdentityPool replaces the configuration but never the DeveloperProviderName', async () => {
  const created = await identity.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'before', AllowUnauthenticatedIdentities: false, DeveloperProviderName: 'dev.provider' }));
  const updated = await identity.send(new UpdateIdentityPoolCommand({ IdentityPoolId: created.IdentityPoolId!, IdentityPoolName: 'after', AllowUnauthenticatedIdentities: true }));
  assert.equal(updated.IdentityPoolName, 'after');
  assert.equal(updated.AllowUnauthenticatedIdentities, true);
  assert.equal(updated.DeveloperProviderName, 'dev.provider');
  const changed = await rejection(() =>
    identity.send(new UpdateIdentityPoolCommand({ IdentityPoolId: created.IdentityPoolId!, IdentityPoolName: 'x', AllowUnauthenticatedIdentities: true, DeveloperProviderName: 'other' })),
  );
  assert.equal(changed.name, 'InvalidParameterException');
  assert.equal(changed.$metadata?.httpStatusCode, 400);
});

test('ListIdentityPools pages with MaxResults (1..60) and NextToken', async () => {
  const ids: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await identity.send(new ListIdentityPoolsCommand({ MaxResults: 1, NextToken }));
    assert.ok(page.IdentityPools!.length <= 1);
    ids.push(...page.IdentityPools!.map((p) => p.IdentityPoolId!));
    NextToken = page.NextToken;
  } while (NextToken);
  assert.ok(ids.length >= 2);
  assert.equal(new Set(ids).size, ids.length);
  const tooMany = await rejection(() => identity.send(new ListIdentityPoolsCommand({ MaxResults: 61 })));
  assert.equal(tooMany.name, 'InvalidParameterException');
  assert.match(tooMany.message, /maxResults.*less than or equal to 60/);
  const missing = await rejection(() => identity.send(new ListIdentityPoolsCommand({} as { MaxResults: number })));
  assert.equal(missing.name, 'InvalidParameterException');
});

test('DeleteIdentityPool removes the pool and its data; later calls get ResourceNotFoundException', async () => {
  const { IdentityPoolId } = await identity.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'doomed', AllowUnauthenticatedIdentities: true }));
  const sync = syncClient(server.endpoint);
  const key = { IdentityPoolId: IdentityPoolId!, IdentityId: newIdentityId('eu-west-1'), DatasetName: 'd' };
  const { SyncSessionToken } = await sync.send(new ListRecordsCommand(key));
  await sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] }));
  await identity.send(new DeleteIdentityPoolCommand({ IdentityPoolId: IdentityPoolId! }));
  const described = await rejection(() => identity.send(new DescribeIdentityPoolCommand({ IdentityPoolId: IdentityPoolId! })));
  assert.equal(described.name, 'ResourceNotFoundException');
  assert.equal(described.$metadata?.httpStatusCode, 400, 'Cognito Identity answers client errors with 400');
  const listed = await rejection(() => sync.send(new ListRecordsCommand(key)));
  assert.equal(listed.name, 'ResourceNotFoundException');
  const again = await rejection(() => identity.send(new DeleteIdentityPoolCommand({ IdentityPoolId: IdentityPoolId! })));
  assert.equal(again.name, 'ResourceNotFoundException');
});

test('CreateIdentityPool validates against the model and enforces the pool limit', async () => {
  const badName = await rejection(() => identity.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'bad/name!', AllowUnauthenticatedIdentities: true })));
  assert.equal(badName.name, 'InvalidParameterException');
  assert.match(badName.message, /identityPoolName/);
  const missingFlag = await rejection(() => identity.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'x' } as { IdentityPoolName: string; AllowUnauthenticatedIdentities: boolean })));
  assert.equal(missingFlag.name, 'InvalidParameterException');
  assert.match(missingFlag.message, /allowUnauthenticatedIdentities.*must not be null/);
  const existing = await identity.send(new ListIdentityPoolsCommand({ MaxResults: 60 }));
  for (let i = existing.IdentityPools!.length; i < 6; i++) {
    await identity.send(new CreateIdentityPoolCommand({ IdentityPoolName: `fill${i}`, AllowUnauthenticatedIdentities: true }));
  }
  const limit = await rejection(() => identity.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'one too many', AllowUnauthenticatedIdentities: true })));
  assert.equal(limit.name, 'LimitExceededException');
});

test('operations cognisync does not serve yet are UnknownOperationException, not a crash', async () => {
  const error = await rejection(() => identity.send(new ListTagsForResourceCommand({ ResourceArn: 'arn:aws:cognito-identity:eu-west-1:123456789012:identitypool/x' })));
  assert.equal(error.name, 'UnknownOperationException');
  assert.equal(error.$metadata?.httpStatusCode, 400);
});
