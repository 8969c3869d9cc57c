// The BulkPublish state machine as pure functions: NOT_STARTED → IN_PROGRESS → SUCCEEDED | FAILED,
// one successful run per interval (AWS: 24 h), never two at once.
import { AlreadyStreamedException, DuplicateRequestException, InvalidConfigurationException } from '../errors.js';

export type BulkPublishStatus = 'NOT_STARTED' | 'IN_PROGRESS' | 'FAILED' | 'SUCCEEDED';

export interface BulkPublishState {
  status: BulkPublishStatus;
  startTime?: number;
  completeTime?: number;
  failureMessage?: string;
}

export const notStarted: BulkPublishState = Object.freeze({ status: 'NOT_STARTED' });

/** The state a new BulkPublish request moves the pool to, or the AWS error that refuses it. */
export function startBulkPublish(
  state: BulkPublishState,
  streams: { StreamName?: string; StreamingStatus?: string } | undefined,
  now: number,
  intervalMs: number,
): BulkPublishState {
  // AWS does not name this error; InvalidConfigurationException says what is wrong (docs/decisions.md).
  if (streams?.StreamingStatus !== 'ENABLED' || !streams.StreamName) {
    throw new InvalidConfigurationException('Cognito Streams must be configured and ENABLED for the identity pool before a bulk publish');
  }
  if (state.status === 'IN_PROGRESS') throw new DuplicateRequestException('A bulk publish is already in progress for this identity pool');
  if (state.status === 'SUCCEEDED' && state.completeTime !== undefined && now - state.completeTime < intervalMs) {
    throw new AlreadyStreamedException('A bulk publish already succeeded for this identity pool within the last 24 hours');
  }
  return { status: 'IN_PROGRESS', startTime: now };
}
