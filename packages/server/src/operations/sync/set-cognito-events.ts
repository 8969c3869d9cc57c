// SetCognitoEvents: bind (or, with an empty value, unbind) the pool's SyncTrigger function (developer only).
import { InvalidParameterException } from '../../errors.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';

/** The only Cognito event type AWS has ever defined. */
const EVENT_TYPES = new Set(['SyncTrigger']);

export default defineSyncOperation({
  model: model.SetCognitoEvents,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string; Events: Record<string, string> }, store) {
    for (const type of Object.keys(input.Events)) {
      if (!EVENT_TYPES.has(type)) throw new InvalidParameterException(`Unsupported Cognito event type '${type}'; supported: ${[...EVENT_TYPES].join(', ')}`);
    }
    await store.setCognitoEvents(input.IdentityPoolId, input.Events);
    return {};
  },
});
