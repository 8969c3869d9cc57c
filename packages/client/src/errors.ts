// The typed errors the client throws: one class per failure a caller can act on differently.

/** Base class of every error this library throws itself. */
export class CognitoSyncClientError extends Error {
  override name = 'CognitoSyncClientError';
}

/**
 * A key, value, dataset name or quota check failed before anything was written or sent. `code` names the rule
 * (`InvalidDatasetName`, `InvalidKey`, `InvalidValue`, `DatasetTooLarge`, `TooManyRecords`, `TooManyDatasets`, …).
 */
export class ValidationError extends CognitoSyncClientError {
  override name = 'ValidationError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The service answered with an AWS error (`name` is the AWS error name, e.g. `ResourceConflictException`). */
export class ServiceError extends CognitoSyncClientError {
  constructor(name: string, message: string, readonly statusCode: number, readonly requestId?: string) {
    super(message);
    this.name = name;
  }
  /** 409 conflicts, throttling and server faults are worth another attempt; the rest are not. */
  get retryable(): boolean {
    return this.name === 'ResourceConflictException' || this.name === 'TooManyRequestsException' || this.statusCode === 429 || this.statusCode >= 500;
  }
}

/** The request never got an HTTP answer (offline, DNS, connection reset). Local data is untouched. */
export class NetworkError extends CognitoSyncClientError {
  override name = 'NetworkError';
}

/** synchronize() gave up after its bounded attempts; `cause` is the last ServiceError. Local changes are kept. */
export class SyncRetriesExhaustedError extends CognitoSyncClientError {
  override name = 'SyncRetriesExhaustedError';
}

/** A hook (onConflict / onDatasetsMerged) answered `false`: the sync stopped; local changes are kept. */
export class SyncCancelledError extends CognitoSyncClientError {
  override name = 'SyncCancelledError';
}

/** Another tab or process held the dataset's sync lock for longer than `lockTimeoutMs`. */
export class LockTimeoutError extends CognitoSyncClientError {
  override name = 'LockTimeoutError';
}
