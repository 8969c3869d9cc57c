// The Cognito Identity operations cognisync serves (pool administration; identities come with the identity issue).
import type { Operation } from '../operation.js';
import CreateIdentityPool from './create-identity-pool.js';
import DeleteIdentityPool from './delete-identity-pool.js';
import DescribeIdentityPool from './describe-identity-pool.js';
import ListIdentityPools from './list-identity-pools.js';
import UpdateIdentityPool from './update-identity-pool.js';

export const identityOperations: readonly Operation[] = [CreateIdentityPool, DescribeIdentityPool, ListIdentityPools, UpdateIdentityPool, DeleteIdentityPool];
