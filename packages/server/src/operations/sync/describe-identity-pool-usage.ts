// DescribeIdentityPoolUsage: sync sessions, bytes stored and last change of one pool (developer only).
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';
import { poolUsageOutput } from './output-shapes.js';

export default defineSyncOperation({
  model: model.DescribeIdentityPoolUsage,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string }, store) {
    return { IdentityPoolUsage: poolUsageOutput(await store.describeIdentityPoolUsage(input.IdentityPoolId)) };
  },
});
