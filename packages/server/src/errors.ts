// One error model: every failure a client may see is a ServiceError named after its AWS error shape.
import { cognitoIdentityErrors } from './model/cognito-identity.generated.js';
import { cognitoSyncErrors } from './model/cognito-sync.generated.js';

/** Which of the two APIs served the request; the same error name has a different status in each. */
export type ServiceName = 'sync' | 'identity';

export class ServiceError extends Error {
  constructor(
    /** The AWS error name, sent as `x-amzn-ErrorType` and `__type`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

const define = (code: string) =>
  class extends ServiceError {
    constructor(message: string) {
      super(code, message);
    }
  };

// Errors of the service models (statuses come from the generated model tables).
export const InvalidParameterException = define('InvalidParameterException');
export const NotAuthorizedException = define('NotAuthorizedException');
export const ResourceNotFoundException = define('ResourceNotFoundException');
export const ResourceConflictException = define('ResourceConflictException');
export const LimitExceededException = define('LimitExceededException');
export const TooManyRequestsException = define('TooManyRequestsException');
export const InvalidConfigurationException = define('InvalidConfigurationException');
export const AlreadyStreamedException = define('AlreadyStreamedException');
export const DuplicateRequestException = define('DuplicateRequestException');
export const ConcurrentModificationException = define('ConcurrentModificationException');
export const InternalErrorException = define('InternalErrorException');
export const DeveloperUserAlreadyRegisteredException = define('DeveloperUserAlreadyRegisteredException');
export const LambdaThrottledException = define('LambdaThrottledException');
export const InvalidLambdaFunctionOutputException = define('InvalidLambdaFunctionOutputException');

// Errors AWS's front door sends before a request reaches the service (not in the models).
export const MissingAuthenticationTokenException = define('MissingAuthenticationTokenException');
export const IncompleteSignatureException = define('IncompleteSignatureException');
export const InvalidSignatureException = define('InvalidSignatureException');
export const UnrecognizedClientException = define('UnrecognizedClientException');
export const ExpiredTokenException = define('ExpiredTokenException');
export const UnknownOperationException = define('UnknownOperationException');
export const SerializationException = define('SerializationException');
export const RequestEntityTooLargeException = define('RequestEntityTooLargeException');

/**
 * Statuses of the errors that are not in the models. REST-JSON services answer authentication failures
 * with 403 and unknown routes with 404; JSON-1.1 services answer every client error with 400.
 */
const frontDoorStatus: Record<string, { sync: number; identity: number }> = {
  MissingAuthenticationTokenException: { sync: 403, identity: 400 },
  IncompleteSignatureException: { sync: 403, identity: 400 },
  InvalidSignatureException: { sync: 403, identity: 400 },
  UnrecognizedClientException: { sync: 403, identity: 400 },
  ExpiredTokenException: { sync: 403, identity: 400 },
  UnknownOperationException: { sync: 404, identity: 400 },
  SerializationException: { sync: 400, identity: 400 },
  RequestEntityTooLargeException: { sync: 413, identity: 413 },
};

/** The HTTP status of an error as the given API's model defines it. */
export function errorStatus(service: ServiceName, code: string): number {
  const modelled = service === 'sync' ? (cognitoSyncErrors as Record<string, { status: number }>)[code] : (cognitoIdentityErrors as Record<string, { status: number }>)[code];
  if (modelled) return modelled.status;
  return frontDoorStatus[code]?.[service] ?? (code === 'InternalErrorException' ? 500 : 400);
}
