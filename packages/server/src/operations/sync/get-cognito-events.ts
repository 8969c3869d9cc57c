// GetCognitoEvents: the pool's event → function bindings (developer only).
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { defineSyncOperation } from '../operation.js';

export default defineSyncOperation({
  model: model.GetCognitoEvents,
  callers: ['developer'],
  async handle({ settings }) {
    return { Events: settings.cognitoEvents };
  },
});
