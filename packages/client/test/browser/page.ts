// The test page bundled for real Chromium: the LocalStore contract on IndexedDbStore, Web Locks across tabs,
// and a SyncManager syncing through the page's origin.
import { IndexedDbStore } from '../../src/stores/indexeddb/indexeddb-store.ts';
import { SyncManager } from '../../src/sync-manager.ts';
import { storeContract } from '../store-contract.ts';

let held: { release: () => void } | undefined;

const api = {
  async runContract(): Promise<Array<{ name: string; error?: string }>> {
    const results: Array<{ name: string; error?: string }> = [];
    for (const [i, contractCase] of storeContract.entries()) {
      const name = `contract-${i}-${crypto.randomUUID()}`;
      try {
        await contractCase.run({ open: async () => new IndexedDbStore(name), reopen: async () => new IndexedDbStore(name) });
        results.push({ name: contractCase.name });
      } catch (error) {
        results.push({ name: contractCase.name, error: String((error as Error)?.stack ?? error) });
      }
    }
    return results;
  },

  /** Takes lock `name` of database `db` and keeps it until release(). */
  async hold(db: string, name: string): Promise<void> {
    await new Promise<void>((acquired) => {
      void new IndexedDbStore(db).withLock(name, () => {
        acquired();
        return new Promise<void>((release) => (held = { release }));
      });
    });
  },
  release(): void {
    held?.release();
  },
  async tryLock(db: string, name: string, timeoutMs: number): Promise<string> {
    try {
      return await new IndexedDbStore(db).withLock(name, async () => 'acquired', { timeoutMs });
    } catch (error) {
      return (error as Error).name;
    }
  },

  /**
   * Uses a store, deletes its database (as a logout in another tab might), and uses the store again: the settings
   * it then holds, as `a/b`.
   */
  async afterDeletion(db: string): Promise<string> {
    const store = new IndexedDbStore(db);
    await store.commit({ settings: { a: '1' } });
    await new Promise((deleted, failed) => {
      const deletion = indexedDB.deleteDatabase(db);
      deletion.onsuccess = deleted;
      deletion.onerror = () => failed(deletion.error);
      deletion.onblocked = () => failed(new Error('deleteDatabase blocked by the open store'));
    });
    await store.commit({ settings: { b: '2' } });
    return `${await store.getSetting('a')}/${await store.getSetting('b')}`;
  },

  /** Writes through a SyncManager on IndexedDB and synchronizes via this page's origin (proxied to the server). */
  async writeAndSync(identityPoolId: string, db: string, values: Record<string, string>) {
    const manager = new SyncManager({ identityPoolId, endpoint: location.origin, store: new IndexedDbStore(db) });
    const ds = await manager.openOrCreateDataset('browser');
    await ds.putAll(values);
    const summary = await ds.synchronize();
    return { identityId: await manager.identityId(), pushed: summary.pushed, all: await ds.getAll() };
  },
  /** Reads the dataset back (after a reload: from IndexedDB, the identity id from the store). */
  async read(identityPoolId: string, db: string) {
    const manager = new SyncManager({ identityPoolId, endpoint: location.origin, store: new IndexedDbStore(db) });
    const ds = await manager.openOrCreateDataset('browser');
    return { identityId: await manager.identityId(), all: await ds.getAll(), pending: await ds.hasPendingChanges() };
  },
};

Object.assign(globalThis, { cognisyncTest: api });
export type BrowserTestApi = typeof api;
