// GetId (unsigned): the identity for a set of logins — existing, newly created, or (when the logins belong
// to different identities) the merge of them — or a new unauthenticated identity when the pool allows it.
import { NotAuthorizedException } from '../../errors.js';
import { COGNITO_LOGIN_PROVIDER } from '../../auth/login-verifier.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { allowsUnauthenticated, INACCESSIBLE_MESSAGE, newIdentityId, predatesUnlink, requirePool } from './identity-access.js';

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
    // A cognisync OpenID token names its identity directly, which must still exist (a token outlives a deleted or
    // merged-away identity); other logins are looked up by (provider, subject).
    const owners = new Set<string>();
    let unauthenticatedOnly = true;
    for (const login of logins) {
      if (login.providerName === COGNITO_LOGIN_PROVIDER) {
        const named = await store.getIdentity(login.userIdentifier);
        if (!named || named.identityPoolId !== pool.identityPoolId) throw new NotAuthorizedException('Invalid login token. The identity it was issued for no longer exists.');
        if (named.inaccessible) throw new NotAuthorizedException(INACCESSIBLE_MESSAGE);
        if (predatesUnlink(login, named)) throw new NotAuthorizedException("Invalid login token. It was issued before the identity's last login was unlinked.");
        if (named.logins.length > 0) unauthenticatedOnly = false;
        owners.add(named.identityId);
      } else {
        unauthenticatedOnly = false;
        const owner = await store.findIdentityByLogin(pool.identityPoolId, login);
        if (owner) owners.add(owner);
      }
    }
    // Only tokens of unauthenticated identities: as unauthenticated as a GetId without Logins.
    if (unauthenticatedOnly && !allowsUnauthenticated(pool)) throw new NotAuthorizedException('Unauthenticated access is not supported for this identity pool.');
    const [identityId = newIdentityId(pool.identityPoolId), ...others] = [...owners];
    if (owners.size === 0) {
      await store.createIdentity({ identityPoolId: pool.identityPoolId, identityId, logins: [], creationDate: now, lastModifiedDate: now });
    }
    // Logins that arrive together belong together: other identities they name are merged into the first.
    for (const other of others) await store.mergeIdentities(pool.identityPoolId, other, identityId, now);
    for (const login of logins) {
      if (login.providerName !== COGNITO_LOGIN_PROVIDER) await store.linkLogin(pool.identityPoolId, identityId, login, now);
    }
    return { IdentityId: identityId };
  },
});
