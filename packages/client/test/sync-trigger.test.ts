// A pool's SyncTrigger decides what is stored: the device takes the server's answer for what it pushed, also when
// the function rewrote or dropped it, and such a key is never mistaken for a sign that the dataset was deleted.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { SetCognitoEventsCommand } from '@aws-sdk/client-cognito-sync';
import { createPool, device, serverValues, startServer, syncClient, type ServerProcess } from './support.ts';

let server: ServerProcess;
let webhook: Server;
let poolId: string;

before(async () => {
  // A validating function, called as a webhook: keys starting with `bad` are dropped, `shout`'s value upper-cased.
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as { datasetRecords: Record<string, { newValue: string | null; op: string }> };
      const records: typeof event.datasetRecords = {};
      for (const [key, record] of Object.entries(event.datasetRecords)) {
        if (key.startsWith('bad')) continue;
        records[key] = key === 'shout' && record.newValue !== null ? { ...record, newValue: record.newValue.toUpperCase() } : record;
      }
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
});
