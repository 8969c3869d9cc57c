// GetIdentityPoolRoles (developer only): the roles recorded for the pool (stored, not IAM-evaluated).
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { requirePool } from './identity-access.js';

export default defineOperation({
  service: 'identity',
  model: model.GetIdentityPoolRoles,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string }, store) {
    await requirePool(store, input.IdentityPoolId);
    const roles = (await store.getPoolRoles(input.IdentityPoolId)) ?? {};
    return { IdentityPoolId: input.IdentityPoolId, Roles: roles.Roles ?? {}, RoleMappings: roles.RoleMappings };
  },
});
