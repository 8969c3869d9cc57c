// Whether a pool's committed changes go to a Cognito Stream (configured and ENABLED).
import type { PoolSyncSettings, StreamTarget } from '../../store/store.js';

export function streamTarget(settings: PoolSyncSettings | undefined): StreamTarget | undefined {
  const streams = settings?.cognitoStreams;
  return streams?.StreamingStatus === 'ENABLED' && streams.StreamName ? { streamName: streams.StreamName } : undefined;
}
