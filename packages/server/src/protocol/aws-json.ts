// AWS JSON 1.1 (Cognito Identity): `POST /` with `X-Amz-Target: AWSCognitoIdentityService.<Operation>`
// and the whole input as the JSON body.
import { SerializationException, UnknownOperationException } from '../errors.js';
import { cognitoIdentityMetadata } from '../model/cognito-identity.generated.js';
import type { Operation } from '../operations/operation.js';
import type { ApiRequest, DecodedCall } from './request.js';

export class AwsJsonTargets {
  private readonly byTarget: Map<string, Operation>;

  constructor(operations: readonly Operation[]) {
    this.byTarget = new Map(operations.map((op) => [`${cognitoIdentityMetadata.targetPrefix}.${op.model.name}`, op]));
  }

  /** The operation an `X-Amz-Target` names, if cognisync serves it. */
  find(target: string | string[] | undefined): Operation | undefined {
    return typeof target === 'string' ? this.byTarget.get(target) : undefined;
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body.toString('utf8'));
  } catch (error) {
    throw new SerializationException(`Request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new SerializationException('Request body must be a JSON object');
  return { operation, input: parsed as Record<string, unknown> };
}
