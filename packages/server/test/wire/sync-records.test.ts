// UpdateRecords / ListRecords through the real AWS SDK v3: the sync protocol's semantics as clients see them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import {
  DeleteDatasetCommand, DescribeDatasetCommand, ListDatasetsCommand, ListRecordsCommand, UpdateRecordsCommand, type CognitoSyncClient, type RecordPatch,
} from '@aws-sdk/client-cognito-sync';
import { identityClient, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

let server: ServerProcess;
let sync: CognitoSyncClient;
let poolId: string;

before(async () => {
  server = await startServer({ env: { COGNISYNC_LIMIT_DATASETS_PER_IDENTITY: '3', COGNISYNC_LIMIT_RECORDS_PER_DATASET: '5', COGNISYNC_LIMIT_DATASET_BYTES: '2000', COGNISYNC_LIMIT_TOMBSTONES_PER_DATASET: '4' } });
  sync = syncClient(server.endpoint);
  const pool = await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'records', AllowUnauthenticatedIdentities: true }));
  poolId = pool.IdentityPoolId!;
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

function dataset(name = 'settings') {
  return { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: name };
}

async function token(key: ReturnType<typeof dataset>) {
  return (await sync.send(new ListRecordsCommand(key))).SyncSessionToken!;
}

async function update(key: ReturnType<typeof dataset>, patches: RecordPatch[]) {
  return sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: await token(key), RecordPatches: patches }));
}

describe('ListRecords on a dataset that does not exist', () => {
  test('answers DatasetExists false, no records, DatasetSyncCount 0 and a SyncSessionToken', async () => {
    const result = await sync.send(new ListRecordsCommand(dataset()));
    assert.equal(result.DatasetExists, false);
    assert.deepEqual(result.Records, []);
    assert.equal(result.Count, 0);
    assert.equal(result.DatasetSyncCount, 0);
    assert.equal(result.DatasetDeletedAfterRequestedSyncCount, false);
    assert.deepEqual(result.MergedDatasetNames, []);
    assert.ok(result.SyncSessionToken && result.SyncSessionToken.length > 10);
  });
});

