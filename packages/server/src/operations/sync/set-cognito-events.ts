// SetCognitoEvents: bind (or, with an empty value, unbind) the pool's SyncTrigger function (developer only).
import { InvalidParameterException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';

/** The only Cognito event type AWS has ever defined. */
const EVENT_TYPES = new Set(['SyncTrigger']);

/**
 * A webhook (cognisync's alternative to a Lambda ARN) must be a URL fetch can call, without a user name or password:
 * such a URL was stored and then failed every write of the pool, with the password in the message the app user got
 * (QA). The webhook authenticates the call by its signature header instead.
 */
function checkWebhookUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidParameterException('The SyncTrigger webhook is not a valid URL.');
  }
  if (parsed.username || parsed.password) {
    throw new InvalidParameterException('The SyncTrigger webhook URL must not carry a user name or password: check the x-cognisync-signature header instead.');
  }
}

export default defineSyncOperation({
  model: model.SetCognitoEvents,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string; Events: Record<string, string> }, store) {
    for (const [type, functionRef] of Object.entries(input.Events)) {
      if (!EVENT_TYPES.has(type)) throw new InvalidParameterException(`Unsupported Cognito event type '${type}'; supported: ${[...EVENT_TYPES].join(', ')}`);
      if (/^https?:\/\//i.test(functionRef)) checkWebhookUrl(functionRef);
    }
    await store.setCognitoEvents(input.IdentityPoolId, input.Events);
    return {};
  },
});
