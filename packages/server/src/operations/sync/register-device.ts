// RegisterDevice: a stable DeviceId per (identity, platform, token) for push sync; the pool's PushSync
// must name a platform application for that platform.
import { randomUUID } from 'node:crypto';
import { InvalidConfigurationException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { applicationPlatform } from '../../outbox/entries.js';
import { defineSyncOperation } from '../operation.js';

export default defineSyncOperation({
  model: model.RegisterDevice,
  callers: ['identity'],
  async handle(context, input: { IdentityPoolId: string; IdentityId: string; Platform: string; Token: string }, store) {
    const settings = (await store.getPoolSyncSettings(input.IdentityPoolId))!;
    const platformApp = settings.pushSync?.ApplicationArns?.find((arn) => applicationPlatform(arn) === input.Platform);
    if (!platformApp) {
      throw new InvalidConfigurationException(`Push sync is not configured for platform ${input.Platform} in identity pool ${input.IdentityPoolId}`);
    }
    const device = await store.registerDevice({
      identityPoolId: input.IdentityPoolId,
      identityId: input.IdentityId,
      deviceId: randomUUID(),
      platform: input.Platform,
      token: input.Token,
      creationDate: context.now.getTime(),
    });
    return { DeviceId: device.deviceId };
  },
});
