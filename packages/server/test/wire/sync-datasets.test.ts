// Dataset metadata and usage operations through the real AWS SDK v3: exact counts, bytes and dates.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import {
  DescribeDatasetCommand, DescribeIdentityPoolUsageCommand, DescribeIdentityUsageCommand, ListDatasetsCommand, ListIdentityPoolUsageCommand,
  ListRecordsCommand, UpdateRecordsCommand, DeleteDatasetCommand, type CognitoSyncClient, type RecordPatch,
} from '@aws-sdk/client-cognito-sync';
import { identityClient, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

let server: ServerProcess;
let sync: CognitoSyncClient;

before(async () => {
  server = await startServer();
  sync = syncClient(server.endpoint);
});
after(async () => {
  await server.stop();
});

async function newPool(name: string) {
  return (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: name, AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
}

async function write(IdentityPoolId: string, IdentityId: string, DatasetName: string, patches: RecordPatch[]) {
  const key = { IdentityPoolId, IdentityId, DatasetName };
  const { SyncSessionToken } = await sync.send(new ListRecordsCommand(key));
  return sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: patches }));
}

test('DescribeDataset reports exact records, bytes, dates and modifier', async () => {
  const poolId = await newPool('describe');
  const identityId = newIdentityId();
  const before = Date.now();
  await write(poolId, identityId, 'profile', [
    { Op: 'replace', Key: 'name', Value: 'Zoë', SyncCount: 0 },
    { Op: 'replace', Key: 'age', Value: '41', SyncCount: 0 },
  ]);
  const { Dataset } = await sync.send(new DescribeDatasetCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'profile' }));
  assert.equal(Dataset!.IdentityId, identityId);
  assert.equal(Dataset!.DatasetName, 'profile');
  assert.equal(Dataset!.NumRecords, 2);
  assert.equal(Dataset!.DataStorage, Buffer.byteLength('nameZoë') + Buffer.byteLength('age41'));
  assert.equal(Dataset!.LastModifiedBy, 'AKIDCOGNISYNCTEST01');
  assert.ok(Dataset!.CreationDate!.getTime() >= before - 1000 && Dataset!.CreationDate!.getTime() <= Date.now() + 1000);
  assert.ok(Dataset!.LastModifiedDate!.getTime() >= Dataset!.CreationDate!.getTime());
});

test('ListDatasets lists live datasets by name, paginated; an unknown identity has none', async () => {
  const poolId = await newPool('list');
  const identityId = newIdentityId();
  for (const name of ['c', 'a', 'e', 'b', 'd']) await write(poolId, identityId, name, [{ Op: 'replace', Key: 'k', Value: name, SyncCount: 0 }]);
  await sync.send(new DeleteDatasetCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'd' }));
  const names: string[] = [];
  let NextToken: string | undefined;
  let pages = 0;
  do {
    const page = await sync.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: identityId, MaxResults: 2, NextToken }));
    assert.equal(page.Count, page.Datasets!.length);
    names.push(...page.Datasets!.map((d) => d.DatasetName!));
    NextToken = page.NextToken;
    pages++;
  } while (NextToken);
  assert.deepEqual(names, ['a', 'b', 'c', 'e']);
  assert.equal(pages, 2);
  const empty = await sync.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: newIdentityId() }));
  assert.deepEqual(empty.Datasets, []);
  assert.equal(empty.Count, 0);
  assert.equal(empty.NextToken, undefined);
});

