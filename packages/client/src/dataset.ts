// Dataset: one named key-value dataset of the current identity; local reads and writes, and synchronize().
import { ValidationError } from './errors.ts';
import { addUsage, validateDatasetSize, validateKey, validateValue } from './limits.ts';
import { newDatasetFields, type DatasetMetadata, type LocalRecord } from './records.ts';
import type { SyncManager } from './sync-manager.ts';
import type { SynchronizeOptions, SyncSummary } from './sync-loop.ts';

/** How many times a local write re-reads and retries when another writer changed the same records first. */
const maxWriteRetries = 20;

/**
 * A dataset of the manager's current identity. Reads and writes are local and work offline; every write is
 * durable when its promise resolves. Values are strings (serialize anything else yourself).
 */
export class Dataset {
  /** @internal Use `manager.openOrCreateDataset(name)`. */
  constructor(
    private readonly manager: SyncManager,
    readonly name: string,
  ) {}

  /** The identity reads are under (kept in memory; writes and syncs follow the store first, see writeIdentityId). */
  private async identity() {
    return this.manager.localIdentityId();
  }

  /** The value of `key`, or undefined when it is absent or removed. */
  async get(key: string): Promise<string | undefined> {
    return (await this.manager.store.getRecord(await this.identity(), this.name, key))?.value ?? undefined;
  }

  /** The full local record of `key` (tombstones included), with its sync state. */
  async getRecord(key: string): Promise<LocalRecord | undefined> {
    return this.manager.store.getRecord(await this.identity(), this.name, key);
  }

  /** Every live key and value. */
  async getAll(): Promise<Record<string, string>> {
    const all: Record<string, string> = {};
    for (const record of await this.getAllRecords()) if (record.value !== null) all[record.key] = record.value;
    return all;
  }

  /** Every local record, removed ones (value null) included, ordered by key. */
  async getAllRecords(): Promise<LocalRecord[]> {
    return this.manager.store.listRecords(await this.identity(), this.name);
  }

  /** Number of live records. */
  async size(): Promise<number> {
    return (await this.manager.store.getDatasetUsage(await this.identity(), this.name)).numRecords;
  }

  /** Bytes the live records count against the dataset limit (UTF-8 key + value). */
  async sizeInBytes(): Promise<number> {
    return (await this.manager.store.getDatasetUsage(await this.identity(), this.name)).dataStorage;
  }

  /** Whether there are local changes not yet pushed. */
  async hasPendingChanges(): Promise<boolean> {
    const meta = await this.metadata();
    return meta?.deleted === true || (await this.manager.store.listModifiedRecords(await this.identity(), this.name)).length > 0;
  }

  async metadata(): Promise<DatasetMetadata | undefined> {
    return this.manager.store.getDataset(await this.identity(), this.name);
  }

  /** Sets `key` to `value` (`''` is a value, not a removal). Validated against the service's limits first. */
  async put(key: string, value: string): Promise<void> {
    const limits = this.manager.limits;
    validateKey(key, limits);
    validateValue(key, value, limits);
    await this.write([[key, value]]);
  }

  /** Sets several keys in one atomic local write. */
  async putAll(values: Record<string, string>): Promise<void> {
    const limits = this.manager.limits;
    // An array would become keys "0", "1", …; null a bare TypeError.
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      throw new ValidationError('InvalidValues', `putAll() takes an object of key → value, got ${Array.isArray(values) ? 'an array' : String(values)}`);
    }
    for (const [key, value] of Object.entries(values)) {
      validateKey(key, limits);
      validateValue(key, value, limits);
    }
    await this.write(Object.entries(values));
  }

  /** Removes `key`; the removal reaches the server (and other devices) on the next synchronize(). */
  async remove(key: string): Promise<void> {
    validateKey(key, this.manager.limits);
    await this.write([[key, null]]);
  }

  /**
   * Deletes the dataset locally now and on the server at the next synchronize() (as the SDKs' `delete()`).
   * Writes fail until that synchronize() completed.
   */
  async delete(): Promise<void> {
    for (let attempt = 0; attempt < maxWriteRetries; attempt++) {
      const identityId = await this.manager.writeIdentityId();
      const deleted = { identityId, datasetName: this.name, purge: true, metadata: { deleted: true, lastModifiedDate: this.manager.now() } };
      if (await this.manager.store.commit({ datasets: [deleted], ...this.manager.writeGuard(identityId) })) return;
    }
    throw new ValidationError('WriteContention', `Dataset ${this.name}: the deletion kept racing other writers`);
  }

  /** Pulls remote changes, resolves conflicts, pushes local changes; see SynchronizeOptions. */
  synchronize(options: SynchronizeOptions = {}): Promise<SyncSummary> {
    return this.manager.synchronizeDataset(this.name, options);
  }

  private async write(changes: Array<[string, string | null]>): Promise<void> {
    const { store, limits } = this.manager;
    for (let attempt = 0; attempt < maxWriteRetries; attempt++) {
      const identityId = await this.manager.writeIdentityId();
      const meta = await store.getDataset(identityId, this.name);
      if (meta?.deleted) throw new ValidationError('DatasetDeleted', `Dataset ${this.name} was deleted; synchronize() it before writing to it again`);
      // Reads only the written keys and the store's running usage, never the whole dataset. The quota check is as
      // good as these reads (a concurrent writer of other keys is not in the expectations); the server has the last word.
      const current = new Map<string, LocalRecord | undefined>((await store.getRecords(identityId, this.name, changes.map(([key]) => key))).map((r) => [r.key, r]));
      const usage = await store.getDatasetUsage(identityId, this.name);
      const before = { ...usage };
      const now = this.manager.now();
      const put: LocalRecord[] = [];
      const expect: Array<{ key: string; record: LocalRecord | undefined }> = [];
      for (const [key, value] of changes) {
        const before = current.get(key);
        if ((before?.value ?? null) === value) continue;
        const record: LocalRecord = {
          key,
          value,
          syncCount: before?.syncCount ?? 0,
          modified: true,
          deviceLastModifiedDate: now,
          lastModifiedDate: now,
          lastModifiedBy: before?.lastModifiedBy ?? '',
          pushing: before?.pushing ?? null,
        };
        expect.push({ key, record: before });
        put.push(record);
        addUsage(usage, before, -1);
        addUsage(usage, record, 1);
        current.set(key, record);
      }
      if (!put.length) return;
      validateDatasetSize(usage, limits, this.name, before);
      if (!meta) await this.manager.checkDatasetQuota(identityId, this.name);
      const metadata = meta ? { lastModifiedDate: now } : newDatasetFields(now);
      if (await store.commit({ datasets: [{ identityId, datasetName: this.name, expect, put, metadata }], ...this.manager.writeGuard(identityId) })) return;
    }
    throw new ValidationError('WriteContention', `Dataset ${this.name}: the write kept racing other writers`);
  }
}
