import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand, DescribeDatasetCommand } from '@aws-sdk/client-cognito-sync';
import { identityClient, newIdentityId, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

let server: ServerProcess;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

test('smoke: create pool, write, read', async () => {
  const pool = await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'smoke', AllowUnauthenticatedIdentities: true }));
  const sync = syncClient(server.endpoint);
  const key = { IdentityPoolId: pool.IdentityPoolId!, IdentityId: newIdentityId(), DatasetName: 'my.data_set:1-x' };
  const listed = await sync.send(new ListRecordsCommand(key));
  assert.equal(listed.DatasetExists, false);
  const updated = await sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0, DeviceLastModifiedDate: new Date(1700000000123) }] }));
  assert.equal(updated.Records![0]!.SyncCount, 1);
  assert.equal(updated.Records![0]!.DeviceLastModifiedDate!.getTime(), 1700000000123);
  const described = await sync.send(new DescribeDatasetCommand(key));
  assert.equal(described.Dataset!.NumRecords, 1);
});