describe('UpdateRecords', () => {
  test('creates the dataset, stamps every patched record with the new dataset SyncCount', async () => {
    const key = dataset();
    const first = await update(key, [
      { Op: 'replace', Key: 'a', Value: '1', SyncCount: 0 },
      { Op: 'replace', Key: 'b', Value: 'zwei', SyncCount: 0, DeviceLastModifiedDate: new Date(1700000000500) },
    ]);
    assert.deepEqual(first.Records!.map((r) => [r.Key, r.Value, r.SyncCount]), [['a', '1', 1], ['b', 'zwei', 1]]);
    assert.equal(first.Records![1]!.DeviceLastModifiedDate!.getTime(), 1700000000500);
    assert.ok(first.Records![0]!.LastModifiedDate instanceof Date);
    assert.ok(Math.abs(first.Records![0]!.LastModifiedDate!.getTime() - Date.now()) < 60_000);
    const second = await update(key, [{ Op: 'replace', Key: 'a', Value: '2', SyncCount: 1 }]);
    assert.equal(second.Records![0]!.SyncCount, 2);
    const listed = await sync.send(new ListRecordsCommand(key));
    assert.equal(listed.DatasetExists, true);
    assert.equal(listed.DatasetSyncCount, 2);
    assert.deepEqual(listed.Records!.map((r) => [r.Key, r.Value, r.SyncCount]), [['b', 'zwei', 1], ['a', '2', 2]]);
    assert.equal(listed.LastModifiedBy, 'AKIDCOGNISYNCTEST01');
  });

  test('a stale SyncCount fails the whole request with ResourceConflictException (409) and changes nothing', async () => {
    const key = dataset();
    await update(key, [{ Op: 'replace', Key: 'score', Value: '5', SyncCount: 0 }]);
    const error = await rejection(() =>
      update(key, [
        { Op: 'replace', Key: 'fresh', Value: 'new', SyncCount: 0 },
        { Op: 'replace', Key: 'score', Value: '6', SyncCount: 0 },
      ]),
    );
    assert.equal(error.name, 'ResourceConflictException');
    assert.equal(error.$metadata?.httpStatusCode, 409);
    assert.match(error.message, /score/);
    const listed = await sync.send(new ListRecordsCommand(key));
    assert.deepEqual(listed.Records!.map((r) => [r.Key, r.Value]), [['score', '5']]);
    assert.equal(listed.DatasetSyncCount, 1);
  });

  test('a patch for a record that does not exist must carry SyncCount 0', async () => {
    const key = dataset();
    const error = await rejection(() => update(key, [{ Op: 'replace', Key: 'x', Value: 'v', SyncCount: 3 }]));
    assert.equal(error.name, 'ResourceConflictException');
    assert.equal((await sync.send(new ListRecordsCommand(key))).DatasetExists, false);
  });

  test('remove keeps a tombstone with a new SyncCount that ListRecords(lastSyncCount) reports', async () => {
    const key = dataset();
    await update(key, [
      { Op: 'replace', Key: 'keep', Value: 'k', SyncCount: 0 },
      { Op: 'replace', Key: 'gone', Value: 'g', SyncCount: 0 },
    ]);
    const removed = await update(key, [{ Op: 'remove', Key: 'gone', SyncCount: 1 }]);
    assert.equal(removed.Records![0]!.SyncCount, 2);
    assert.equal(removed.Records![0]!.Value, undefined);
    const changes = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 1 }));
    assert.deepEqual(changes.Records!.map((r) => [r.Key, r.Value, r.SyncCount]), [['gone', undefined, 2]]);
    const described = await sync.send(new DescribeDatasetCommand(key));
    assert.equal(described.Dataset!.NumRecords, 1);
    assert.equal(described.Dataset!.DataStorage, 'keep'.length + 'k'.length);
    // Writing the removed key again needs the tombstone's SyncCount.
    const conflict = await rejection(() => update(key, [{ Op: 'replace', Key: 'gone', Value: 'back', SyncCount: 0 }]));
    assert.equal(conflict.name, 'ResourceConflictException');
    const back = await update(key, [{ Op: 'replace', Key: 'gone', Value: 'back', SyncCount: 2 }]);
    assert.equal(back.Records![0]!.SyncCount, 3);
  });

  test('an empty string is a value, not a removal', async () => {
    const key = dataset();
    const result = await update(key, [{ Op: 'replace', Key: 'empty', Value: '', SyncCount: 0 }]);
    assert.equal(result.Records![0]!.Value, '');
    assert.equal((await sync.send(new DescribeDatasetCommand(key))).Dataset!.NumRecords, 1);
  });

  test('ListRecords(lastSyncCount) returns only later changes', async () => {
    const key = dataset();
    await update(key, [{ Op: 'replace', Key: 'one', Value: '1', SyncCount: 0 }]);
    await update(key, [{ Op: 'replace', Key: 'two', Value: '2', SyncCount: 0 }]);
    await update(key, [{ Op: 'replace', Key: 'three', Value: '3', SyncCount: 0 }]);
    const result = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 2 }));
    assert.deepEqual(result.Records!.map((r) => r.Key), ['three']);
    assert.equal(result.DatasetSyncCount, 3);
    const none = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 3 }));
    assert.deepEqual(none.Records, []);
  });

  test('ListRecords paginates with MaxResults and NextToken in SyncCount order', async () => {
    const key = dataset();
    await update(key, [0, 1, 2].map((i) => ({ Op: 'replace', Key: `k${i}`, Value: `${i}`, SyncCount: 0 }) as RecordPatch));
    await update(key, [{ Op: 'replace', Key: 'k3', Value: '3', SyncCount: 0 }, { Op: 'replace', Key: 'k0', Value: 'again', SyncCount: 1 }]);
    const seen: string[] = [];
    let NextToken: string | undefined;
    let pages = 0;
    do {
      const page = await sync.send(new ListRecordsCommand({ ...key, MaxResults: 2, NextToken }));
      assert.ok(page.Count! <= 2);
      seen.push(...page.Records!.map((r) => `${r.Key}@${r.SyncCount}`));
      NextToken = page.NextToken;
      pages++;
    } while (NextToken);
    assert.equal(pages, 2);
    assert.deepEqual(seen, ['k1@1', 'k2@1', 'k0@2', 'k3@2']);
  });

  test('a NextToken issued before the dataset was deleted (and created again) is refused: the listing must start over', async () => {
    const key = dataset();
    await update(key, ['a', 'b', 'c', 'd'].map((k) => ({ Op: 'replace', Key: k, Value: 'old', SyncCount: 0 }) as RecordPatch));
    const first = await sync.send(new ListRecordsCommand({ ...key, MaxResults: 2 }));
    assert.deepEqual(first.Records!.map((r) => r.Key), ['a', 'b']);
    // A token of the build before (no deletion count in it) still pages on.
    const { c, k } = JSON.parse(Buffer.from(first.NextToken!, 'base64url').toString()) as { c: number; k: string };
    const older = await sync.send(new ListRecordsCommand({ ...key, MaxResults: 2, NextToken: Buffer.from(JSON.stringify({ c, k })).toString('base64url') }));
    assert.deepEqual(older.Records!.map((r) => r.Key), ['c', 'd']);

    await sync.send(new DeleteDatasetCommand(key));
    await update(key, ['x', 'y'].map((k) => ({ Op: 'replace', Key: k, Value: 'new', SyncCount: 0 }) as RecordPatch));
    const stale = await rejection(() => sync.send(new ListRecordsCommand({ ...key, MaxResults: 2, NextToken: first.NextToken })));
    assert.equal(stale.name, 'InvalidParameterException');
    assert.equal(stale.$metadata?.httpStatusCode, 400);
    assert.equal(stale.message, 'The dataset was deleted since this NextToken was issued: list its records again from the start.');
    // Deleted and not created again: refused too (the earlier pages' records are gone).
    const again = await sync.send(new ListRecordsCommand({ ...key, MaxResults: 1 }));
    await sync.send(new DeleteDatasetCommand(key));
    assert.equal((await rejection(() => sync.send(new ListRecordsCommand({ ...key, MaxResults: 1, NextToken: again.NextToken })))).name, 'InvalidParameterException');
    // Listed from the start, only the dataset as it is now.
    assert.deepEqual((await sync.send(new ListRecordsCommand(key))).Records, []);
  });

  test('a forged NextToken and a negative lastSyncCount are InvalidParameterException (400)', async () => {
    const key = dataset();
    const badToken = await rejection(() => sync.send(new ListRecordsCommand({ ...key, NextToken: 'not-a-token' })));
    assert.equal(badToken.name, 'InvalidParameterException');
    assert.equal(badToken.$metadata?.httpStatusCode, 400);
    // Well-formed tokens holding strings no store can compare against (PostgreSQL refuses NUL: it was a 500 there).
    for (const position of [{ c: 1, k: 'a\u0000' }, { c: 1, k: '\ud800' }]) {
      const forged = await rejection(() => sync.send(new ListRecordsCommand({ ...key, NextToken: Buffer.from(JSON.stringify(position)).toString('base64url') })));
      assert.equal(forged.name, 'InvalidParameterException', JSON.stringify(position));
      assert.equal(forged.message, 'Invalid NextToken');
    }
    const forgedName = await rejection(() => sync.send(new ListDatasetsCommand({ IdentityPoolId: key.IdentityPoolId, IdentityId: key.IdentityId, NextToken: Buffer.from(JSON.stringify({ n: '\u0000' })).toString('base64url') })));
    assert.equal(forgedName.name, 'InvalidParameterException');
    const negative = await rejection(() => sync.send(new ListRecordsCommand({ ...key, LastSyncCount: -1 })));
    assert.equal(negative.name, 'InvalidParameterException');
    const zero = await rejection(() => sync.send(new ListRecordsCommand({ ...key, MaxResults: 0 })));
    assert.equal(zero.name, 'InvalidParameterException');
  });
});

