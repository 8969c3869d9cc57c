// SetIdentityPoolConfiguration: replace the pool's PushSync and/or CognitoStreams settings (members not
// given are kept) and echo the whole configuration (developer only). Enabling streams without a StreamName, or to a
// stream Kinesis says does not exist, is refused; when Kinesis cannot be asked, the setting is stored and delivery
// retries until it can.
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import type { CognitoStreamsConfiguration, PushSyncConfiguration } from '../../store/store.js';
import { InvalidParameterException } from '../../errors.js';
import { defineSyncOperation } from '../operation.js';

interface Input {
  IdentityPoolId: string;
  PushSync?: PushSyncConfiguration;
  CognitoStreams?: CognitoStreamsConfiguration;
}

export default defineSyncOperation({
  model: model.SetIdentityPoolConfiguration,
  callers: ['developer'],
  async handle(context, input: Input, store) {
    const streams = input.CognitoStreams;
    // Stored, it would read back ENABLED while no change is streamed anywhere (and BulkPublish refuses it): AWS does
    // not say what it answers; the model lists InvalidParameterException for this operation.
    if (streams?.StreamingStatus === 'ENABLED' && !streams.StreamName) {
      throw new InvalidParameterException('CognitoStreams.StreamName is required when StreamingStatus is ENABLED.');
    }
    if (streams?.StreamingStatus === 'ENABLED' && streams.StreamName && (await context.integrations.streams.streamExists(streams.StreamName)) === false) {
      throw new InvalidParameterException(`Kinesis stream '${streams.StreamName}' does not exist.`);
    }
    const settings = (await store.setPoolConfiguration(input.IdentityPoolId, {
      ...(input.PushSync ? { pushSync: input.PushSync } : {}),
      ...(input.CognitoStreams ? { cognitoStreams: input.CognitoStreams } : {}),
    }))!;
    return { IdentityPoolId: input.IdentityPoolId, PushSync: settings.pushSync, CognitoStreams: settings.cognitoStreams };
  },
});
