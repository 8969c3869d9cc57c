// Where a pool's committed changes go besides the store: its Cognito Stream (configured and ENABLED) and
// its push-sync platform applications.
import type { PoolSyncSettings, PushTarget, StreamTarget } from '../../store/store.js';

export function streamTarget(settings: PoolSyncSettings | undefined): StreamTarget | undefined {
  const streams = settings?.cognitoStreams;
  return streams?.StreamingStatus === 'ENABLED' && streams.StreamName ? { streamName: streams.StreamName } : undefined;
}

/** Push sync is on when the pool has a PushSync configuration (Web Push needs no application ARN). */
export function pushTarget(settings: PoolSyncSettings | undefined): PushTarget | undefined {
  return settings?.pushSync ? { applicationArns: settings.pushSync.ApplicationArns ?? [] } : undefined;
}
