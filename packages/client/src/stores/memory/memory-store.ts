// MemoryStore: the LocalStore contract in plain Maps, for tests and for apps that need no persistence.
import { addUsage } from '../../limits.ts';
import { byKey, newDatasetFields, sameRecord, type DatasetMetadata, type DatasetUsage, type LocalRecord } from '../../records.ts';
import { NamedMutex } from '../mutex.ts';
import { datasetRow, type LocalStore, type LockOptions, type StoreBatch } from '../store.ts';

const datasetId = (identityId: string, datasetName: string) => JSON.stringify([identityId, datasetName]);

/** One dataset's records, with the index of modified keys and the running usage that every write keeps current. */
interface DatasetRecords {
  records: Map<string, LocalRecord>;
  modified: Set<string>;
  usage: DatasetUsage;
}

const clone = (record: LocalRecord): LocalRecord => ({
  ...record,
  pushing: record.pushing && { ...record.pushing, ...(record.pushing.earlier ? { earlier: record.pushing.earlier.map((version) => ({ ...version })) } : {}) },
});

/** A store that lives as long as the object; nothing is persisted. Copies on every read and write. */
export class MemoryStore implements LocalStore {
  private datasets = new Map<string, DatasetMetadata>();
  private records = new Map<string, DatasetRecords>();
  private settings = new Map<string, string>();
  private readonly mutex = new NamedMutex();

  async getDataset(identityId: string, datasetName: string) {
    const row = this.datasets.get(datasetId(identityId, datasetName));
    return row && { ...row };
  }

  async listDatasets(identityId: string) {
    return [...this.datasets.values()]
      .filter((d) => d.identityId === identityId)
      .sort((a, b) => (a.datasetName < b.datasetName ? -1 : 1))
      .map((d) => ({ ...d }));
  }

  async getRecord(identityId: string, datasetName: string, key: string) {
    const record = this.records.get(datasetId(identityId, datasetName))?.records.get(key);
    return record && clone(record);
  }

  async listRecords(identityId: string, datasetName: string) {
    return [...(this.records.get(datasetId(identityId, datasetName))?.records.values() ?? [])].map(clone).sort(byKey);
  }

  async getRecords(identityId: string, datasetName: string, keys: readonly string[]) {
    const records = this.records.get(datasetId(identityId, datasetName))?.records;
    const found = new Map<string, LocalRecord>();
    for (const key of keys) {
      const record = records?.get(key);
      if (record) found.set(key, clone(record));
    }
    return [...found.values()].sort(byKey);
  }

  async listModifiedRecords(identityId: string, datasetName: string) {
    const dataset = this.records.get(datasetId(identityId, datasetName));
    return [...(dataset?.modified ?? [])].map((key) => clone(dataset!.records.get(key)!)).sort(byKey);
  }

  async getDatasetUsage(identityId: string, datasetName: string) {
    const usage = this.records.get(datasetId(identityId, datasetName))?.usage;
    return usage ? { ...usage } : { numRecords: 0, dataStorage: 0 };
  }

  async commit(batch: StoreBatch): Promise<boolean> {
    for (const change of batch.datasets ?? []) {
      for (const { key, record } of change.expect ?? []) {
        if (!sameRecord(this.records.get(datasetId(change.identityId, change.datasetName))?.records.get(key), record)) return false;
      }
    }
    for (const [name, value] of Object.entries(batch.expectSettings ?? {})) if ((this.settings.get(name) ?? null) !== value) return false;
    // Validation passed: nothing below can fail, so applying in place keeps the batch atomic.
    const now = Date.now();
    for (const change of batch.datasets ?? []) {
      const id = datasetId(change.identityId, change.datasetName);
      if (change.purge) this.records.delete(id);
      let dataset = this.records.get(id);
      if (dataset) for (const key of change.remove ?? []) this.drop(dataset, key);
      if (change.put?.length) {
        if (!dataset) this.records.set(id, (dataset = { records: new Map(), modified: new Set(), usage: { numRecords: 0, dataStorage: 0 } }));
        for (const record of change.put) {
          this.drop(dataset, record.key);
          dataset.records.set(record.key, clone(record));
          if (record.modified) dataset.modified.add(record.key);
          addUsage(dataset.usage, record, 1);
        }
      }
      if (change.metadata === null) this.datasets.delete(id);
      else if (change.metadata || change.put?.length) {
        const current = this.datasets.get(id) ?? datasetRow(change.identityId, change.datasetName, newDatasetFields(now));
        this.datasets.set(id, { ...current, ...change.metadata });
      }
    }
    for (const [name, value] of Object.entries(batch.settings ?? {})) {
      if (value === null) this.settings.delete(name);
      else this.settings.set(name, value);
    }
    return true;
  }

  /** Removes a record and its share of the index and the usage. */
  private drop(dataset: DatasetRecords, key: string) {
    addUsage(dataset.usage, dataset.records.get(key), -1);
    dataset.records.delete(key);
    dataset.modified.delete(key);
  }

  async getSetting(name: string) {
    return this.settings.get(name);
  }

  withLock<T>(name: string, fn: () => Promise<T>, options?: LockOptions): Promise<T> {
    return this.mutex.run(name, fn, options?.timeoutMs, options?.signal);
  }

  async close() {}
}
