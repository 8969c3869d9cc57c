// GetOpenIdTokenForDeveloperIdentity (developer only): register or find the identity of a user of the
// pool's developer provider, optionally linking it to an existing identity, and return an OpenID token.
import { DeveloperUserAlreadyRegisteredException, InvalidParameterException, ResourceConflictException, ResourceNotFoundException } from '../../errors.js';
import { COGNITO_LOGIN_PROVIDER } from '../../auth/login-verifier.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import type { IdentityPoolRecord, IdentityRecord, Login, Store } from '../../store/store.js';
import { authenticationMethods, developerProvider, newIdentityId, providerRule, requirePool, requirePoolIdentity, twoUsersOf } from './identity-access.js';

interface Input {
  IdentityPoolId: string;
  IdentityId?: string;
  Logins: Record<string, string>;
  PrincipalTags?: Record<string, string>;
  TokenDuration?: number;
}

const developerUserShape = model.LookupDeveloperIdentity.input.members.DeveloperUserIdentifier!.shape;
const DEVELOPER_USER_MAX = developerUserShape.type === 'string' ? developerUserShape.max! : 1024;

export default defineOperation({
  service: 'identity',
  model: model.GetOpenIdTokenForDeveloperIdentity,
  callers: ['developer'],
  async handle(context, input: Input, store) {
    const pool = await requirePool(store, input.IdentityPoolId);
    const providerName = developerProvider(pool);
    // Own keys only: a provider named like an Object.prototype member (`constructor`) must not read the prototype.
    const developerUser = Object.hasOwn(input.Logins, providerName) ? input.Logins[providerName] : undefined;
    if (developerUser === undefined) throw new InvalidParameterException(`Logins must contain the pool's developer provider ${providerName}.`);
    // The value is a DeveloperUserIdentifier, which the operations that name one take up to the model's limit (1,024),
    // not a login token (50,000): a longer one, once linked, could never be looked up, unlinked or merged.
    // AWS does not say; refused as a validation error (the value left out, as for every Logins value).
    if (developerUser.length > DEVELOPER_USER_MAX) {
      throw new InvalidParameterException(`1 validation error detected: Value at 'logins.${providerName}.value' failed to satisfy constraint: Member must have length less than or equal to ${DEVELOPER_USER_MAX}`);
    }
    const otherLogins = Object.fromEntries(Object.entries(input.Logins).filter(([name]) => name !== providerName));
    // Cognito's own tokens name an identity; they are not logins to store (GetId does not link them either).
    const verified = (await context.identity.logins.verify(pool, otherLogins)).filter((login) => login.providerName !== COGNITO_LOGIN_PROVIDER);
    const logins = [{ providerName, userIdentifier: developerUser }, ...verified];
    const now = context.now.getTime();

    const identity = await registerUser(store, pool, input.IdentityId, logins, now);
    const token = await context.identity.openIdTokens.issue(
      { identityPoolId: pool.identityPoolId, identityId: identity.identityId, amr: authenticationMethods(identity), ...(input.PrincipalTags ? { principalTags: input.PrincipalTags } : {}) },
      input.TokenDuration ?? context.limits.developerTokenTtlSeconds,
      now,
    );
    return { IdentityId: identity.identityId, Token: token };
  },
});

/**
 * Lookups of the user's identity a call makes at most: each further one follows a change another call made meanwhile
 * (a merge, a deletion, an unlink, a concurrent first sign-in). Sign-ins racing a stream of merges of the user's
 * identity missed it 3 times in a row (QA: 3-19 of 1,200 on PostgreSQL).
 */
const ATTEMPTS = 8;

/**
 * The identity of the developer user `logins[0]` (with the other logins linked to it, all or none): `identityId`'s
 * when given, else the user's own, else a new one. A concurrent first call for the same user that created its
 * identity first wins, and this call takes that identity instead of leaving one of its own behind.
 */
async function registerUser(store: Store, pool: IdentityPoolRecord, identityId: string | undefined, logins: readonly Login[], now: number): Promise<IdentityRecord> {
  const developerLogin = logins[0]!;
  const alreadyRegistered = (owner: string) =>
    new DeveloperUserAlreadyRegisteredException(`Developer user '${developerLogin.userIdentifier}' is already registered with identity ${owner}.`);
  for (let attempt = 1; ; attempt++) {
    const owner = await store.findIdentityByLogin(pool.identityPoolId, developerLogin);
    const target = identityId ?? owner;
    if (target !== undefined) {
      try {
        const identity = await requirePoolIdentity(store, pool, target);
        if (owner && owner !== identity.identityId) throw alreadyRegistered(owner);
        // Found as the user's, the identity must still hold the user: an UnlinkDeveloperIdentity meanwhile is not undone
        // (the user is then registered anew). Named by the caller, it is linked whatever it held.
        const refused = await store.linkLogins(pool.identityPoolId, identity.identityId, logins, now, providerRule(pool), identityId === undefined ? { stillHolds: [developerLogin] } : undefined);
        if (refused && 'providerInUse' in refused) throw twoUsersOf(refused.providerInUse);
        if (refused && 'changedMeanwhile' in refused) {
          if (attempt < ATTEMPTS) continue;
          throw new ResourceConflictException(`Developer user '${developerLogin.userIdentifier}' was unlinked or moved while this request registered it; retry it.`);
        }
        if (refused && 'ownedBy' in refused) {
          // The user's identity was merged into another meanwhile (the user moved with it): look again.
          const movedTo = identityId === undefined ? await store.findIdentityByLogin(pool.identityPoolId, developerLogin) : undefined;
          if (movedTo !== undefined && movedTo !== owner && attempt < ATTEMPTS) continue;
          throw new DeveloperUserAlreadyRegisteredException(`A login given is already registered with identity ${refused.ownedBy}.`);
        }
        return await requirePoolIdentity(store, pool, identity.identityId);
      } catch (error) {
        // The user's own identity went (deleted, or merged into another) since it was looked up: look again.
        if (identityId === undefined && error instanceof ResourceNotFoundException) {
          if (attempt < ATTEMPTS) continue;
          throw new ResourceConflictException(`Developer user '${developerLogin.userIdentifier}' was unlinked or moved while this request registered it; retry it.`);
        }
        throw error;
      }
    }
    const created = newIdentityId(pool.identityPoolId);
    const taken = await store.createIdentity({ identityPoolId: pool.identityPoolId, identityId: created, logins: [...logins], creationDate: now, lastModifiedDate: now });
    if (!taken) return requirePoolIdentity(store, pool, created);
    // Another call registered the developer user first: take its identity. Another login given belonging to
    // someone else is this call's mistake.
    if (attempt === ATTEMPTS || !(await store.findIdentityByLogin(pool.identityPoolId, developerLogin))) {
      throw new DeveloperUserAlreadyRegisteredException(`A login given is already registered with identity ${taken.ownedBy}.`);
    }
  }
}