describe('SyncSessionToken', () => {
  test('UpdateRecords refuses a missing, forged or foreign token', async () => {
    const key = dataset();
    const missing = await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: undefined as unknown as string, RecordPatches: [] })));
    assert.equal(missing.name, 'InvalidParameterException');
    assert.match(missing.message, /syncSessionToken/);
    const forged = await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: 'abc.def', RecordPatches: [] })));
    assert.equal(forged.name, 'InvalidParameterException');
    assert.equal(forged.$metadata?.httpStatusCode, 400);
    const other = dataset('other');
    const otherToken = await token(other);
    const foreign = await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: otherToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] })));
    assert.equal(foreign.name, 'InvalidParameterException');
    assert.match(foreign.message, /different identity or dataset/);
    assert.equal((await sync.send(new ListRecordsCommand(key))).DatasetExists, false);
  });

  test('an expired token is refused', async () => {
    const short = await startServer({ env: { COGNISYNC_SYNC_SESSION_TOKEN_TTL_SECONDS: '1' } });
    try {
      const client = syncClient(short.endpoint);
      const pool = await identityClient(short.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'ttl', AllowUnauthenticatedIdentities: false }));
      const key = { IdentityPoolId: pool.IdentityPoolId!, IdentityId: newIdentityId(), DatasetName: 'd' };
      const sessionToken = (await client.send(new ListRecordsCommand(key))).SyncSessionToken!;
      await new Promise((r) => setTimeout(r, 1200));
      const expired = await rejection(() => client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: sessionToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] })));
      assert.equal(expired.name, 'InvalidParameterException');
      assert.match(expired.message, /expired/);
    } finally {
      await short.stop();
    }
  });
});

