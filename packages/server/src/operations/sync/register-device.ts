// RegisterDevice: a stable DeviceId per (identity, platform, token) for push sync; the pool's PushSync
// must name a platform application for that platform.
import { randomUUID } from 'node:crypto';
import { InvalidConfigurationException, InvalidParameterException } from '../../errors.js';
import type { OperationModel } from '../../model/shapes.js';
import { WEB_PUSH_PLATFORM } from '../../outbox/web-push-delivery.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { applicationPlatform } from '../../outbox/entries.js';
import { defineSyncOperation } from '../operation.js';

/** The model's input with cognisync's WEB_PUSH platform added to the Platform enum. */
const withWebPush: OperationModel = {
  ...model.RegisterDevice,
  input: {
    type: 'structure',
    members: {
      ...model.RegisterDevice.input.members,
      Platform: { ...model.RegisterDevice.input.members.Platform, shape: { type: 'string', enum: [...model.RegisterDevice.input.members.Platform.shape.enum, WEB_PUSH_PLATFORM] } },
    },
  },
};

export default defineSyncOperation({
  // Platforms: AWS's APNS, APNS_SANDBOX, GCM, ADM (via SNS), plus WEB_PUSH, whose Token is the browser's
  // PushSubscription JSON (a cognisync extension).
  model: withWebPush,
  callers: ['identity'],
  async handle(context, input: { IdentityPoolId: string; IdentityId: string; Platform: string; Token: string }, store) {
    const { settings } = context;
    // The token itself is not shown: it addresses the user's device.
    if (input.Token.length > context.limits.pushTokenLength) {
      throw new InvalidParameterException(`1 validation error detected: Value at 'token' failed to satisfy constraint: Member must have length less than or equal to ${context.limits.pushTokenLength}`);
    }
    if (input.Platform === WEB_PUSH_PLATFORM) {
      if (!settings.pushSync) throw new InvalidConfigurationException(`Push sync is not configured for identity pool ${input.IdentityPoolId}`);
      const refused = context.integrations.webPush.check(input.Token);
      if (typeof refused === 'string') throw new InvalidParameterException(refused);
    }
    const platformApp = input.Platform === WEB_PUSH_PLATFORM ? WEB_PUSH_PLATFORM : settings.pushSync?.ApplicationArns?.find((arn) => applicationPlatform(arn) === input.Platform);
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
    }, context.limits.devicesPerIdentity);
    return { DeviceId: device.deviceId };
  },
});
