// UnlinkIdentity (unsigned): an identity, proving itself with its Logins, drops the providers it lists.
import { InvalidParameterException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { authenticateIdentity, requireIdentity } from './identity-access.js';

export default defineOperation({
  service: 'identity',
  model: model.UnlinkIdentity,
  callers: [],
  async handle(context, input: { IdentityId: string; Logins: Record<string, string>; LoginsToRemove: string[] }, store) {
    const { pool, identity } = await authenticateIdentity(context, store, await requireIdentity(store, input.IdentityId), input.Logins);
    for (const providerName of input.LoginsToRemove) {
      if (providerName === pool.description.DeveloperProviderName) throw new InvalidParameterException('Developer logins are unlinked with UnlinkDeveloperIdentity.');
      await store.unlinkLogins(identity.identityId, providerName, undefined, context.now.getTime());
    }
    return {};
  },
});
