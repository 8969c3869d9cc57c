// UnlinkDeveloperIdentity (developer only): detach one developer user from an identity.
import { InvalidParameterException, ResourceNotFoundException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { requireIdentity, requirePool } from './identity-access.js';

interface Input {
  IdentityId: string;
  IdentityPoolId: string;
  DeveloperProviderName: string;
  DeveloperUserIdentifier: string;
}

export default defineOperation({
  service: 'identity',
  model: model.UnlinkDeveloperIdentity,
  callers: ['developer'],
  async handle(context, input: Input, store) {
    const pool = await requirePool(store, input.IdentityPoolId);
    if (pool.description.DeveloperProviderName !== input.DeveloperProviderName) {
      throw new InvalidParameterException(`DeveloperProviderName '${input.DeveloperProviderName}' is not the developer provider of identity pool ${pool.identityPoolId}.`);
    }
    const identity = await requireIdentity(store, input.IdentityId);
    if (identity.identityPoolId !== pool.identityPoolId) throw new ResourceNotFoundException(`Identity '${input.IdentityId}' not found.`);
    const removed = await store.unlinkLogins(identity.identityId, input.DeveloperProviderName, input.DeveloperUserIdentifier, context.now.getTime());
    if (removed === 0) throw new ResourceNotFoundException(`Developer user '${input.DeveloperUserIdentifier}' is not linked to identity ${input.IdentityId}.`);
    return {};
  },
});
