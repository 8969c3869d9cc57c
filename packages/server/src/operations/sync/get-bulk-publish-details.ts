// GetBulkPublishDetails: the state of the pool's last bulk publish (NOT_STARTED if none).
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation, epochSeconds } from '../operation.js';

export default defineSyncOperation({
  model: model.GetBulkPublishDetails,
  callers: ['developer'],
  async handle({ settings: { bulkPublish } }, input: { IdentityPoolId: string }) {
    return {
      IdentityPoolId: input.IdentityPoolId,
      BulkPublishStartTime: epochSeconds(bulkPublish.startTime),
      BulkPublishCompleteTime: epochSeconds(bulkPublish.completeTime),
      BulkPublishStatus: bulkPublish.status,
      FailureMessage: bulkPublish.failureMessage,
    };
  },
});
