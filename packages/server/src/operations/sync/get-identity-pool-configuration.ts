// GetIdentityPoolConfiguration: the pool's PushSync and CognitoStreams settings (developer only).
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';

export default defineSyncOperation({
  model: model.GetIdentityPoolConfiguration,
  callers: ['developer'],
  async handle({ settings }, input: { IdentityPoolId: string }) {
    return { IdentityPoolId: input.IdentityPoolId, PushSync: settings.pushSync, CognitoStreams: settings.cognitoStreams };
  },
});
