// DescribeIdentity (developer only): an identity's login providers and dates.
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import type { IdentityRecord } from '../../store/store.js';
import { defineOperation, epochSeconds } from '../operation.js';
import { requireIdentity } from './identity-access.js';

export function identityDescription(identity: IdentityRecord) {
  return {
    IdentityId: identity.identityId,
    Logins: [...new Set(identity.logins.map((login) => login.providerName))],
    CreationDate: epochSeconds(identity.creationDate),
    LastModifiedDate: epochSeconds(identity.lastModifiedDate),
  };
}

export default defineOperation({
  service: 'identity',
  model: model.DescribeIdentity,
  callers: ['developer'],
  async handle(_context, input: { IdentityId: string }, store) {
    return identityDescription(await requireIdentity(store, input.IdentityId));
  },
});
