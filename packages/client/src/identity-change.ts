// Moving a device's local datasets to a new identity id (anonymous → logged in, or an identity merge).
import { newDatasetFields, type LocalRecord } from './records.ts';
import type { DatasetChange, LocalStore, StoreBatch } from './stores/store.ts';

/** Settings (and expectations on them) a move commits with; undefined: do not move after all. */
export type MoveGuard = () => Promise<Pick<StoreBatch, 'settings' | 'expectSettings'> | undefined>;

/** `<name>.<identityId>`, the name AWS gives a merged identity's dataset; shortened from the left to fit 128 chars. */
export function mergedDatasetName(datasetName: string, fromIdentityId: string): string {
  const suffix = `.${fromIdentityId}`;
  return datasetName.slice(0, Math.max(1, 128 - suffix.length)) + suffix;
}

/** Whether `datasetName` has the form of a merged identity's dataset, `<name>.<identityId>`. */
export function isMergedDatasetName(datasetName: string): boolean {
  return /.\.[\w-]+:[0-9a-f-]+$/.test(datasetName);
}

/**
 * Moves every local dataset of `fromIdentityId` to `toIdentityId` in one atomic commit. Live records become
 * local changes (SyncCount 0, modified), so the next synchronize() pushes them to the new identity, with
 * onConflict for keys it already holds with other values. A dataset the new identity already has locally is
 * kept beside it as `<name>.<fromIdentityId>`, marked to be merged (onDatasetsMerged reports it).
 * A pending local deletion belonged to the old identity and is dropped. `guard` adds settings and expectations
 * to each attempt's commit (see SyncManager: the placeholder's moves).
 */
export async function moveLocalData(store: LocalStore, fromIdentityId: string, toIdentityId: string, now: number, guard?: MoveGuard): Promise<string[] | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    // Read before the datasets: a write it guards against that comes later changes what it expects.
    const extra = guard ? await guard() : {};
    if (!extra) return undefined;
    const source = await store.listDatasets(fromIdentityId);
    if (!source.length && !extra.settings) return [];
    const taken = new Set((await store.listDatasets(toIdentityId)).map((d) => d.datasetName));
    const changes: DatasetChange[] = [];
    const moved: string[] = [];
    for (const dataset of source) {
      const records = await store.listRecords(fromIdentityId, dataset.datasetName);
      changes.push({
        identityId: fromIdentityId,
        datasetName: dataset.datasetName,
        expect: records.map((record) => ({ key: record.key, record })),
        purge: true,
        metadata: null,
      });
      if (dataset.deleted) continue;
      const clash = taken.has(dataset.datasetName);
      const name = clash ? mergedDatasetName(dataset.datasetName, fromIdentityId) : dataset.datasetName;
      taken.add(name);
      const live: LocalRecord[] = records
        .filter((r) => r.value !== null)
        .map((r) => ({ ...r, syncCount: 0, modified: true, pushing: null, lastModifiedBy: '' }));
      changes.push({
        identityId: toIdentityId,
        datasetName: name,
        put: live,
        metadata: { ...newDatasetFields(now), creationDate: dataset.creationDate, mergedInto: clash ? dataset.datasetName : dataset.mergedInto },
      });
      moved.push(name);
    }
    if (await store.commit({ datasets: changes, ...extra })) return moved;
  }
  throw new Error(`Moving local data from ${fromIdentityId} to ${toIdentityId} kept racing other writers`);
}
