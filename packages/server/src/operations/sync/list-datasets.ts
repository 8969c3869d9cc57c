// ListDatasets: an identity's live datasets by name, paginated (an unknown identity simply has none).
import { decodePageToken, encodePageToken } from '../../core/page-token.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';
import { isNamePosition, pageSize } from '../pagination.js';
import { datasetOutput } from './output-shapes.js';

export default defineSyncOperation({
  model: model.ListDatasets,
  callers: ['identity', 'developer'],
  async handle(context, input: { IdentityPoolId: string; IdentityId: string; NextToken?: string; MaxResults?: number }, store) {
    const limit = pageSize(input.MaxResults, context.limits.listDatasetsDefaultPage, context.limits.listDatasetsMaxPage);
    const after = input.NextToken === undefined ? undefined : decodePageToken(input.NextToken, isNamePosition).n;
    const datasets = await store.listDatasets(input.IdentityPoolId, input.IdentityId, after, limit + 1);
    const page = datasets.slice(0, limit);
    const last = page[page.length - 1];
    return {
      Datasets: page.map(datasetOutput),
      Count: page.length,
      NextToken: datasets.length > limit && last ? encodePageToken({ n: last.datasetName }) : undefined,
    };
  },
});
