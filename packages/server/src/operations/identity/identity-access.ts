// Lookups and login checks shared by the Cognito Identity operations.
import { InvalidParameterException, NotAuthorizedException, ResourceConflictException, ResourceNotFoundException, type ServiceError } from '../../errors.js';
import { COGNITO_LOGIN_PROVIDER } from '../../auth/login-verifier.js';
import type { IdentityPoolRecord, IdentityRecord, Login, ProviderRule, Store } from '../../store/store.js';
import type { OperationContext } from '../operation.js';

export async function requirePool(store: Store, identityPoolId: string): Promise<IdentityPoolRecord> {
  const pool = await store.getIdentityPool(identityPoolId);
  if (!pool) throw new ResourceNotFoundException(`IdentityPool '${identityPoolId}' not found.`);
  return pool;
}

export async function requireIdentity(store: Store, identityId: string): Promise<IdentityRecord> {
  const identity = await store.getIdentity(identityId);
  if (!identity) throw new ResourceNotFoundException(`Identity '${identityId}' not found.`);
  return identity;
}

/**
 * The pool's DeveloperProviderName; InvalidParameterException when it has none, or when `named` (a request's
 * DeveloperProviderName) is not it.
 */
export function developerProvider(pool: IdentityPoolRecord, named?: string): string {
  const providerName = pool.description.DeveloperProviderName as string | undefined;
  if (!providerName) throw new InvalidParameterException(`Identity pool ${pool.identityPoolId} has no DeveloperProviderName.`);
  if (named !== undefined && named !== providerName) {
    throw new InvalidParameterException(`DeveloperProviderName '${named}' is not the developer provider of identity pool ${pool.identityPoolId}.`);
  }
  return providerName;
}

/** An identity of the given pool (ResourceNotFoundException for unknown ids and other pools' identities). */
export async function requirePoolIdentity(store: Store, pool: IdentityPoolRecord, identityId: string): Promise<IdentityRecord> {
  const identity = await store.getIdentity(identityId);
  if (!identity || identity.identityPoolId !== pool.identityPoolId) throw new ResourceNotFoundException(`Identity '${identityId}' not found.`);
  return identity;
}

export function allowsUnauthenticated(pool: IdentityPoolRecord): boolean {
  return pool.description.AllowUnauthenticatedIdentities === true;
}

export const INACCESSIBLE_MESSAGE = 'Identity is inaccessible: its last login was unlinked.';

/**
 * Whether a presented Cognito token was issued before the identity's last login was unlinked: it was the unlinked
 * user's, and proves nothing once the developer links the identity to someone else.
 */
export function predatesUnlink(login: Login, identity: IdentityRecord): boolean {
  return identity.tokensNotBefore !== undefined && (login.issuedAt ?? 0) < identity.tokensNotBefore;
}

/**
 * The unsigned calls (GetCredentialsForIdentity, GetOpenIdToken, UnlinkIdentity) prove who they are with
 * Logins. An authenticated identity must present at least one valid login of its own; an unauthenticated
 * one needs a pool that allows them, and logins it presents (unowned) are linked to it, making it authenticated.
 * An identity whose last login was unlinked is inaccessible, as AWS documents for both unlink operations: it has
 * no login left to present, and its id (which is no secret) or an old token of it must not open it as an
 * unauthenticated one. Only the developer can link it a login again.
 */
