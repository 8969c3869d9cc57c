// ListIdentities (developer only): a pool's identities with their login providers, MaxResults at a time.
import { decodePageToken, encodePageToken } from '../../core/page-token.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { isNamePosition } from '../pagination.js';
import { identityDescription } from './describe-identity.js';
import { requirePool } from './identity-access.js';

export default defineOperation({
  service: 'identity',
  model: model.ListIdentities,
  callers: ['developer'],
  async handle(_context, input: { IdentityPoolId: string; MaxResults: number; NextToken?: string; HideDisabled?: boolean }, store) {
    await requirePool(store, input.IdentityPoolId);
    const after = input.NextToken === undefined ? undefined : decodePageToken(input.NextToken, isNamePosition).n;
    // HideDisabled leaves out the identities that cannot sign in: those whose last login was unlinked.
    const identities = await store.listIdentities(input.IdentityPoolId, after, input.MaxResults + 1, input.HideDisabled === true);
    const page = identities.slice(0, input.MaxResults);
    return {
      IdentityPoolId: input.IdentityPoolId,
      Identities: page.map(identityDescription),
      NextToken: identities.length > input.MaxResults ? encodePageToken({ n: page[page.length - 1]!.identityId }) : undefined,
    };
  },
});
