// GetId (unsigned): the identity for a set of logins — existing, newly created, or (when the logins belong
// to different identities) the merge of them — or a new unauthenticated identity when the pool allows it.
import { NotAuthorizedException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { allowsUnauthenticated, newIdentityId, requirePool } from './identity-access.js';

export default defineOperation({
  service: 'identity',
  model: model.GetId,
  callers: [],
  async handle(context, input: { IdentityPoolId: string; Logins?: Record<string, string>; AccountId?: string }, store) {
    const pool = await requirePool(store, input.IdentityPoolId);
    const now = context.now.getTime();
    const logins = input.Logins && Object.keys(input.Logins).length > 0 ? await context.identity.logins.verify(pool, input.Logins) : [];
    if (logins.length === 0) {
      if (!allowsUnauthenticated(pool)) throw new NotAuthorizedException('Unauthenticated access is not supported for this identity pool.');
      const identityId = newIdentityId(pool.identityPoolId);
      await store.createIdentity({ identityPoolId: pool.identityPoolId, identityId, logins: [], creationDate: now, lastModifiedDate: now });
      return { IdentityId: identityId };
    }
    // A cognisync OpenID token names its identity directly; other logins are looked up by (provider, subject).
    const owners = new Set<string>();
    for (const login of logins) {
      const owner = login.providerName === 'cognito-identity.amazonaws.com' ? login.userIdentifier : await store.findIdentityByLogin(pool.identityPoolId, login);
      if (owner) owners.add(owner);
    }
    const [identityId = newIdentityId(pool.identityPoolId), ...others] = [...owners];
    if (owners.size === 0) {
      await store.createIdentity({ identityPoolId: pool.identityPoolId, identityId, logins: [], creationDate: now, lastModifiedDate: now });
    }
    // Logins that arrive together belong together: other identities they name are merged into the first.
    for (const other of others) await store.mergeIdentities(pool.identityPoolId, other, identityId, now);
    for (const login of logins) {
      if (login.providerName !== 'cognito-identity.amazonaws.com') await store.linkLogin(pool.identityPoolId, identityId, login, now);
    }
    return { IdentityId: identityId };
  },
});
