// AWS JSON 1.1 (Cognito Identity): `POST /` with `X-Amz-Target: AWSCognitoIdentityService.<Operation>`
// and the whole input as the JSON body.
import { SerializationException, UnknownOperationException } from '../errors.js';
import { cognitoIdentityMetadata, cognitoIdentityOperations } from '../model/cognito-identity.generated.js';
import type { Operation } from '../operations/operation.js';
import { MAX_JSON_DEPTH, parseJsonObject, type ApiRequest, type DecodedCall } from './request.js';

export class AwsJsonTargets {
  private readonly byTarget: Map<string, Operation>;

  constructor(operations: readonly Operation[]) {
    this.byTarget = new Map(operations.map((op) => [`${cognitoIdentityMetadata.targetPrefix}.${op.model.name}`, op]));
  }

  /** The operation an `X-Amz-Target` names, if cognisync serves it. */
  find(target: string | string[] | undefined): Operation | undefined {
    return typeof target === 'string' ? this.byTarget.get(target) : undefined;
  }

  /** Whether the model marks the target's operation unsigned (GetId, GetCredentialsForIdentity, …), served or not. */
  isUnsigned(target: string | string[] | undefined): boolean {
    if (typeof target !== 'string' || !target.startsWith(`${cognitoIdentityMetadata.targetPrefix}.`)) return false;
    const model = (cognitoIdentityOperations as Record<string, { authtype?: string }>)[target.slice(cognitoIdentityMetadata.targetPrefix.length + 1)];
    return model?.authtype === 'none';
  }
}

export function decodeAwsJson(operation: Operation | undefined, request: ApiRequest): DecodedCall {
  if (request.method !== 'POST') throw new UnknownOperationException(`Cognito Identity requests must be POST, got ${request.method}`);
  if (!operation) {
    const target = request.headers['x-amz-target'];
    throw new UnknownOperationException(target ? `Operation '${String(target).slice(0, 128)}' is not supported` : 'Missing X-Amz-Target header');
  }
  const contentType = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== '' && contentType !== 'application/json' && !contentType.startsWith('application/x-amz-json-')) {
    throw new SerializationException(`Unsupported Content-Type '${contentType}'; send application/x-amz-json-1.1`);
  }
  if (request.body.length === 0) return { operation, input: {} };
  // Parsed before the caller is known (GetId, GetCredentialsForIdentity and GetOpenIdToken are unsigned, and the pool's
  // rate limit needs the body's pool id): nesting no model needs is refused before it costs a parse.
  return { operation, input: parseJsonObject(request.body, (message) => new SerializationException(message), MAX_JSON_DEPTH) };
}
