// BulkPublish: queue a replay of every dataset of the pool into its Cognito Stream (developer only).
// Delivery to Kinesis is the outbox worker's job (integrations issue); this records the request and its state.
import { startBulkPublish } from '../../core/bulk-publish.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';

export default defineSyncOperation({
  model: model.BulkPublish,
  callers: ['developer'],
  async handle(context, input: { IdentityPoolId: string }, store) {
    const now = context.now.getTime();
    await store.startBulkPublish(input.IdentityPoolId, (settings) =>
      startBulkPublish(settings.bulkPublish, settings.cognitoStreams?.StreamingStatus, now, context.limits.bulkPublishIntervalSeconds * 1000),
    );
    return { IdentityPoolId: input.IdentityPoolId };
  },
});
