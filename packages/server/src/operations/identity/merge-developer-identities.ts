// MergeDeveloperIdentities (developer only): fold the source user's identity into the destination user's.
// The source's datasets survive as the destination's `<dataset>.<sourceIdentityId>` (MergedDatasetNames).
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { developerProvider, providerRule, requirePool } from './identity-access.js';

interface Input {
  SourceUserIdentifier: string;
  DestinationUserIdentifier: string;
  DeveloperProviderName: string;
  IdentityPoolId: string;
}

export default defineOperation({
  service: 'identity',
  model: model.MergeDeveloperIdentities,
  callers: ['developer'],
  async handle(context, input: Input, store) {
    const pool = await requirePool(store, input.IdentityPoolId);
    developerProvider(pool, input.DeveloperProviderName);
    const find = async (userIdentifier: string) => {
      const owner = await store.findIdentityByLogin(pool.identityPoolId, { providerName: input.DeveloperProviderName, userIdentifier });
      if (!owner) throw new ResourceNotFoundException(`Developer user '${userIdentifier}' not found.`);
      return owner;
    };
    const source = await find(input.SourceUserIdentifier);
    const destination = await find(input.DestinationUserIdentifier);
    if (source !== destination) await store.mergeIdentities(pool.identityPoolId, source, destination, context.now.getTime(), providerRule(pool));
    return { IdentityId: destination };
  },
});
