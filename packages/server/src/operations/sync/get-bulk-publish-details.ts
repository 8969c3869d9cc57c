// GetBulkPublishDetails: the state of the pool's last bulk publish (NOT_STARTED if none).
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation, epochSeconds } from '../operation.js';

export default defineSyncOperation({
  model: model.GetBulkPublishDetails,
  callers: ['developer'],
  async handle({ settings: { bulkPublish } }, input: { IdentityPoolId: string }) {
    const date = (ms: number | undefined) => (ms === undefined ? undefined : epochSeconds(ms));
    return {
      IdentityPoolId: input.IdentityPoolId,
      BulkPublishStartTime: date(bulkPublish.startTime),
      BulkPublishCompleteTime: date(bulkPublish.completeTime),
      BulkPublishStatus: bulkPublish.status,
      FailureMessage: bulkPublish.failureMessage,
    };
  },
});
