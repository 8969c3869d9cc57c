// BulkPublish: start replaying every dataset of the pool into its Cognito Stream (developer only). The job
// runs from the outbox (outbox/bulk-publish-job.ts), so it is IN_PROGRESS from this answer until delivered.
import { startBulkPublish } from '../../core/bulk-publish.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';

export default defineSyncOperation({
  model: model.BulkPublish,
  callers: ['developer'],
  async handle(context, input: { IdentityPoolId: string }, store) {
    const now = context.now.getTime();
    await store.startBulkPublish(
      input.IdentityPoolId,
      (settings) => startBulkPublish(settings.bulkPublish, settings.cognitoStreams, now, context.limits.bulkPublishIntervalSeconds * 1000),
      now,
    );
    context.integrations.outbox.notify();
    return { IdentityPoolId: input.IdentityPoolId };
  },
});
