// IndexedDbStore: the LocalStore contract in one IndexedDB database, one row per record, locks via Web Locks.
import { LockTimeoutError } from '../../errors.ts';
import { addUsage } from '../../limits.ts';
import { byKey, newDatasetFields, sameRecord, type DatasetMetadata, type DatasetUsage, type LocalRecord } from '../../records.ts';
import { NamedMutex } from '../mutex.ts';
import type { LocalStore, LockOptions, StoreBatch } from '../store.ts';

export interface IndexedDbStoreOptions {
  /** The IDBFactory to use (default `globalThis.indexedDB`; tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
  /** The IDBKeyRange class that belongs to `indexedDB` (default `globalThis.IDBKeyRange`). */
  IDBKeyRange?: typeof IDBKeyRange;
  /** The Web Locks manager (default `navigator.locks`); without one, locks hold only within this page. */
  locks?: LockManager;
}

const version = 2;
/** `modifiedKey` is the key while the record is modified and absent otherwise, so the `modified` index holds only those. */
type RecordRow = LocalRecord & { identityId: string; datasetName: string; modifiedKey?: string };
type UsageRow = DatasetUsage & { identityId: string; datasetName: string };

/** Above this many keys, getRecords() reads the dataset in one request instead of one request per key. */
const keysReadOneByOne = 64;

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
  const { identityId: _identityId, datasetName: _datasetName, modifiedKey: _modifiedKey, ...record } = row;
  return record;
}

function toRow(identityId: string, datasetName: string, record: LocalRecord): RecordRow {
  return { ...record, identityId, datasetName, ...(record.modified ? { modifiedKey: record.key } : {}) };
}

/**
 * Schema 2: the `modified` index on records and a `usage` row per dataset with live records. Rows that schema 1
 * wrote get their `modifiedKey`, and the usage is counted from them, inside the upgrade transaction.
 */
function upgradeToVersion2(db: IDBDatabase, upgrade: IDBTransaction) {
  const records = upgrade.objectStore('records');
  records.createIndex('modified', ['identityId', 'datasetName', 'modifiedKey']);
  const usage = db.createObjectStore('usage', { keyPath: ['identityId', 'datasetName'] });
  const totals = new Map<string, UsageRow>();
  const cursor = records.openCursor();
  cursor.onsuccess = () => {
    const at = cursor.result;
    if (!at) {
      for (const row of totals.values()) usage.put(row);
      return;
    }
    const row = at.value as RecordRow;
    if (row.modified) at.update(toRow(row.identityId, row.datasetName, toRecord(row)));
    if (row.value !== null) {
      const id = JSON.stringify([row.identityId, row.datasetName]);
      let total = totals.get(id);
      if (!total) totals.set(id, (total = { identityId: row.identityId, datasetName: row.datasetName, numRecords: 0, dataStorage: 0 }));
      addUsage(total, row, 1);
    }
    at.continue();
  };
}

