// SubscribeToDataset: a registered device asks to be told when the dataset changes (it may not exist yet).
import { InvalidParameterException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { deviceNotRegistered, type Store } from '../../store/store.js';
import { defineSyncOperation } from '../operation.js';

export interface SubscriptionInput {
  IdentityPoolId: string;
  IdentityId: string;
  DatasetName: string;
  DeviceId: string;
}

/** The subscription's device must be registered for the identity (ResourceNotFoundException otherwise). */
export async function requireDevice(store: Store, input: SubscriptionInput): Promise<void> {
  if (!(await store.getDevice(input.IdentityPoolId, input.IdentityId, input.DeviceId))) throw deviceNotRegistered(input.IdentityId, input.DeviceId);
}

export default defineSyncOperation({
  model: model.SubscribeToDataset,
  callers: ['identity'],
  async handle(context, input: SubscriptionInput, store) {
    await requireDevice(store, input);
    const key = { identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName };
    if (!(await store.subscribe(key, input.DeviceId, context.now.getTime(), context.limits.subscriptionsPerDevice))) {
      // The model lists no LimitExceededException here; InvalidParameterException is what every client can parse.
      throw new InvalidParameterException(`Device '${input.DeviceId}' is subscribed to ${context.limits.subscriptionsPerDevice} datasets, the most one device may be: unsubscribe it from one first.`);
    }
    return {};
  },
});
