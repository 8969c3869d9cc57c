// SetIdentityPoolRoles (developer only): record the pool's authenticated/unauthenticated roles and mappings.
import { InvalidParameterException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import type { PoolRoles } from '../../store/store.js';
import { defineOperation } from '../operation.js';
import { requirePool } from './identity-access.js';

const ROLE_TYPES = new Set(['authenticated', 'unauthenticated']);

/** The members of a RoleMapping the model has already checked the types of. */
interface RoleMapping {
  Type: 'Token' | 'Rules';
  AmbiguousRoleResolution?: string;
  RulesConfiguration?: unknown;
}

export default defineOperation({
  service: 'identity',
  model: model.SetIdentityPoolRoles,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string; Roles: Record<string, string>; RoleMappings?: Record<string, unknown> }, store) {
    await requirePool(store, input.IdentityPoolId);
    for (const type of Object.keys(input.Roles)) {
      if (!ROLE_TYPES.has(type)) throw new InvalidParameterException(`Role type '${type}' is not one of authenticated, unauthenticated.`);
    }
    // What the model cannot say: AWS documents AmbiguousRoleResolution as required with either Type, and a Rules
    // mapping without rules could never be evaluated.
    for (const [provider, mapping] of Object.entries(input.RoleMappings ?? {}) as Array<[string, RoleMapping]>) {
      if (mapping.AmbiguousRoleResolution === undefined) {
        throw new InvalidParameterException(`RoleMappings '${provider}': AmbiguousRoleResolution is required when Type is ${mapping.Type}.`);
      }
      if (mapping.Type === 'Rules' && mapping.RulesConfiguration === undefined) {
        throw new InvalidParameterException(`RoleMappings '${provider}': RulesConfiguration is required when Type is Rules.`);
      }
    }
    const roles: PoolRoles = { Roles: input.Roles, ...(input.RoleMappings ? { RoleMappings: input.RoleMappings } : {}) };
    await store.setPoolRoles(input.IdentityPoolId, roles);
    return {};
  },
});
