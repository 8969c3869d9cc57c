// ListIdentityPoolUsage: usage of every pool, by pool id, paginated (developer only).
import { decodePageToken, encodePageToken } from '../../core/page-token.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineOperation } from '../operation.js';
import { isNamePosition, pageSize } from '../pagination.js';
import { poolUsageOutput } from './output-shapes.js';

export default defineOperation({
  service: 'sync',
  model: model.ListIdentityPoolUsage,
  callers: ['developer'],
  async handle(context, input: { NextToken?: string; MaxResults?: number }, store) {
    const limit = pageSize(input.MaxResults, context.limits.listPoolUsageDefaultPage, context.limits.listPoolUsageMaxPage);
    const after = input.NextToken === undefined ? undefined : decodePageToken(input.NextToken, isNamePosition).n;
    const usages = await store.listIdentityPoolUsage(after, limit + 1);
    const page = usages.slice(0, limit);
    const last = page[page.length - 1];
    return {
      IdentityPoolUsages: page.map(poolUsageOutput),
      MaxResults: limit,
      Count: page.length,
      NextToken: usages.length > limit && last ? encodePageToken({ n: last.identityPoolId }) : undefined,
    };
  },
});
