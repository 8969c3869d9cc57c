// DescribeDataset: a live dataset's metadata (counts, bytes, dates).
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';
import { datasetOutput } from './output-shapes.js';

export default defineSyncOperation({
  model: model.DescribeDataset,
  callers: ['identity', 'developer'],
  async handle(_context, input: { IdentityPoolId: string; IdentityId: string; DatasetName: string }, store) {
    const dataset = await store.describeDataset({ identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName });
    if (!dataset) throw new ResourceNotFoundException(`Dataset '${input.DatasetName}' not found for identity '${input.IdentityId}'.`);
    return { Dataset: datasetOutput(dataset) };
  },
});
