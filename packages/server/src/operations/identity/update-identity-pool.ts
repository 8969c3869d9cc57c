// UpdateIdentityPool: replace a pool's configuration (members not given return to their defaults, as on
// AWS), except DeveloperProviderName, which once set can never change.
import { InvalidParameterException, ResourceNotFoundException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { describe, identityPoolOutput, type IdentityPoolInput } from './identity-pool-shape.js';

export default defineOperation({
  service: 'identity',
  model: model.UpdateIdentityPool,
  callers: ['developer'],
  async handle(context, input: IdentityPoolInput & { IdentityPoolId: string }, store) {
    const existing = await store.getIdentityPool(input.IdentityPoolId);
    if (!existing) throw new ResourceNotFoundException(`IdentityPool '${input.IdentityPoolId}' not found.`);
    const description = describe(input);
    const previousProvider = existing.description.DeveloperProviderName;
    if (previousProvider !== undefined) {
      if (description.DeveloperProviderName !== undefined && description.DeveloperProviderName !== previousProvider) {
        throw new InvalidParameterException('DeveloperProviderName cannot be changed once it is set.');
      }
      description.DeveloperProviderName = previousProvider;
    }
    const pool = { identityPoolId: input.IdentityPoolId, identityPoolName: input.IdentityPoolName, description, lastModifiedDate: context.now.getTime() };
    if (!(await store.updateIdentityPool(pool))) throw new ResourceNotFoundException(`IdentityPool '${input.IdentityPoolId}' not found.`);
    return identityPoolOutput({ ...pool, creationDate: existing.creationDate });
  },
});
