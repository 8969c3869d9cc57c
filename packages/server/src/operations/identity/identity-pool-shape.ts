// The Cognito Identity `IdentityPool` shape ↔ the store's pool record.
import type { IdentityPoolRecord } from '../../store/store.js';

export interface IdentityPoolInput {
  IdentityPoolName: string;
  AllowUnauthenticatedIdentities: boolean;
  [member: string]: unknown;
}

export function identityPoolOutput(pool: IdentityPoolRecord) {
  return { IdentityPoolId: pool.identityPoolId, ...pool.description };
}

/** The members stored as the pool's description: everything but the id. */
export function describe(input: IdentityPoolInput): Record<string, unknown> {
  const { IdentityPoolId: _id, ...description } = input;
  return description;
}
