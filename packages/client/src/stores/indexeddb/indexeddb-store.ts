// IndexedDbStore: the LocalStore contract in one IndexedDB database, one row per record, locks via Web Locks.
import { LockTimeoutError } from '../../errors.ts';
import { byKey, newDatasetFields, sameRecord, type DatasetMetadata, type LocalRecord } from '../../records.ts';
import { NamedMutex } from '../mutex.ts';
import type { LocalStore, StoreBatch } from '../store.ts';

export interface IndexedDbStoreOptions {
  /** The IDBFactory to use (default `globalThis.indexedDB`; tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
  /** The IDBKeyRange class that belongs to `indexedDB` (default `globalThis.IDBKeyRange`). */
  IDBKeyRange?: typeof IDBKeyRange;
  /** The Web Locks manager (default `navigator.locks`); without one, locks hold only within this page. */
  locks?: LockManager;
}

const version = 1;
type RecordRow = LocalRecord & { identityId: string; datasetName: string };

const request = <T>(r: IDBRequest<T>) =>
  new Promise<T>((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

const completion = (t: IDBTransaction) =>
  new Promise<void>((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error ?? new DOMException('Transaction aborted', 'AbortError'));
  });

function toRecord(row: RecordRow): LocalRecord {
  const { identityId: _identityId, datasetName: _datasetName, ...record } = row;
  return record;
}

/**
 * A store in the IndexedDB database `name`: object stores `datasets`, `records` (one row per record, keyed by
 * [identityId, datasetName, key]) and `settings`. Every write is one `readwrite` transaction with strict
 * durability, resolved on `complete`. Tabs of one origin share it; Web Locks keep their syncs apart.
 */
export class IndexedDbStore implements LocalStore {
  private database: Promise<IDBDatabase> | undefined;
  private readonly factory: IDBFactory;
  private readonly locks: LockManager | undefined;
  private readonly keyRange: typeof IDBKeyRange;
  private readonly mutex = new NamedMutex();

  constructor(readonly name: string, options: IndexedDbStoreOptions = {}) {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (!factory) throw new Error('IndexedDbStore needs IndexedDB (a browser, or pass options.indexedDB)');
    this.factory = factory;
    this.keyRange = options.IDBKeyRange ?? globalThis.IDBKeyRange;
    this.locks = options.locks ?? (globalThis.navigator as Navigator | undefined)?.locks;
  }

  private db(): Promise<IDBDatabase> {
    this.database ??= new Promise<IDBDatabase>((resolve, reject) => {
      const open = this.factory.open(this.name, version);
      open.onupgradeneeded = () => {
        const db = open.result;
        db.createObjectStore('datasets', { keyPath: ['identityId', 'datasetName'] });
        db.createObjectStore('records', { keyPath: ['identityId', 'datasetName', 'key'] });
        db.createObjectStore('settings', { keyPath: 'name' });
      };
      open.onsuccess = () => {
        // Another tab upgrading the schema must not be blocked by this one.
        open.result.onversionchange = () => open.result.close();
        resolve(open.result);
      };
      open.onerror = () => reject(open.error);
      open.onblocked = () => reject(new Error(`IndexedDB ${this.name} is blocked by an older version open in another tab`));
    });
    return this.database;
  }

  private async read<T>(storeName: string, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const t = (await this.db()).transaction(storeName, 'readonly');
    return request(fn(t.objectStore(storeName)));
  }

  async getDataset(identityId: string, datasetName: string) {
    return (await this.read<DatasetMetadata | undefined>('datasets', (s) => s.get([identityId, datasetName]))) ?? undefined;
  }

  async listDatasets(identityId: string) {
    const rows = await this.read<DatasetMetadata[]>('datasets', (s) => s.getAll(this.keyRange.bound([identityId, ''], [identityId, []])));
    return rows.sort((a, b) => (a.datasetName < b.datasetName ? -1 : 1));
  }

  async getRecord(identityId: string, datasetName: string, key: string) {
    const row = await this.read<RecordRow | undefined>('records', (s) => s.get([identityId, datasetName, key]));
    return row ? toRecord(row) : undefined;
  }

  async listRecords(identityId: string, datasetName: string) {
    // Arrays sort after strings in IndexedDB keys, so [id, name, []] bounds every key of the dataset.
    const rows = await this.read<RecordRow[]>('records', (s) => s.getAll(this.keyRange.bound([identityId, datasetName, ''], [identityId, datasetName, []])));
    return rows.map(toRecord).sort(byKey);
  }

  async commit(batch: StoreBatch): Promise<boolean> {
    const db = await this.db();
    const t = db.transaction(['datasets', 'records', 'settings'], 'readwrite', { durability: 'strict' });
    const done = completion(t);
    const datasets = t.objectStore('datasets');
    const records = t.objectStore('records');
    const settings = t.objectStore('settings');
    try {
      for (const change of batch.datasets ?? []) {
        for (const { key, record } of change.expect ?? []) {
          const row = await request<RecordRow | undefined>(records.get([change.identityId, change.datasetName, key]));
          if (!sameRecord(row ? toRecord(row) : undefined, record)) {
            t.abort();
            await done.catch(() => undefined);
            return false;
          }
        }
      }
      const now = Date.now();
      for (const change of batch.datasets ?? []) {
        const { identityId, datasetName } = change;
        if (change.purge) records.delete(this.keyRange.bound([identityId, datasetName, ''], [identityId, datasetName, []]));
        for (const key of change.remove ?? []) records.delete([identityId, datasetName, key]);
        for (const record of change.put ?? []) records.put({ ...record, identityId, datasetName } satisfies RecordRow);
        if (change.metadata === null) datasets.delete([identityId, datasetName]);
        else if (change.metadata || change.put?.length) {
          const current = await request<DatasetMetadata | undefined>(datasets.get([identityId, datasetName]));
          datasets.put({ ...(current ?? { identityId, datasetName, ...newDatasetFields(now) }), ...change.metadata });
        }
      }
      for (const [name, value] of Object.entries(batch.settings ?? {})) {
        if (value === null) settings.delete(name);
        else settings.put({ name, value });
      }
    } catch (error) {
      try {
        t.abort();
      } catch {
        // Already finished or aborted.
      }
      await done.catch(() => undefined);
      throw error;
    }
    await done;
    return true;
  }

  async getSetting(name: string) {
    return (await this.read<{ value: string } | undefined>('settings', (s) => s.get(name)))?.value;
  }

  async withLock<T>(name: string, fn: () => Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    if (!this.locks) return this.mutex.run(name, fn, timeoutMs);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      // The lock is released when the callback's promise settles, or by the browser when the tab goes away.
      return await this.locks.request(`cognisync:${this.name}:${name}`, { mode: 'exclusive', signal: controller.signal }, async () => {
        clearTimeout(timer);
        return fn();
      });
    } catch (error) {
      if (controller.signal.aborted && (error as Error)?.name === 'AbortError') {
        throw new LockTimeoutError(`Lock ${name} of IndexedDB ${this.name} is held by another tab (waited ${timeoutMs} ms)`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async close() {
    if (this.database) (await this.database).close();
    this.database = undefined;
  }
}
