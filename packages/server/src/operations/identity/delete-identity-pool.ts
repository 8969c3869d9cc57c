// DeleteIdentityPool: remove a pool and every dataset, record, device and subscription under it.
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';

export default defineOperation({
  service: 'identity',
  model: model.DeleteIdentityPool,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string }, store) {
    if (!(await store.deleteIdentityPool(input.IdentityPoolId))) throw new ResourceNotFoundException(`IdentityPool '${input.IdentityPoolId}' not found.`);
    return {};
  },
});
