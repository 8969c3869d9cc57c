// The LocalStore contract on MemoryStore, SqliteStore and IndexedDbStore (fake-indexeddb), plus SQLite's cross-process
// lock and the upgrade of files and databases written by an older schema.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { LockTimeoutError } from '../src/errors.ts';
import { IndexedDbStore } from '../src/stores/indexeddb/indexeddb-store.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.ts';
import { record, storeContract, type StoreHarness } from './store-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'cognisync-client-stores-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const harnesses: Record<string, () => StoreHarness> = {
  MemoryStore: () => ({ open: async () => new MemoryStore() }),
  SqliteStore: () => {
    const path = join(dir, `store-${++n}.db`);
    return { open: async () => new SqliteStore(path), reopen: async () => new SqliteStore(path) };
  },
  'IndexedDbStore (fake-indexeddb)': () => {
    const factory = new IDBFactory();
    const name = `store-${++n}`;
    return { open: async () => new IndexedDbStore(name, { indexedDB: factory, IDBKeyRange }), reopen: async () => new IndexedDbStore(name, { indexedDB: factory, IDBKeyRange }) };
  },
};

for (const [storeName, harness] of Object.entries(harnesses)) {
  describe(`${storeName} passes the LocalStore contract`, () => {
    for (const contractCase of storeContract) test(contractCase.name, () => contractCase.run(harness()));
  });
}

describe('SqliteStore across processes', () => {
  test('two stores on one file exclude each other through the lease; a waiter times out with LockTimeoutError', async () => {
    const path = join(dir, 'shared.db');
    const first = new SqliteStore(path);
    const second = new SqliteStore(path);
    let release!: () => void;
    const held = first.withLock('sync:x', () => new Promise<void>((resolve) => (release = resolve)));
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(second.withLock('sync:x', async () => 'never', { timeoutMs: 150 }), LockTimeoutError);
    const waiting = second.withLock('sync:x', async () => 'second ran', { timeoutMs: 5000 });
    release();
    await held;
    assert.equal(await waiting, 'second ran');
    await first.close();
    await second.close();
  });

  test('a lock held by a process that was killed is free at once (its pid is gone), not after the lease', async () => {
    const path = join(dir, 'killed.db');
    const script = `
      import { SqliteStore } from ${JSON.stringify(new URL('../src/stores/sqlite/sqlite-store.ts', import.meta.url).pathname)};
      const store = new SqliteStore(${JSON.stringify(path)}, { lockLeaseMs: 600000 });
      setInterval(() => {}, 1000); // keeps the process alive while it holds the lock
      await store.withLock('sync:x', () => { console.log('locked'); return new Promise(() => {}); });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => line === 'locked' && resolve());
      child.once('exit', (code) => reject(new Error(`child exited with ${code} before locking`)));
    });
    const store = new SqliteStore(path);
    await assert.rejects(store.withLock('sync:x', async () => 'no', { timeoutMs: 100 }), LockTimeoutError, 'held while the child lives');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.equal(await store.withLock('sync:x', async () => 'taken over', { timeoutMs: 2000 }), 'taken over');
    await store.close();
  });
});

describe('stores written by schema 1 (before the modified index and the usage count)', () => {
  const identityId = 'us-east-1:00000000-0000-0000-0000-000000000001';
  // Live: 'a'+'1' = 2 bytes, 'é'+'😀' = 6; 'a' and 'gone' are modified.
  const records = [record('a', '1'), record('é', '😀', { modified: false, syncCount: 3 }), record('gone', null, { syncCount: 2 })];
  const check = async (store: SqliteStore | IndexedDbStore) => {
    assert.deepEqual(await store.getDatasetUsage(identityId, 'd'), { numRecords: 2, dataStorage: 8 });
    assert.deepEqual((await store.listModifiedRecords(identityId, 'd')).map((r) => r.key), ['a', 'gone']);
    await store.commit({ datasets: [{ identityId, datasetName: 'd', put: [record('a', '12', { modified: false })] }] });
    assert.deepEqual(await store.getDatasetUsage(identityId, 'd'), { numRecords: 2, dataStorage: 9 }, 'counted on from there');
    assert.deepEqual((await store.listModifiedRecords(identityId, 'd')).map((r) => r.key), ['gone']);
  };

  test('SqliteStore upgrades the file when it opens it', async () => {
    const path = join(dir, 'schema-1.db');
    const db = new Database(path);
    db.exec(`CREATE TABLE records (
      identity_id TEXT NOT NULL, dataset_name TEXT NOT NULL, key TEXT NOT NULL,
      value TEXT, sync_count INTEGER NOT NULL, modified INTEGER NOT NULL,
      device_last_modified_date INTEGER NOT NULL, last_modified_date INTEGER NOT NULL, last_modified_by TEXT NOT NULL,
      pushing INTEGER NOT NULL, pushing_value TEXT, pushing_device_last_modified_date INTEGER,
      PRIMARY KEY (identity_id, dataset_name, key)
    ) WITHOUT ROWID`);
    const insert = db.prepare('INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, 0, NULL, NULL)');
    for (const r of records) insert.run(identityId, 'd', r.key, r.value, r.syncCount, r.modified ? 1 : 0, '');
    db.pragma('user_version = 1');
    db.close();
    const store = new SqliteStore(path);
    await check(store);
    // The journal's earlier pushes have a column of their own, added in place (schema 2 files lack it too).
    const journaled = record('j', 'v2', { pushing: { value: 'v2', deviceLastModifiedDate: 2, earlier: [{ value: 'v1', deviceLastModifiedDate: 1 }] } });
    await store.commit({ datasets: [{ identityId, datasetName: 'd', put: [journaled] }] });
    await store.close();
    const reopened = new SqliteStore(path);
    assert.deepEqual(await reopened.getRecord(identityId, 'd', 'j'), journaled);
    assert.equal(reopened.db.pragma('user_version', { simple: true }), 2, 'still schema 2: an older client opens the file and ignores the column');
    await reopened.close();
  });

  test('IndexedDbStore upgrades the database when it opens it', async () => {
    const factory = new IDBFactory();
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = factory.open('schema-1', 1);
      open.onupgradeneeded = () => {
        open.result.createObjectStore('datasets', { keyPath: ['identityId', 'datasetName'] });
        const store = open.result.createObjectStore('records', { keyPath: ['identityId', 'datasetName', 'key'] });
        open.result.createObjectStore('settings', { keyPath: 'name' });
        for (const r of records) store.put({ ...r, identityId, datasetName: 'd' });
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    db.close();
    const store = new IndexedDbStore('schema-1', { indexedDB: factory, IDBKeyRange });
    await check(store);
    await store.close();
  });
});