describe('limits', () => {
  test('records per dataset → LimitExceededException (400), nothing written', async () => {
    const key = dataset();
    await update(key, [0, 1, 2, 3, 4].map((i) => ({ Op: 'replace', Key: `r${i}`, Value: 'v', SyncCount: 0 }) as RecordPatch));
    const error = await rejection(() => update(key, [{ Op: 'replace', Key: 'r5', Value: 'v', SyncCount: 0 }]));
    assert.equal(error.name, 'LimitExceededException');
    assert.equal(error.$metadata?.httpStatusCode, 400);
    // Replacing an existing record within the limit still works, and a removal frees a slot.
    await update(key, [{ Op: 'remove', Key: 'r0', SyncCount: 1 }]);
    await update(key, [{ Op: 'replace', Key: 'r5', Value: 'v', SyncCount: 0 }]);
    assert.equal((await sync.send(new DescribeDatasetCommand(key))).Dataset!.NumRecords, 5);
  });

  test('bytes per dataset (UTF-8 key + value) → LimitExceededException', async () => {
    const key = dataset();
    // 'k' + 999 two-byte characters = 1999 bytes: one under the configured 2000.
    await update(key, [{ Op: 'replace', Key: 'k', Value: 'é'.repeat(999), SyncCount: 0 }]);
    assert.equal((await sync.send(new DescribeDatasetCommand(key))).Dataset!.DataStorage, 1999);
    const error = await rejection(() => update(key, [{ Op: 'replace', Key: 'x', Value: 'yz', SyncCount: 0 }]));
    assert.equal(error.name, 'LimitExceededException');
    assert.equal((await sync.send(new DescribeDatasetCommand(key))).Dataset!.DataStorage, 1999);
  });

  test('datasets per identity → LimitExceededException; deleting one frees a slot', async () => {
    const identityId = newIdentityId();
    const named = (name: string) => ({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: name });
    for (const name of ['d1', 'd2', 'd3']) await update(named(name), [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]);
    const error = await rejection(() => update(named('d4'), [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]));
    assert.equal(error.name, 'LimitExceededException');
    await sync.send(new DeleteDatasetCommand(named('d1')));
    await update(named('d4'), [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]);
  });

  test('model constraints: key length, dataset name pattern, upper-case identity id', async () => {
    const key = dataset();
    const longKey = await rejection(() => update(key, [{ Op: 'replace', Key: 'k'.repeat(1025), Value: 'v', SyncCount: 0 }]));
    assert.equal(longKey.name, 'InvalidParameterException');
    assert.match(longKey.message, /recordPatches\.1\.member\.key.*length less than or equal to 1024/);
    const badName = await rejection(() => sync.send(new ListRecordsCommand({ ...key, DatasetName: 'has space' })));
    assert.equal(badName.name, 'InvalidParameterException');
    assert.match(badName.message, /datasetName/);
    const upper = await rejection(() => sync.send(new ListRecordsCommand({ ...key, IdentityId: 'us-east-1:ABCDEF00-0000-0000-0000-000000000000' })));
    assert.equal(upper.name, 'InvalidParameterException');
    const badOp = await rejection(() => update(key, [{ Op: 'upsert' as 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]));
    assert.match(badOp.message, /enum value set: \[replace, remove\]/);
    const duplicate = await rejection(() => update(key, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }, { Op: 'remove', Key: 'k', SyncCount: 0 }]));
    assert.equal(duplicate.name, 'InvalidParameterException');
  });
});

