// ListIdentityPools: pools by id, MaxResults (1..60) at a time.
import { decodePageToken, encodePageToken } from '../../core/page-token.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { isNamePosition } from '../pagination.js';

export default defineOperation({
  service: 'identity',
  model: model.ListIdentityPools,
  callers: ['developer'],
  async handle(_context, input: { MaxResults: number; NextToken?: string }, store) {
    const after = input.NextToken === undefined ? undefined : decodePageToken(input.NextToken, isNamePosition).n;
    const pools = await store.listIdentityPools(after, input.MaxResults + 1);
    const page = pools.slice(0, input.MaxResults);
    const last = page[page.length - 1];
    return {
      IdentityPools: page.map((pool) => ({ IdentityPoolId: pool.identityPoolId, IdentityPoolName: pool.identityPoolName })),
      NextToken: pools.length > input.MaxResults && last ? encodePageToken({ n: last.identityPoolId }) : undefined,
    };
  },
});
