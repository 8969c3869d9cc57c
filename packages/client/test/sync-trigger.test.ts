// A pool's SyncTrigger decides what is stored: the device takes the server's answer for what it pushed, also when
// the function rewrote or dropped it, and such a key is never mistaken for a sign that the dataset was deleted.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { DeleteDatasetCommand, SetCognitoEventsCommand } from '@aws-sdk/client-cognito-sync';
import { NetworkError } from '../src/errors.ts';
import { createPool, developerCredentials, device, operationOf, serverValues, startServer, syncClient, type ServerProcess } from './support.ts';

let server: ServerProcess;
let webhook: Server;
let poolId: string;
let stamps = 0;

before(async () => {
  // A validating function, called as a webhook: keys starting with `bad` and values starting with `refused` are
  // dropped, `shout`'s value upper-cased.
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as { datasetName: string; datasetRecords: Record<string, { newValue: string | null; op: string }> };
      const records: typeof event.datasetRecords = {};
      for (const [key, record] of Object.entries(event.datasetRecords)) {
        if (key.startsWith('bad') || record.newValue?.startsWith('refused')) continue;
        records[key] = key === 'shout' && record.newValue !== null ? { ...record, newValue: record.newValue.toUpperCase() } : record;
      }
      // In 'stamped' datasets every write also stamps a record of its own; in 'cleaned' ones it removes a legacy key.
      if (event.datasetName === 'stamped') records.updatedAt = { newValue: `stamp-${++stamps}`, op: 'replace' };
      if (event.datasetName === 'cleaned') records.legacy = { newValue: null, op: 'remove' };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...event, datasetRecords: records }));
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  server = await startServer();
  poolId = await createPool(server);
  const url = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/trigger`;
  await syncClient(server.endpoint).send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: url } }));
});
after(async () => {
  assert.equal(await server.stop(), 0);
  await new Promise<void>((resolve) => webhook.close(() => resolve()));
});

test('a value the function rewrote or dropped is taken from the answer: nothing left to push, no deletion reported after a full pull', async () => {
  const m = device(server, poolId);
  const ds = await m.openOrCreateDataset('prefs');
  await ds.putAll({ a: '1', shout: 'hello', bad1: 'x' });
  await ds.synchronize();
  assert.deepEqual(await ds.getAll(), { a: '1', shout: 'HELLO' }, 'as the server stores it');
  assert.equal(await ds.hasPendingChanges(), false, 'nothing to push again at every sync');
  const identityId = await m.identityId();
  assert.deepEqual(await serverValues(server, poolId, identityId, 'prefs'), { a: '1', shout: 'HELLO' });

  // An offline edit, then a full resync: the dataset is alive, and the edit reaches the server.
  await ds.put('a', 'edited offline');
  const deletions: string[] = [];
  const summary = await ds.synchronize({ force: true, onDatasetDeleted: (name) => (deletions.push(name), true) });
  assert.deepEqual(deletions, []);
  assert.equal(summary.datasetDeleted, false);
  assert.deepEqual(await serverValues(server, poolId, identityId, 'prefs'), { a: 'edited offline', shout: 'HELLO' });
  assert.deepEqual(await ds.getAll(), { a: 'edited offline', shout: 'HELLO' });

  // The dropped key put again (dropped again), then a full resync: still no deletion, and no edit lost.
  await ds.put('bad1', 'y');
  await ds.synchronize();
  assert.equal(await ds.getRecord('bad1'), undefined, 'a key the server never stored is not kept here');
  await ds.put('a', 'edited again');
  const later: string[] = [];
  await ds.synchronize({ force: true, onDatasetDeleted: (name) => (later.push(name), true) });
  assert.deepEqual(later, []);
  assert.deepEqual(await serverValues(server, poolId, identityId, 'prefs'), { a: 'edited again', shout: 'HELLO' });
});

test('records the function adds reach the device that pushed, and changedKeys names every key the answer changed here', async () => {
  const m = device(server, poolId);
  const ds = await m.openOrCreateDataset('stamped');
  await ds.putAll({ theme: 'dark', shout: 'hi' });
  const first = await ds.synchronize();
  const identityId = await m.identityId();
  assert.deepEqual(await ds.getAll(), await serverValues(server, poolId, identityId, 'stamped'));
  assert.deepEqual(first.changedKeys, ['shout', 'updatedAt']);
  await ds.put('theme', 'light');
  await ds.synchronize();
  const server2 = await serverValues(server, poolId, identityId, 'stamped');
  assert.match(server2.updatedAt!, /^stamp-\d+$/);
  assert.deepEqual(await ds.getAll(), server2, 'the stamp rewritten by the second write too');
  assert.equal(await ds.hasPendingChanges(), false);
});

test('a dataset deleted and created again elsewhere, seen by a forced pull of a device holding a removal: the removal goes, and the key can be written again', async () => {
  const a = device(server, poolId);
  const identityId = await a.identityId();
  const ds = await a.openOrCreateDataset('recreated');
  await ds.putAll({ k: '1', j: '1' });
  await ds.synchronize();
  await ds.remove('k');
  await ds.synchronize();
  assert.equal((await ds.getRecord('k'))?.value, null, 'a removal the server keeps');
  await syncClient(server.endpoint).send(new DeleteDatasetCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'recreated' }));
  const b = device(server, poolId, { identityId, credentials: developerCredentials });
  await (await b.openOrCreateDataset('recreated')).put('j', 'recreated');
  await (await b.openOrCreateDataset('recreated')).synchronize();
  // Its removal of `k` says nothing of the dataset (neither side has `k`): it goes without a question, and `j`
  // follows the server's, newer than the device's.
  await ds.synchronize({ force: true });
  assert.equal(await ds.getRecord('k'), undefined);
  assert.deepEqual(await ds.getAll(), { j: 'recreated' });
  await ds.put('k', 'again');
  await ds.synchronize();
  assert.deepEqual(await serverValues(server, poolId, identityId, 'recreated'), { j: 'recreated', k: 'again' });
});

test('a removal the function adds for a key nobody holds leaves nothing behind, and a later full pull sees a healthy dataset', async () => {
  const m = device(server, poolId);
  const ds = await m.openOrCreateDataset('cleaned');
  await ds.put('a', '1');
  await ds.synchronize();
  assert.equal(await ds.getRecord('legacy'), undefined);
  await ds.put('a', 'offline edit');
  const asked: string[] = [];
  await ds.synchronize({ force: true, onDatasetDeleted: (name) => (asked.push(name), true) });
  assert.deepEqual(asked, []);
  assert.deepEqual(await serverValues(server, poolId, await m.identityId(), 'cleaned'), { a: 'offline edit' });
});

test('a new key the function drops, after an earlier push of it was given up on: the device keeps nothing of it', async () => {
  const m = device(server, poolId);
  const identityId = await m.identityId();
  let holdNext = 0;
  const fetchImpl: typeof fetch = async (input, init) => {
    if (holdNext > 0 && operationOf(input as string, init) === 'UpdateRecords') {
      holdNext--;
      throw new TypeError('fetch failed: timed out');
    }
    return fetch(input, init);
  };
  const ds = await device(server, poolId, { identityId, fetch: fetchImpl }).openOrCreateDataset('refusals');
  await ds.put('other', 'x');
  await ds.synchronize();
  await ds.put('k', 'accepted');
  holdNext = 1;
  await assert.rejects(ds.synchronize(), NetworkError);
  await ds.put('k', 'refused by the function');
  await ds.synchronize();
  assert.deepEqual(await serverValues(server, poolId, identityId, 'refusals'), { other: 'x' });
  assert.deepEqual(await ds.getAll(), { other: 'x' }, 'not kept as if the server held it');
  assert.equal(await ds.getRecord('k'), undefined);
});
