// The rule every link and merge of logins keeps: an identity holds at most one user of each provider but the pool's
// developer provider (several developer users may share an identity, as LookupDeveloperIdentity lists). Pure: the
// stores apply it inside their writes, GetId to the whole of a request before its first merge.
import type { LinkExpectation, Login, ProviderRule } from '../store/store.js';

/**
 * The provider of one of `adding` that `held` has another user of, if any. Only what is added is checked: an
 * identity an older build gave two users of one provider keeps them, and either still signs in.
 */
export function providerClash(held: readonly Login[], adding: readonly Login[], rule: ProviderRule): string | undefined {
  const clash = adding.find(
    (login) => login.providerName !== rule.developerProvider && held.some((h) => h.providerName === login.providerName && h.userIdentifier !== login.userIdentifier),
  );
  return clash?.providerName;
}

/**
 * Whether an identity holding `held` now is no longer as its caller read it (LinkExpectation): it holds a login
 * beyond `holdsOnly` and `adding`, or has lost one of `stillHolds`.
 */
export function changedSinceRead(held: readonly Login[], expect: LinkExpectation, adding: readonly Login[]): boolean {
  const same = (a: Login) => (b: Login) => a.providerName === b.providerName && a.userIdentifier === b.userIdentifier;
  if (expect.holdsOnly && held.some((login) => !expect.holdsOnly!.some(same(login)) && !adding.some(same(login)))) return true;
  return expect.stillHolds?.some((login) => !held.some(same(login))) ?? false;
}