describe('DeleteDataset', () => {
  test('is permanent; DescribeDataset then 404s; a device synced before learns of it; UpdateRecords recreates it', async () => {
    const key = dataset();
    await update(key, [{ Op: 'replace', Key: 'a', Value: '1', SyncCount: 0 }]);
    await update(key, [{ Op: 'replace', Key: 'b', Value: '2', SyncCount: 0 }]);
    const deleted = await sync.send(new DeleteDatasetCommand(key));
    assert.equal(deleted.Dataset!.DatasetName, key.DatasetName);
    assert.equal(deleted.Dataset!.NumRecords, 2);

    const missing = await rejection(() => sync.send(new DescribeDatasetCommand(key)));
    assert.equal(missing.name, 'ResourceNotFoundException');
    assert.equal(missing.$metadata?.httpStatusCode, 404);
    const again = await rejection(() => sync.send(new DeleteDatasetCommand(key)));
    assert.equal(again.name, 'ResourceNotFoundException');

    const stale = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 2 }));
    assert.equal(stale.DatasetExists, false);
    assert.equal(stale.DatasetDeletedAfterRequestedSyncCount, true);
    assert.equal(stale.DatasetSyncCount, 0);
    const fresh = await sync.send(new ListRecordsCommand(key));
    assert.equal(fresh.DatasetDeletedAfterRequestedSyncCount, false);

    const recreated = await update(key, [{ Op: 'replace', Key: 'c', Value: '3', SyncCount: 0 }]);
    assert.ok(recreated.Records![0]!.SyncCount! > 2, 'SyncCount never repeats across deletion');
    const afterRecreate = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 1 }));
    assert.equal(afterRecreate.DatasetExists, true);
    assert.equal(afterRecreate.DatasetDeletedAfterRequestedSyncCount, true);
    assert.deepEqual(afterRecreate.Records!.map((r) => r.Key), ['c']);
    const current = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: recreated.Records![0]!.SyncCount }));
    assert.equal(current.DatasetDeletedAfterRequestedSyncCount, false);
    assert.equal((await sync.send(new DescribeDatasetCommand(key))).Dataset!.NumRecords, 1);
  });

  test('a push with a SyncSessionToken from before a deletion is a conflict, even of new keys, so the pull that follows reports the deletion', async () => {
    const key = dataset('deleted-under-push');
    const first = await update(key, [{ Op: 'replace', Key: 'x', Value: '1', SyncCount: 0 }]);
    const listed = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 0 }));
    await sync.send(new DeleteDatasetCommand(key));
    const push = await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'z', Value: 'new', SyncCount: 0 }] })));
    assert.equal(push.name, 'ResourceConflictException');
    assert.equal(push.$metadata?.httpStatusCode, 409);
    assert.equal((await sync.send(new ListRecordsCommand(key))).DatasetExists, false, 'nothing re-created');
    const pulled = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: first.Records![0]!.SyncCount }));
    assert.equal(pulled.DatasetDeletedAfterRequestedSyncCount, true);
    // A token issued after the deletion re-creates the dataset.
    const recreated = await sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: pulled.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'z', Value: 'new', SyncCount: 0 }] }));
    assert.equal(recreated.Records![0]!.Key, 'z');
  });

  test('a LastSyncCount past the dataset\'s own count (a device ahead of a server restored from a backup) is told its copy is gone', async () => {
    const key = dataset('restored');
    const written = await update(key, [{ Op: 'replace', Key: 'a', Value: '1', SyncCount: 0 }]);
    const count = written.Records![0]!.SyncCount!;
    const ahead = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: count + 2 }));
    assert.equal(ahead.DatasetExists, true);
    assert.equal(ahead.DatasetSyncCount, count);
    assert.equal(ahead.DatasetDeletedAfterRequestedSyncCount, true);
    assert.equal((await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: count }))).DatasetDeletedAfterRequestedSyncCount, false);
    // The same for a dataset the restored server never had.
    const never = await sync.send(new ListRecordsCommand({ ...dataset('never-had'), LastSyncCount: 3 }));
    assert.equal(never.DatasetExists, false);
    assert.equal(never.DatasetDeletedAfterRequestedSyncCount, true);
  });
});

