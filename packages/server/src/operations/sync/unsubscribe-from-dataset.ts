// UnsubscribeFromDataset: stop change notifications of a dataset to one device.
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';
import type { SubscriptionInput } from './subscribe-to-dataset.js';

export default defineSyncOperation({
  model: model.UnsubscribeFromDataset,
  callers: ['identity'],
  async handle(_context, input: SubscriptionInput, store) {
    if (!(await store.getDevice(input.IdentityPoolId, input.IdentityId, input.DeviceId))) {
      throw new ResourceNotFoundException(`Device '${input.DeviceId}' is not registered for identity '${input.IdentityId}'.`);
    }
    await store.unsubscribe({ identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName }, input.DeviceId);
    return {};
  },
});
