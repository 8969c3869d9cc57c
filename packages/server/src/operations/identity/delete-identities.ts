// DeleteIdentities (developer only): delete up to 60 identities with their data and credentials.
// Ids that do not exist are skipped, as on AWS (UnprocessedIdentityIds reports only failures).
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';

export default defineOperation({
  service: 'identity',
  model: model.DeleteIdentities,
  callers: ['developer'],
  async handle(_context, input: { IdentityIdsToDelete: string[] }, store) {
    for (const identityId of input.IdentityIdsToDelete) await store.deleteIdentity(identityId);
    return { UnprocessedIdentityIds: [] };
  },
});
