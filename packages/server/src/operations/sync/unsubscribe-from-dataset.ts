// UnsubscribeFromDataset: stop change notifications of a dataset to one device.
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';
import { requireDevice, type SubscriptionInput } from './subscribe-to-dataset.js';

export default defineSyncOperation({
  model: model.UnsubscribeFromDataset,
  callers: ['identity'],
  async handle(_context, input: SubscriptionInput, store) {
    await requireDevice(store, input);
    await store.unsubscribe({ identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName }, input.DeviceId);
    return {};
  },
});
