// SetIdentityPoolRoles (developer only): record the pool's authenticated/unauthenticated roles and mappings.
import { InvalidParameterException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import type { PoolRoles } from '../../store/store.js';
import { defineOperation } from '../operation.js';
import { requirePool } from './identity-access.js';

const ROLE_TYPES = new Set(['authenticated', 'unauthenticated']);

export default defineOperation({
  service: 'identity',
  model: model.SetIdentityPoolRoles,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string; Roles: Record<string, string>; RoleMappings?: Record<string, unknown> }, store) {
    await requirePool(store, input.IdentityPoolId);
    for (const type of Object.keys(input.Roles)) {
      if (!ROLE_TYPES.has(type)) throw new InvalidParameterException(`Role type '${type}' is not one of authenticated, unauthenticated.`);
    }
    const roles: PoolRoles = { Roles: input.Roles, ...(input.RoleMappings ? { RoleMappings: input.RoleMappings } : {}) };
    await store.setPoolRoles(input.IdentityPoolId, roles);
    return {};
  },
});
