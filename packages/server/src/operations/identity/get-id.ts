// GetId (unsigned): the identity for a set of logins — existing, newly created, or (when the logins belong
// to different identities) the merge of them — or a new unauthenticated identity when the pool allows it.
import { NotAuthorizedException, ResourceConflictException } from '../../errors.js';
import { COGNITO_LOGIN_PROVIDER } from '../../auth/login-verifier.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { providerClash } from '../../core/provider-rule.js';
import type { IdentityPoolRecord, IdentityRecord, Login, Store } from '../../store/store.js';
import { allowsUnauthenticated, INACCESSIBLE_MESSAGE, newIdentityId, predatesUnlink, providerRule, requirePool, twoUsersOf } from './identity-access.js';

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
    // Concurrent first sign-ins of one user (tabs, a retry after a timeout) race to create or link its identity: the
    // loser resolves again and finds the winner's, instead of keeping an identity of its own without the login.
    for (let attempt = 1; ; attempt++) {
      const resolved = await resolveLogins(store, pool, logins, now);
      if (resolved) return { IdentityId: resolved };
      if (attempt === 3) throw new ResourceConflictException('The logins were linked to other identities while this request linked them; retry it.');
    }
  },
});

/**
 * The identity the logins name, created, merged and linked as needed; undefined when a login was linked to another
 * identity meanwhile (nothing of this attempt is left then: creation and linking are all or nothing).
 */
async function resolveLogins(store: Store, pool: IdentityPoolRecord, logins: readonly Login[], now: number): Promise<string | undefined> {
  const { identityPoolId } = pool;
  // A cognisync OpenID token names its identity directly, which must still exist (a token outlives a deleted or
  // merged-away identity); other logins are looked up by (provider, subject).
  const owners = new Map<string, IdentityRecord>();
  let unauthenticatedOnly = true;
  for (const login of logins) {
    if (login.providerName === COGNITO_LOGIN_PROVIDER) {
      const named = await store.getIdentity(login.userIdentifier);
      if (!named || named.identityPoolId !== identityPoolId) throw new NotAuthorizedException('Invalid login token. The identity it was issued for no longer exists.');
      if (named.inaccessible) throw new NotAuthorizedException(INACCESSIBLE_MESSAGE);
      if (predatesUnlink(login, named)) throw new NotAuthorizedException("Invalid login token. It was issued before the identity's last login was unlinked.");
      // As for GetCredentialsForIdentity: a token of an identity's unauthenticated days does not stand for it once
      // a user's login is linked (merging it, or linking more logins to it, would hand the account over).
      if (named.logins.length > 0 && login.authenticated !== true) {
        throw new NotAuthorizedException("Logins don't match. The token was issued to the identity before it was authenticated.");
      }
      if (named.logins.length > 0) unauthenticatedOnly = false;
      owners.set(named.identityId, named);
    } else {
      unauthenticatedOnly = false;
      const owner = await store.findIdentityByLogin(identityPoolId, login);
      const identity = owner === undefined || owners.has(owner) ? undefined : await store.getIdentity(owner);
      if (identity) owners.set(owner!, identity);
    }
  }
  // Only tokens of unauthenticated identities: as unauthenticated as a GetId without Logins.
  if (unauthenticatedOnly && !allowsUnauthenticated(pool)) throw new NotAuthorizedException('Unauthenticated access is not supported for this identity pool.');
  const linkable = logins.filter((login) => login.providerName !== COGNITO_LOGIN_PROVIDER);
  if (owners.size === 0) {
    const identityId = newIdentityId(identityPoolId);
    const taken = await store.createIdentity({ identityPoolId, identityId, logins: linkable, creationDate: now, lastModifiedDate: now });
    return taken ? undefined : identityId;
  }
  // Logins that arrive together belong together: other identities they name are merged into the first, unless
  // that would give one identity two users of one provider: checked for the whole request before the first merge
  // (each merge commits on its own), and again by the store inside each write, for what changed meanwhile.
  const [destination, ...others] = [...owners.values()];
  const rule = providerRule(pool);
  const held = [...destination!.logins];
  for (const adding of [...others.map((other) => other.logins), linkable]) {
    const clash = providerClash(held, adding, rule);
    if (clash) throw twoUsersOf(clash);
    held.push(...adding);
  }
  for (const other of others) await store.mergeIdentities(identityPoolId, other.identityId, destination!.identityId, now, rule);
  // The identity must hold nothing beyond what was read and merged (a guest that a user signed in on meanwhile is
  // theirs), and still hold the logins it was found by (one unlinked meanwhile is not linked back).
  const foundBy = linkable.filter((login) => destination!.logins.some((l) => l.providerName === login.providerName && l.userIdentifier === login.userIdentifier));
  const refused = await store.linkLogins(identityPoolId, destination!.identityId, linkable, now, rule, { holdsOnly: held, stillHolds: foundBy });
  if (refused && 'providerInUse' in refused) throw twoUsersOf(refused.providerInUse);
  return refused ? undefined : destination!.identityId;
}
