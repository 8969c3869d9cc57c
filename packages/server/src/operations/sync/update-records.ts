// UpdateRecords: apply a batch of record patches atomically under optimistic concurrency (see
// core/record-patches.ts), creating the dataset on first write. Requires a SyncSessionToken from ListRecords.
// A pool's SyncTrigger function sees the patches first and decides what is stored; with Cognito Streams
// enabled and with push sync configured, the change (and a notification per subscribed device) joins the
// outbox in the same transaction.
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { modifiedBy } from '../../auth/principal.js';
import type { RecordPatch } from '../../core/record-patches.js';
import { keysOfOutput, patchesFromOutput, syncTriggerEvent } from '../../core/sync-trigger.js';
import type { DatasetKey, Store, StoredRecord } from '../../store/store.js';
import { defineSyncOperation, type SyncOperationContext } from '../operation.js';
import { recordOutput } from './output-shapes.js';
import { pushTarget, streamTarget } from './stream-target.js';

interface UpdateRecordsInput {
  IdentityPoolId: string;
  IdentityId: string;
  DatasetName: string;
  DeviceId?: string;
  RecordPatches?: { Op: 'replace' | 'remove'; Key: string; Value?: string; SyncCount: number; DeviceLastModifiedDate?: Date }[];
  SyncSessionToken: string;
  ClientContext?: string;
}

/**
 * Runs the SyncTrigger and returns the patches it decided on, with the stored records it read. As AWS documents,
 * the trigger runs for changes made with Cognito identity credentials, not for the developer's own writes.
 */
async function applySyncTrigger(
  context: SyncOperationContext,
  store: Store,
  functionRef: string | undefined,
  key: DatasetKey,
  patches: RecordPatch[],
): Promise<{ patches: RecordPatch[]; current?: Map<string, StoredRecord> }> {
  if (!functionRef || context.principal.kind !== 'identity') return { patches };
  const current = await store.getRecords(key, patches.map((patch) => patch.key));
  const output = await context.integrations.syncTrigger.invoke(functionRef, syncTriggerEvent(context.region, key, patches, current));
  const added = keysOfOutput(output).filter((recordKey) => !current.has(recordKey) && !patches.some((patch) => patch.key === recordKey));
  if (added.length > 0) for (const [recordKey, record] of await store.getRecords(key, added)) current.set(recordKey, record);
  return { patches: patchesFromOutput(output, patches, current), current };
}

/**
 * The records of the keys a SyncTrigger dropped, as they stay: the stored version, or, for a key never held,
 * absent at the request's SyncCount (as a removal of such a key is answered; see applyRecordPatches). Every patched
 * key is answered, because the official clients clear a record's "modified" mark only from the answer:
 * amazon-cognito-js re-pushed a dropped key on every sync, and an answer with no records at all never calls back
 * (amazon-cognito-js#49), so that dataset's syncs hung for good.
 */
function droppedRecords(requested: readonly RecordPatch[], written: readonly StoredRecord[], current: ReadonlyMap<string, StoredRecord>, syncCount: number, now: number, modifiedBy: string): StoredRecord[] {
  const answered = new Set(written.map((record) => record.key));
  return requested
    .filter((patch) => !answered.has(patch.key))
    .map((patch) => current.get(patch.key) ?? { key: patch.key, value: null, syncCount, lastModifiedDate: now, lastModifiedBy: modifiedBy, deviceLastModifiedDate: now });
}

export default defineSyncOperation({
  model: model.UpdateRecords,
  callers: ['identity', 'developer'],
  async handle(context, input: UpdateRecordsInput, store) {
    const key = { identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName };
    const now = context.now.getTime();
    const sessionSyncCount = context.syncSessionTokens.verify(input.SyncSessionToken, key, now);
    const { settings } = context;
    // Literals with every field (undefined where absent) rather than conditional spreads, which take V8's slow path.
    const requested: RecordPatch[] = (input.RecordPatches ?? []).map((patch) => ({
      op: patch.Op,
      key: patch.Key,
      value: patch.Value,
      syncCount: patch.SyncCount,
      deviceLastModifiedDate: patch.DeviceLastModifiedDate?.getTime(),
    }));
    const { patches, current } = await applySyncTrigger(context, store, settings.cognitoEvents.SyncTrigger, key, requested);
    const stream = streamTarget(settings);
    const push = pushTarget(settings);
    const result = await store.updateRecords({
      identityPoolId: key.identityPoolId,
      identityId: key.identityId,
      datasetName: key.datasetName,
      patches,
      now,
      modifiedBy: modifiedBy(context.principal),
      limits: context.limits,
      deviceId: input.DeviceId || undefined,
      stream,
      push,
      issuedAccessKeyId: context.principal.kind === 'identity' ? context.principal.accessKeyId : undefined,
      sessionSyncCount,
    });
    if (stream || push) context.integrations.outbox.notify();
    const records = current ? [...result.records, ...droppedRecords(requested, result.records, current, result.dataset.syncCount, now, modifiedBy(context.principal))] : result.records;
    return { Records: records.map(recordOutput) };
  },
});
