// GetCredentialsForIdentity (unsigned): temporary credentials bound to one identity of one pool.
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation, epochSeconds } from '../operation.js';
import { authenticateIdentity, requireIdentity } from './identity-access.js';

export default defineOperation({
  service: 'identity',
  model: model.GetCredentialsForIdentity,
  callers: [],
  async handle(context, input: { IdentityId: string; Logins?: Record<string, string>; CustomRoleArn?: string }, store) {
    const { identity } = await authenticateIdentity(context, store, await requireIdentity(store, input.IdentityId), input.Logins);
    const issued = context.identity.credentials.issue(context.now.getTime(), context.limits.credentialsTtlSeconds);
    await store.saveIssuedCredentials({ accessKeyId: issued.accessKeyId, identityPoolId: identity.identityPoolId, identityId: identity.identityId, expiration: issued.expiration });
    return {
      IdentityId: identity.identityId,
      Credentials: { AccessKeyId: issued.accessKeyId, SecretKey: issued.secretKey, SessionToken: issued.sessionToken, Expiration: epochSeconds(issued.expiration) },
    };
  },
});
