// SetIdentityPoolConfiguration: replace the pool's PushSync and/or CognitoStreams settings (members not
// given are kept) and echo the whole configuration (developer only).
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import type { CognitoStreamsConfiguration, PushSyncConfiguration } from '../../store/store.js';
import { defineSyncOperation } from '../operation.js';

interface Input {
  IdentityPoolId: string;
  PushSync?: PushSyncConfiguration;
  CognitoStreams?: CognitoStreamsConfiguration;
}

export default defineSyncOperation({
  model: model.SetIdentityPoolConfiguration,
  callers: ['developer'],
  async handle(_context, input: Input, store) {
    const settings = (await store.setPoolConfiguration(input.IdentityPoolId, {
      ...(input.PushSync ? { pushSync: input.PushSync } : {}),
      ...(input.CognitoStreams ? { cognitoStreams: input.CognitoStreams } : {}),
    }))!;
    return { IdentityPoolId: input.IdentityPoolId, PushSync: settings.pushSync, CognitoStreams: settings.cognitoStreams };
  },
});