export async function authenticateIdentity(
  context: OperationContext,
  store: Store,
  identity: IdentityRecord,
  logins: Record<string, string> | undefined,
): Promise<{ pool: IdentityPoolRecord; identity: IdentityRecord; presented: Login[] }> {
  if (identity.inaccessible) throw new NotAuthorizedException(INACCESSIBLE_MESSAGE);
  const pool = await requirePool(store, identity.identityPoolId);
  const presented = logins && Object.keys(logins).length > 0 ? await context.identity.logins.verify(pool, logins) : [];
  // A Cognito token proves an authenticated identity only if it was issued to it as one: a token from its
  // unauthenticated days (anyone who saw the id then could have asked for one) must not open it after a login.
  const provesIdentity = (login: Login) =>
    login.providerName === COGNITO_LOGIN_PROVIDER
      ? login.userIdentifier === identity.identityId && login.authenticated === true && !predatesUnlink(login, identity)
      : identity.logins.some((own) => own.providerName === login.providerName && own.userIdentifier === login.userIdentifier);

  // An unsigned call counts against the identity it names only once it has shown it may act for it. Counted on the
  // name alone, anyone who knew an identity id (no secret: records carry it in LastModifiedBy) drained that user's
  // rate with refused calls, and the user's own signed requests, which share the bucket, were refused (QA, 2026-12-07).
  const proved = () => {
    if (!context.principal) context.rateLimit(pool.identityPoolId, identity.identityId);
  };
  if (identity.logins.length > 0) {
    if (!presented.some(provesIdentity)) {
      throw new NotAuthorizedException("Logins don't match. Please include at least one valid login for this identity or identity pool.");
    }
    proved();
    return { pool, identity, presented };
  }
  for (const login of presented) {
    if (login.providerName === COGNITO_LOGIN_PROVIDER && login.userIdentifier !== identity.identityId) {
      throw new NotAuthorizedException("Logins don't match. The token was issued for another identity.");
    }
  }
  // An identity without logins is unauthenticated, and its own Cognito token (amr "unauthenticated") proves no
  // more than that: only a login of another provider, linked now, makes it authenticated.
  const linkable = presented.filter((login) => login.providerName !== COGNITO_LOGIN_PROVIDER);
  if (linkable.length === 0) {
    if (!allowsUnauthenticated(pool)) throw new NotAuthorizedException('Unauthenticated access is not supported for this identity pool.');
    proved();
    return { pool, identity, presented };
  }
  // Before the link is written: the logins verified prove a user, who may link them to this guest identity.
  proved();
  // Still unauthenticated when linked (holding no login): two users signing in on one guest at once get one each.
  const refused = await store.linkLogins(pool.identityPoolId, identity.identityId, linkable, context.now.getTime(), providerRule(pool), { holdsOnly: [] });
  if (refused) {
    if ('ownedBy' in refused) throw new NotAuthorizedException(`A login presented already belongs to identity ${refused.ownedBy}.`);
    if ('providerInUse' in refused) throw twoUsersOf(refused.providerInUse);
    throw new NotAuthorizedException("Logins don't match. Please include at least one valid login for this identity or identity pool.");
  }
  return { pool, identity: (await store.getIdentity(identity.identityId)) ?? identity, presented };
}

/**
 * The pool's rule for links and merges (ProviderRule, kept by the store inside each write): an identity never holds
 * two different users of one provider but the pool's developer provider. AWS documents it for
 * MergeDeveloperIdentities ("If the users to be merged are associated with the same public provider, but as two
 * different users, an exception will be thrown"), and a Logins map has one token per provider.
 */
export function providerRule(pool: IdentityPoolRecord): ProviderRule {
  return { developerProvider: pool.description.DeveloperProviderName as string | undefined };
}

/** A link or merge the provider rule refused. */
export function twoUsersOf(providerName: string): ServiceError {
  return new ResourceConflictException(`Two different users of ${providerName} cannot belong to one identity.`);
}

/** A new identity id: REGION:GUID with the pool's region, as Cognito issues them. */
export function newIdentityId(identityPoolId: string): string {
  return `${identityPoolId.split(':')[0]}:${crypto.randomUUID()}`;
}

/** The `amr` claim of an identity's OpenID tokens. */
export function authenticationMethods(identity: IdentityRecord): string[] {
  return identity.logins.length === 0 ? ['unauthenticated'] : ['authenticated', ...new Set(identity.logins.map((login) => login.providerName))];
}
