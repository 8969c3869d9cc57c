// DescribeIdentityPool: a pool's configuration.
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { identityPoolOutput } from './identity-pool-shape.js';

export default defineOperation({
  service: 'identity',
  model: model.DescribeIdentityPool,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string }, store) {
    const pool = await store.getIdentityPool(input.IdentityPoolId);
    if (!pool) throw new ResourceNotFoundException(`IdentityPool '${input.IdentityPoolId}' not found.`);
    return identityPoolOutput(pool);
  },
});
