// UnlinkDeveloperIdentity (developer only): detach one developer user from an identity.
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { developerProvider, requirePool, requirePoolIdentity } from './identity-access.js';

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
    developerProvider(pool, input.DeveloperProviderName);
    const identity = await requirePoolIdentity(store, pool, input.IdentityId);
    const removed = await store.unlinkLogins(identity.identityId, input.DeveloperProviderName, input.DeveloperUserIdentifier, context.now.getTime());
    if (removed === 0) throw new ResourceNotFoundException(`Developer user '${input.DeveloperUserIdentifier}' is not linked to identity ${input.IdentityId}.`);
    return {};
  },
});
