// SubscribeToDataset: a registered device asks to be told when the dataset changes (it may not exist yet).
import { ResourceNotFoundException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import type { Store } from '../../store/store.js';
import { defineSyncOperation } from '../operation.js';

export interface SubscriptionInput {
  IdentityPoolId: string;
  IdentityId: string;
  DatasetName: string;
  DeviceId: string;
}

/** The subscription's device must be registered for the identity (ResourceNotFoundException otherwise). */
export async function requireDevice(store: Store, input: SubscriptionInput): Promise<void> {
  if (!(await store.getDevice(input.IdentityPoolId, input.IdentityId, input.DeviceId))) {
    throw new ResourceNotFoundException(`Device '${input.DeviceId}' is not registered for identity '${input.IdentityId}'.`);
  }
}

export default defineSyncOperation({
  model: model.SubscribeToDataset,
  callers: ['identity'],
  async handle(context, input: SubscriptionInput, store) {
    await requireDevice(store, input);
    await store.subscribe({ identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName }, input.DeviceId, context.now.getTime());
    return {};
  },
});