describe('removals a dataset no longer remembers (tombstones past COGNISYNC_LIMIT_TOMBSTONES_PER_DATASET, 4 here, 3 kept)', () => {
  /** One round of churn: two new keys written, then removed (two tombstones at the second write's count). */
  async function churn(key: ReturnType<typeof dataset>, round: number) {
    const put = await update(key, ['x', 'y'].map((k) => ({ Op: 'replace', Key: `${k}${round}`, Value: 'v', SyncCount: 0 }) as RecordPatch));
    const removed = await update(key, put.Records!.map((r) => ({ Op: 'remove', Key: r.Key!, SyncCount: r.SyncCount! }) as RecordPatch));
    return removed.Records![0]!.SyncCount!;
  }

  test('the oldest are dropped; a device that synced before them is told its copy is gone, and its older token is a conflict', async () => {
    const key = dataset('churn');
    await update(key, [{ Op: 'replace', Key: 'a', Value: '1', SyncCount: 0 }]);
    const device = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 0 }));
    assert.equal(device.DatasetSyncCount, 1);
    // Removals at 3, 5 and 7: six tombstones, so at least three go, the oldest: those at 3 and, whole, those at 5.
    assert.deepEqual([await churn(key, 0), await churn(key, 1), await churn(key, 2)], [3, 5, 7]);
    const behind = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 1 }));
    assert.equal(behind.DatasetExists, true);
    assert.equal(behind.DatasetDeletedAfterRequestedSyncCount, true, 'the removals at 3 and 5 are no longer there to tell');
    assert.equal((await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 3 }))).DatasetDeletedAfterRequestedSyncCount, true);
    // From the drop's count on, and from 0, the history is whole.
    assert.equal((await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 5 }))).DatasetDeletedAfterRequestedSyncCount, false);
    const full = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 0 }));
    assert.equal(full.DatasetDeletedAfterRequestedSyncCount, false);
    assert.deepEqual(full.Records!.map((r) => [r.Key, r.Value ?? null, r.SyncCount]), [['a', '1', 1], ['x2', null, 7], ['y2', null, 7]]);
    // The device's push with its token from count 1 would have found no version of x0 to conflict with.
    const push = await rejection(() => sync.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: device.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'x0', Value: 'edited', SyncCount: 2 }] })));
    assert.equal(push.name, 'ResourceConflictException');
    assert.equal(push.$metadata?.httpStatusCode, 409);
    assert.equal(push.message, 'Removals made after this SyncSessionToken was issued are no longer remembered; call ListRecords again.');
    assert.equal((await sync.send(new DescribeDatasetCommand(key))).Dataset!.NumRecords, 1, 'nothing written');
  });

  test('a listing whose later pages lost removals meanwhile is refused, so that it starts over', async () => {
    const key = dataset('churn-pages');
    await update(key, [{ Op: 'replace', Key: 'a', Value: '1', SyncCount: 0 }]);
    for (const round of [0, 1, 2]) await churn(key, round); // dropped through 5, as above
    const first = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 5, MaxResults: 1 }));
    assert.equal(first.DatasetDeletedAfterRequestedSyncCount, false);
    assert.deepEqual(first.Records!.map((r) => r.Key), ['x2']);
    await churn(key, 3);
    await churn(key, 4); // removals at 9 and 11: dropped through 9, y2 (at 7) with them, which the listing had still to return
    const stale = await rejection(() => sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 5, MaxResults: 1, NextToken: first.NextToken })));
    assert.equal(stale.name, 'InvalidParameterException');
    assert.equal(stale.message, 'Removals this listing had still to return were dropped since this NextToken was issued: list its records again from the start.');
    // A listing begun after the drop pages on.
    const fresh = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 9, MaxResults: 1 }));
    assert.deepEqual(fresh.Records!.map((r) => r.Key), ['x4']);
    assert.deepEqual((await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 9, MaxResults: 1, NextToken: fresh.NextToken }))).Records!.map((r) => r.Key), ['y4']);
  });

  test('a first pull (from 0) is refused too when a record an earlier page returned was removed and its tombstone dropped meanwhile', async () => {
    const key = dataset('churn-first-pull');
    await update(key, [{ Op: 'replace', Key: 'a', Value: '1', SyncCount: 0 }]);
    await update(key, [{ Op: 'replace', Key: 'b', Value: '2', SyncCount: 0 }]);
    const first = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 0, MaxResults: 1 }));
    assert.deepEqual(first.Records!.map((r) => r.Key), ['a']);
    await update(key, [{ Op: 'remove', Key: 'a', SyncCount: 1 }]); // a's tombstone at 3, past the listing's position
    await churn(key, 0);
    await churn(key, 1); // six tombstones: a's (3) and x0, y0 (5) are dropped
    const stale = await rejection(() => sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 0, MaxResults: 1, NextToken: first.NextToken })));
    assert.equal(stale.name, 'InvalidParameterException', 'the rest of the listing would never say that a is gone');
    const again = await sync.send(new ListRecordsCommand({ ...key, LastSyncCount: 0 }));
    assert.deepEqual(again.Records!.filter((r) => r.Value !== undefined).map((r) => r.Key), ['b']);
  });
});

describe('unknown identity pool', () => {
  test('Sync calls on a pool that does not exist get ResourceNotFoundException (404)', async () => {
    const key = { IdentityPoolId: 'us-east-1:00000000-0000-0000-0000-000000000000', IdentityId: newIdentityId(), DatasetName: 'd' };
    const error = await rejection(() => sync.send(new ListRecordsCommand(key)));
    assert.equal(error.name, 'ResourceNotFoundException');
    assert.equal(error.$metadata?.httpStatusCode, 404);
  });
});
