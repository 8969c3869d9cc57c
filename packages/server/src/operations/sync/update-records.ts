// UpdateRecords: apply a batch of record patches atomically under optimistic concurrency (see
// core/record-patches.ts), creating the dataset on first write. Requires a SyncSessionToken from ListRecords.
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { modifiedBy } from '../../auth/principal.js';
import { defineSyncOperation } from '../operation.js';
import { recordOutput } from './output-shapes.js';

interface UpdateRecordsInput {
  IdentityPoolId: string;
  IdentityId: string;
  DatasetName: string;
  DeviceId?: string;
  RecordPatches?: { Op: 'replace' | 'remove'; Key: string; Value?: string; SyncCount: number; DeviceLastModifiedDate?: Date }[];
  SyncSessionToken: string;
  ClientContext?: string;
}

export default defineSyncOperation({
  model: model.UpdateRecords,
  callers: ['identity', 'developer'],
  async handle(context, input: UpdateRecordsInput, store) {
    const key = { identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName };
    const now = context.now.getTime();
    context.syncSessionTokens.verify(input.SyncSessionToken, key, now);
    const result = await store.updateRecords({
      ...key,
      patches: (input.RecordPatches ?? []).map((patch) => ({
        op: patch.Op,
        key: patch.Key,
        ...(patch.Value === undefined ? {} : { value: patch.Value }),
        syncCount: patch.SyncCount,
        ...(patch.DeviceLastModifiedDate ? { deviceLastModifiedDate: patch.DeviceLastModifiedDate.getTime() } : {}),
      })),
      now,
      modifiedBy: modifiedBy(context.principal),
      limits: context.limits,
    });
    return { Records: result.records.map(recordOutput) };
  },
});
