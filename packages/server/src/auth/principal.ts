// Who is calling: the principals a verified signature can stand for, and the per-operation access rule.
import { NotAuthorizedException } from '../errors.js';

/** The developer (administrator) of this server, holding the COGNISYNC_ACCESS_KEY_ID credentials. */
export interface DeveloperPrincipal {
  kind: 'developer';
  accessKeyId: string;
}

// The identity issue adds `{ kind: 'identity'; identityPoolId; identityId }` here and in `authorize`.
export type Principal = DeveloperPrincipal;
/** Kinds of caller an operation may admit; 'identity' principals arrive with the identity issue. */
export type PrincipalKind = 'developer' | 'identity';

/** What a principal's signing key is, looked up by the access key id of a request. */
export interface SigningCredentials {
  secretAccessKey: string;
  /** Set for temporary credentials; the request must carry the same `x-amz-security-token`. */
  sessionToken?: string;
  principal: Principal;
}

export type CredentialLookup = (accessKeyId: string) => Promise<SigningCredentials | undefined>;

/** Throws NotAuthorizedException unless `principal` may call an operation open to `callers`. */
export function authorize(operationName: string, callers: readonly PrincipalKind[], principal: Principal): void {
  if (!callers.includes(principal.kind)) {
    throw new NotAuthorizedException(`${operationName} cannot be called with ${principal.kind} credentials`);
  }
}

/** The value recorded as LastModifiedBy for changes made by `principal`. */
export function modifiedBy(principal: Principal): string {
  return principal.accessKeyId;
}