/**
 * A store in the IndexedDB database `name`: object stores `datasets`, `records` (one row per record, keyed by
 * [identityId, datasetName, key], with an index of the modified ones), `usage` (one row per dataset with live
 * records) and `settings`. Every write is one `readwrite` transaction with strict durability, resolved on
 * `complete`. Tabs of one origin share it; Web Locks keep their syncs apart.
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
    if (this.database) return this.database;
    const opening = new Promise<IDBDatabase>((resolve, reject) => {
      const open = this.factory.open(this.name, version);
      open.onupgradeneeded = (event) => {
        const db = open.result;
        if (event.oldVersion < 1) {
          db.createObjectStore('datasets', { keyPath: ['identityId', 'datasetName'] });
          db.createObjectStore('records', { keyPath: ['identityId', 'datasetName', 'key'] });
          db.createObjectStore('settings', { keyPath: 'name' });
        }
        if (event.oldVersion < 2) upgradeToVersion2(db, open.transaction!);
      };
      open.onsuccess = () => {
        const db = open.result;
        // A connection that ends is forgotten, so the next call opens a new one: closed here when another tab
        // upgrades the schema or deletes the database (which this one must not block), or by the browser (storage
        // cleared). Kept, every later call would fail with InvalidStateError for the life of the page.
        const forget = () => {
          if (this.database === opening) this.database = undefined;
        };
        db.onversionchange = () => {
          db.close();
          forget();
        };
        db.onclose = forget;
        resolve(db);
      };
      open.onerror = () => reject(open.error);
      open.onblocked = () => reject(new Error(`IndexedDB ${this.name} is blocked by an older version open in another tab`));
    });
    this.database = opening;
    // A failed open is not kept either: the next call tries again.
    opening.catch(() => {
      if (this.database === opening) this.database = undefined;
    });
    return opening;
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

  /** Every key of the dataset: arrays sort after strings in IndexedDB keys, so [id, name, []] bounds them. */
  private datasetRange(identityId: string, datasetName: string) {
    return this.keyRange.bound([identityId, datasetName, ''], [identityId, datasetName, []]);
  }

  async listRecords(identityId: string, datasetName: string) {
    const rows = await this.read<RecordRow[]>('records', (s) => s.getAll(this.datasetRange(identityId, datasetName)));
    return rows.map(toRecord).sort(byKey);
  }

  async getRecords(identityId: string, datasetName: string, keys: readonly string[]) {
    if (!keys.length) return [];
    const wanted = new Set(keys);
    const store = (await this.db()).transaction('records', 'readonly').objectStore('records');
    const rows =
      wanted.size > keysReadOneByOne
        ? (await request<RecordRow[]>(store.getAll(this.datasetRange(identityId, datasetName)))).filter((row) => wanted.has(row.key))
        : await Promise.all([...wanted].map((key) => request<RecordRow | undefined>(store.get([identityId, datasetName, key]))));
    return rows.filter((row) => row !== undefined).map(toRecord).sort(byKey);
  }

  async listModifiedRecords(identityId: string, datasetName: string) {
    // Index keys end with the record key, and IndexedDB orders strings by UTF-16 code units: already in key order.
    const rows = await this.read<RecordRow[]>('records', (s) => s.index('modified').getAll(this.datasetRange(identityId, datasetName)));
    return rows.map(toRecord);
  }

  async getDatasetUsage(identityId: string, datasetName: string) {
    const row = await this.read<UsageRow | undefined>('usage', (s) => s.get([identityId, datasetName]));
    return { numRecords: row?.numRecords ?? 0, dataStorage: row?.dataStorage ?? 0 };
  }

  async commit(batch: StoreBatch): Promise<boolean> {
    const db = await this.db();
    const t = db.transaction(['datasets', 'records', 'settings', 'usage'], 'readwrite', { durability: 'strict' });
    const done = completion(t);
    const datasets = t.objectStore('datasets');
    const records = t.objectStore('records');
    const settings = t.objectStore('settings');
    const usages = t.objectStore('usage');
    try {
      const expectations = (batch.datasets ?? []).flatMap((change) =>
        (change.expect ?? []).map(async ({ key, record }) => {
          const row = await request<RecordRow | undefined>(records.get([change.identityId, change.datasetName, key]));
          return sameRecord(row ? toRecord(row) : undefined, record);
        }),
      );
      const settingExpectations = Object.entries(batch.expectSettings ?? {}).map(
        async ([name, value]) => ((await request<{ value: string } | undefined>(settings.get(name)))?.value ?? null) === value,
      );
      if (!(await Promise.all([...expectations, ...settingExpectations])).every(Boolean)) {
        t.abort();
        await done.catch(() => undefined);
        return false;
      }
      const now = Date.now();
      /** The usage of every dataset whose records this batch writes, by dataset; stored at the end. */
      const touched = new Map<string, UsageRow>();
      for (const change of batch.datasets ?? []) {
        const { identityId, datasetName } = change;
        const remove = change.remove ?? [];
        const put = change.put ?? [];
        if (change.purge || remove.length || put.length) {
          const id = JSON.stringify([identityId, datasetName]);
          let usage = touched.get(id);
          if (!usage) {
            usage = (await request<UsageRow | undefined>(usages.get([identityId, datasetName]))) ?? { identityId, datasetName, numRecords: 0, dataStorage: 0 };
            touched.set(id, usage);
          }
          if (change.purge) {
            records.delete(this.datasetRange(identityId, datasetName));
            usage.numRecords = 0;
            usage.dataStorage = 0;
          }
          // What each removed or replaced record counted. Read after the purge (so a purged record counts nothing);
          // a key listed twice counts what the earlier operation left.
          const keys = [...remove, ...put.map((r) => r.key)];
          const stored = await Promise.all(keys.map((key) => request<RecordRow | undefined>(records.get([identityId, datasetName, key]))));
          const current = new Map<string, { key: string; value: string | null } | undefined>();
          for (const [i, key] of keys.entries()) if (!current.has(key)) current.set(key, stored[i]);
          for (const key of remove) {
            addUsage(usage, current.get(key), -1);
            current.set(key, undefined);
            records.delete([identityId, datasetName, key]);
          }
          for (const record of put) {
            addUsage(usage, current.get(record.key), -1);
            addUsage(usage, record, 1);
            current.set(record.key, record);
            records.put(toRow(identityId, datasetName, record));
          }
        }
        if (change.metadata === null) datasets.delete([identityId, datasetName]);
        else if (change.metadata || put.length) {
          const current = await request<DatasetMetadata | undefined>(datasets.get([identityId, datasetName]));
          datasets.put({ ...(current ?? { identityId, datasetName, ...newDatasetFields(now) }), ...change.metadata });
        }
      }
      for (const usage of touched.values()) {
        if (usage.numRecords === 0) usages.delete([usage.identityId, usage.datasetName]);
        else usages.put(usage);
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

  async withLock<T>(name: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? 60_000;
    if (!this.locks) return this.mutex.run(name, fn, timeoutMs, signal);
    signal?.throwIfAborted();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    // The caller's abort ends the wait as the timeout does (AbortSignal.any is too new for some browsers).
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // The lock is released when the callback's promise settles, or by the browser when the tab goes away.
      return await this.locks.request(`cognisync:${this.name}:${name}`, { mode: 'exclusive', signal: controller.signal }, async () => {
        clearTimeout(timer);
        return fn();
      });
    } catch (error) {
      if (controller.signal.aborted && (error as Error)?.name === 'AbortError') {
        if (signal?.aborted) throw signal.reason;
        throw new LockTimeoutError(`Lock ${name} of IndexedDB ${this.name} is held by another tab (waited ${timeoutMs} ms)`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async close() {
    if (this.database) (await this.database).close();
    this.database = undefined;
  }
}