test('DescribeIdentityUsage and DescribeIdentityPoolUsage add up the live datasets', async () => {
  const poolId = await newPool('usage');
  const alice = newIdentityId();
  const bob = newIdentityId();
  await write(poolId, alice, 'one', [{ Op: 'replace', Key: 'ab', Value: 'cdef', SyncCount: 0 }]);
  await write(poolId, alice, 'two', [{ Op: 'replace', Key: 'x', Value: 'y', SyncCount: 0 }]);
  await write(poolId, alice, 'two', [{ Op: 'replace', Key: 'x', Value: 'yy', SyncCount: 1 }]);
  await write(poolId, bob, 'one', [{ Op: 'replace', Key: 'b', Value: '1234567890', SyncCount: 0 }]);

  const { IdentityUsage } = await sync.send(new DescribeIdentityUsageCommand({ IdentityPoolId: poolId, IdentityId: alice }));
  assert.equal(IdentityUsage!.IdentityId, alice);
  assert.equal(IdentityUsage!.IdentityPoolId, poolId);
  assert.equal(IdentityUsage!.DatasetCount, 2);
  assert.equal(IdentityUsage!.DataStorage, 6 + 3);
  assert.ok(IdentityUsage!.LastModifiedDate instanceof Date);

  const { IdentityPoolUsage } = await sync.send(new DescribeIdentityPoolUsageCommand({ IdentityPoolId: poolId }));
  assert.equal(IdentityPoolUsage!.IdentityPoolId, poolId);
  assert.equal(IdentityPoolUsage!.DataStorage, 6 + 3 + 11);
  assert.equal(IdentityPoolUsage!.SyncSessionsCount, 4);

  await sync.send(new DeleteDatasetCommand({ IdentityPoolId: poolId, IdentityId: alice, DatasetName: 'one' }));
  const afterDelete = await sync.send(new DescribeIdentityUsageCommand({ IdentityPoolId: poolId, IdentityId: alice }));
  assert.equal(afterDelete.IdentityUsage!.DatasetCount, 1);
  assert.equal(afterDelete.IdentityUsage!.DataStorage, 3);

  const fresh = await sync.send(new DescribeIdentityUsageCommand({ IdentityPoolId: poolId, IdentityId: newIdentityId() }));
  assert.equal(fresh.IdentityUsage!.DatasetCount, 0);
  assert.equal(fresh.IdentityUsage!.DataStorage, 0);
});

test('ListIdentityPoolUsage pages through every pool with MaxResults and Count', async () => {
  const created = [await newPool('u1'), await newPool('u2'), await newPool('u3')];
  const seen: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await sync.send(new ListIdentityPoolUsageCommand({ MaxResults: 2, NextToken }));
    assert.equal(page.MaxResults, 2);
    assert.equal(page.Count, page.IdentityPoolUsages!.length);
    seen.push(...page.IdentityPoolUsages!.map((u) => u.IdentityPoolId!));
    NextToken = page.NextToken;
  } while (NextToken);
  for (const id of created) assert.ok(seen.includes(id));
  assert.deepEqual([...seen].sort(), seen, 'ordered by pool id');
  const unknown = await rejection(() => sync.send(new DescribeIdentityPoolUsageCommand({ IdentityPoolId: 'us-east-1:11111111-2222-3333-4444-555555555555' })));
  assert.equal(unknown.name, 'ResourceNotFoundException');
});

test('a dataset at the 1 MB cap comes back whole, byte for byte, in one ListRecords answer', async () => {
  // 1,024 records of 1,024 UTF-8 bytes each (key + value), with two- and three-byte characters: exactly the
  // default cap of 1,048,576 bytes, and an answer far larger than the ones written together with their headers.
  const poolId = await newPool('full');
  const identityId = newIdentityId();
  const key = (i: number) => `k${String(i).padStart(4, '0')}`;
  const value = (i: number) => `${i % 10}${'é'.repeat(507)}€x`;
  for (let batch = 0; batch < 8; batch++) {
    const patches = Array.from({ length: 128 }, (_, j): RecordPatch => ({ Op: 'replace', Key: key(batch * 128 + j), Value: value(batch * 128 + j), SyncCount: 0 }));
    await write(poolId, identityId, 'full', patches);
  }
  const datasetKey = { IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'full' };
  const { Dataset } = await sync.send(new DescribeDatasetCommand(datasetKey));
  assert.equal(Dataset!.DataStorage, 1024 * 1024);
  assert.equal(Dataset!.NumRecords, 1024);
  const listed = await sync.send(new ListRecordsCommand(datasetKey));
  assert.equal(listed.NextToken, undefined);
  assert.equal(listed.Records!.length, 1024);
  const byKey = new Map(listed.Records!.map((record) => [record.Key!, record.Value]));
  for (let i = 0; i < 1024; i++) assert.equal(byKey.get(key(i)), value(i), key(i));
  // One byte over the cap is refused, and the answer after it is still whole.
  const over = await rejection(() => write(poolId, identityId, 'full', [{ Op: 'replace', Key: 'k0000', Value: `${value(0)}y`, SyncCount: 1 }]));
  assert.equal(over.name, 'LimitExceededException');
  assert.equal((await sync.send(new ListRecordsCommand(datasetKey))).Records!.length, 1024);
});
