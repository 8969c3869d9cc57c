// Who is calling: the principals a verified signature can stand for, and the per-operation access rule.
import { NotAuthorizedException } from '../errors.js';
import type { PoolSyncSettings } from '../store/store.js';

/** The developer (administrator) of this server, holding the COGNISYNC_ACCESS_KEY_ID credentials. */
export interface DeveloperPrincipal {
  kind: 'developer';
  accessKeyId: string;
}

/** An app user, holding temporary credentials from GetCredentialsForIdentity bound to one identity. */
export interface IdentityPrincipal {
  kind: 'identity';
  identityPoolId: string;
  identityId: string;
  accessKeyId: string;
  /** The sync settings of its pool, read with its credentials for this request (see defineSyncOperation). */
  poolSettings?: PoolSyncSettings;
}

export type Principal = DeveloperPrincipal | IdentityPrincipal;
export type PrincipalKind = Principal['kind'];

/** What a principal's signing key is, looked up by the access key id of a request. */
export interface SigningCredentials {
  secretAccessKey: string;
  /** Set for temporary credentials; the request must carry the same `x-amz-security-token`. */
  sessionToken?: string;
  /** Epoch ms after which the credentials are refused (temporary credentials only). */
  expiration?: number;
  principal: Principal;
}

export type CredentialLookup = (accessKeyId: string) => Promise<SigningCredentials | undefined>;

/**
 * Throws NotAuthorizedException unless `principal` may call an operation open to `callers` with this input:
 * identity credentials reach only their own identity in their own pool. Runs before anything is read.
 */
export function authorize(operationName: string, callers: readonly PrincipalKind[], principal: Principal, input: Record<string, unknown>): void {
  if (!callers.includes(principal.kind)) {
    throw new NotAuthorizedException(`${operationName} cannot be called with ${principal.kind === 'developer' ? 'developer' : 'Cognito identity'} credentials.`);
  }
  if (principal.kind !== 'identity') return;
  if (input.IdentityPoolId !== undefined && input.IdentityPoolId !== principal.identityPoolId) {
    throw new NotAuthorizedException(`Access to IdentityPool '${String(input.IdentityPoolId).slice(0, 64)}' is forbidden.`);
  }
  if (input.IdentityId !== undefined && input.IdentityId !== principal.identityId) {
    throw new NotAuthorizedException(`Access to Identity '${String(input.IdentityId).slice(0, 64)}' is forbidden.`);
  }
}

/** The value recorded as LastModifiedBy for changes made by `principal`. */
export function modifiedBy(principal: Principal): string {
  return principal.kind === 'identity' ? principal.identityId : principal.accessKeyId;
}
