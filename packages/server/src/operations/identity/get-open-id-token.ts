// GetOpenIdToken (unsigned): an OpenID Connect token for an identity, valid for 10 minutes.
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { authenticateIdentity, authenticationMethods, requireIdentity } from './identity-access.js';

export default defineOperation({
  service: 'identity',
  model: model.GetOpenIdToken,
  callers: [],
  async handle(context, input: { IdentityId: string; Logins?: Record<string, string> }, store) {
    const { identity } = await authenticateIdentity(context, store, await requireIdentity(store, input.IdentityId), input.Logins);
    const token = await context.identity.openIdTokens.issue(
      { identityPoolId: identity.identityPoolId, identityId: identity.identityId, amr: authenticationMethods(identity) },
      context.limits.openIdTokenTtlSeconds,
      context.now.getTime(),
    );
    return { IdentityId: identity.identityId, Token: token };
  },
});
