// The LocalStore contract on MemoryStore, SqliteStore and IndexedDbStore (fake-indexeddb), plus SQLite's cross-process lock.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { LockTimeoutError } from '../src/errors.ts';
import { IndexedDbStore } from '../src/stores/indexeddb/indexeddb-store.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.ts';
import { storeContract, type StoreHarness } from './store-contract.ts';

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
