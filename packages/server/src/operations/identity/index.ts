// The Cognito Identity operations cognisync serves: pool administration, identities, logins, tokens, credentials.
import type { Operation } from '../operation.js';
import CreateIdentityPool from './create-identity-pool.js';
import DeleteIdentities from './delete-identities.js';
import DeleteIdentityPool from './delete-identity-pool.js';
import DescribeIdentity from './describe-identity.js';
import DescribeIdentityPool from './describe-identity-pool.js';
import GetCredentialsForIdentity from './get-credentials-for-identity.js';
import GetId from './get-id.js';
import GetIdentityPoolRoles from './get-identity-pool-roles.js';
import GetOpenIdToken from './get-open-id-token.js';
import GetOpenIdTokenForDeveloperIdentity from './get-open-id-token-for-developer-identity.js';
import ListIdentities from './list-identities.js';
import ListIdentityPools from './list-identity-pools.js';
import LookupDeveloperIdentity from './lookup-developer-identity.js';
import MergeDeveloperIdentities from './merge-developer-identities.js';
import SetIdentityPoolRoles from './set-identity-pool-roles.js';
import UnlinkDeveloperIdentity from './unlink-developer-identity.js';
import UnlinkIdentity from './unlink-identity.js';
import UpdateIdentityPool from './update-identity-pool.js';

export const identityOperations: readonly Operation[] = [
  CreateIdentityPool, DescribeIdentityPool, ListIdentityPools, UpdateIdentityPool, DeleteIdentityPool,
  GetId, GetCredentialsForIdentity, GetOpenIdToken, GetOpenIdTokenForDeveloperIdentity, LookupDeveloperIdentity,
  MergeDeveloperIdentities, UnlinkDeveloperIdentity, UnlinkIdentity, ListIdentities, DescribeIdentity, DeleteIdentities,
  GetIdentityPoolRoles, SetIdentityPoolRoles,
];
