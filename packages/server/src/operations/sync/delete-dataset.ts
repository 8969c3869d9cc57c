// DeleteDataset: remove a dataset and its records for good; later devices learn of it through ListRecords,
// and the pool's Cognito Stream (when enabled) gets a `remove` record.
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';
import { datasetOutput } from './output-shapes.js';
import { pushTarget, streamTarget } from './stream-target.js';

export default defineSyncOperation({
  model: model.DeleteDataset,
  callers: ['identity', 'developer'],
  async handle(context, input: { IdentityPoolId: string; IdentityId: string; DatasetName: string }, store) {
    const key = { identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName };
    const { settings } = context;
    const stream = streamTarget(settings);
    const push = pushTarget(settings);
    const deleted = await store.deleteDataset(key, context.now.getTime(), stream, push);
    if (stream || push) context.integrations.outbox.notify();
    if (!deleted) throw new ResourceNotFoundException(`Dataset '${input.DatasetName}' not found for identity '${input.IdentityId}'.`);
    return { Dataset: datasetOutput(deleted) };
  },
});
