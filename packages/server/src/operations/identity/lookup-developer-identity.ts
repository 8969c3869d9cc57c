// LookupDeveloperIdentity (developer only): the identity of a developer user, or the developer users of an identity.
import { decodePageToken, encodePageToken } from '../../core/page-token.js';
import { InvalidParameterException, ResourceConflictException, ResourceNotFoundException } from '../../errors.js';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { isNamePosition } from '../pagination.js';
import { developerProvider, requirePool, requirePoolIdentity } from './identity-access.js';

interface Input {
  IdentityPoolId: string;
  IdentityId?: string;
  DeveloperUserIdentifier?: string;
  MaxResults?: number;
  NextToken?: string;
}

export default defineOperation({
  service: 'identity',
  model: model.LookupDeveloperIdentity,
  callers: ['developer'],
  async handle(_context, input: Input, store) {
    const pool = await requirePool(store, input.IdentityPoolId);
    const providerName = developerProvider(pool);
    if (input.IdentityId === undefined && input.DeveloperUserIdentifier === undefined) {
      throw new InvalidParameterException('Either IdentityId or DeveloperUserIdentifier must be given.');
    }
    let identityId = input.IdentityId;
    if (input.DeveloperUserIdentifier !== undefined) {
      const owner = await store.findIdentityByLogin(pool.identityPoolId, { providerName, userIdentifier: input.DeveloperUserIdentifier });
      if (!owner) throw new ResourceNotFoundException(`Developer user '${input.DeveloperUserIdentifier}' not found.`);
      // AWS: given both, they must match, "Otherwise, a ResourceConflictException is thrown."
      if (identityId !== undefined && owner !== identityId) {
        throw new ResourceConflictException(`Developer user '${input.DeveloperUserIdentifier}' does not belong to identity ${identityId}.`);
      }
      identityId = owner;
    }
    const identity = await requirePoolIdentity(store, pool, identityId!);
    const users = identity.logins.filter((login) => login.providerName === providerName).map((login) => login.userIdentifier).sort();
    const after = input.NextToken === undefined ? undefined : decodePageToken(input.NextToken, isNamePosition).n;
    const remaining = after === undefined ? users : users.filter((user) => user > after);
    const limit = input.MaxResults ?? 60;
    const page = remaining.slice(0, limit);
    return {
      IdentityId: identity.identityId,
      DeveloperUserIdentifierList: page,
      NextToken: remaining.length > limit ? encodePageToken({ n: page[page.length - 1]! }) : undefined,
    };
  },
});
