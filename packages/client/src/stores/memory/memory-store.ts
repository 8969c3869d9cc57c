// MemoryStore: the LocalStore contract in plain Maps, for tests and for apps that need no persistence.
import { byKey, newDatasetFields, sameRecord, type DatasetMetadata, type LocalRecord } from '../../records.ts';
import { NamedMutex } from '../mutex.ts';
import { datasetRow, type LocalStore, type StoreBatch } from '../store.ts';

const datasetId = (identityId: string, datasetName: string) => JSON.stringify([identityId, datasetName]);

/** A store that lives as long as the object; nothing is persisted. Copies on every read and write. */
export class MemoryStore implements LocalStore {
  private datasets = new Map<string, DatasetMetadata>();
  private records = new Map<string, Map<string, LocalRecord>>();
  private settings = new Map<string, string>();
  private readonly mutex = new NamedMutex();

  async getDataset(identityId: string, datasetName: string) {
    const row = this.datasets.get(datasetId(identityId, datasetName));
    return row && structuredClone(row);
  }

  async listDatasets(identityId: string) {
    return [...this.datasets.values()]
      .filter((d) => d.identityId === identityId)
      .sort((a, b) => (a.datasetName < b.datasetName ? -1 : 1))
      .map((d) => structuredClone(d));
  }

  async getRecord(identityId: string, datasetName: string, key: string) {
    const record = this.records.get(datasetId(identityId, datasetName))?.get(key);
    return record && structuredClone(record);
  }

  async listRecords(identityId: string, datasetName: string) {
    return [...(this.records.get(datasetId(identityId, datasetName))?.values() ?? [])].map((r) => structuredClone(r)).sort(byKey);
  }

  async commit(batch: StoreBatch): Promise<boolean> {
    for (const change of batch.datasets ?? []) {
      for (const { key, record } of change.expect ?? []) {
        if (!sameRecord(this.records.get(datasetId(change.identityId, change.datasetName))?.get(key), record)) return false;
      }
    }
    // Validation passed: nothing below can fail, so applying in place keeps the batch atomic.
    const now = Date.now();
    for (const change of batch.datasets ?? []) {
      const id = datasetId(change.identityId, change.datasetName);
      if (change.purge) this.records.delete(id);
      let records = this.records.get(id);
      for (const key of change.remove ?? []) records?.delete(key);
      if (change.put?.length) {
        if (!records) this.records.set(id, (records = new Map()));
        for (const record of change.put) records.set(record.key, structuredClone(record));
      }
      if (change.metadata === null) this.datasets.delete(id);
      else if (change.metadata || change.put?.length) {
        const current = this.datasets.get(id) ?? datasetRow(change.identityId, change.datasetName, newDatasetFields(now));
        this.datasets.set(id, { ...current, ...structuredClone(change.metadata ?? {}) });
      }
    }
    for (const [name, value] of Object.entries(batch.settings ?? {})) {
      if (value === null) this.settings.delete(name);
      else this.settings.set(name, value);
    }
    return true;
  }

  async getSetting(name: string) {
    return this.settings.get(name);
  }

  withLock<T>(name: string, fn: () => Promise<T>, options?: { timeoutMs?: number }): Promise<T> {
    return this.mutex.run(name, fn, options?.timeoutMs);
  }

  async close() {}
}
