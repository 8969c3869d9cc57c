// CreateIdentityPool: a new pool with id REGION:GUID in this server's region (developer only).
import { randomUUID } from 'node:crypto';
import { cognitoIdentityOperations as model } from '../../model/cognito-identity.generated.js';
import { defineOperation } from '../operation.js';
import { describe, identityPoolOutput, type IdentityPoolInput } from './identity-pool-shape.js';

export default defineOperation({
  service: 'identity',
  model: model.CreateIdentityPool,
  callers: ['developer'],
  async handle(context, input: IdentityPoolInput, store) {
    const now = context.now.getTime();
    const pool = {
      identityPoolId: `${context.region}:${randomUUID()}`,
      identityPoolName: input.IdentityPoolName,
      description: describe(input),
      creationDate: now,
      lastModifiedDate: now,
    };
    await store.createIdentityPool(pool, context.limits.identityPoolsPerAccount);
    return identityPoolOutput(pool);
  },
});
