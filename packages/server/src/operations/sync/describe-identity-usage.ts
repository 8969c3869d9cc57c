// DescribeIdentityUsage: how many datasets and bytes one identity holds, and when it last changed.
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation, epochSeconds } from '../operation.js';

export default defineSyncOperation({
  model: model.DescribeIdentityUsage,
  callers: ['identity', 'developer'],
  async handle(_context, input: { IdentityPoolId: string; IdentityId: string }, store) {
    const usage = await store.describeIdentityUsage(input.IdentityPoolId, input.IdentityId);
    return {
      IdentityUsage: {
        IdentityId: usage.identityId,
        IdentityPoolId: usage.identityPoolId,
        LastModifiedDate: epochSeconds(usage.lastModifiedDate),
        DatasetCount: usage.datasetCount,
        DataStorage: usage.dataStorage,
      },
    };
  },
});
