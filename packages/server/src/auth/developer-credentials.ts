// The developer (admin) key pair: from COGNISYNC_ACCESS_KEY_ID / COGNISYNC_SECRET_ACCESS_KEY, or generated
// once, kept in the store (so every process sharing a database agrees) and announced on first start.
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';

export interface DeveloperCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** True when this call generated the pair (the caller prints it once). */
  generated: boolean;
}

const SETTING = 'developer-credentials';

export async function resolveDeveloperCredentials(store: Store, accessKeyId?: string, secretAccessKey?: string): Promise<DeveloperCredentials> {
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey, generated: false };
  if (accessKeyId || secretAccessKey) throw new Error('Set both COGNISYNC_ACCESS_KEY_ID and COGNISYNC_SECRET_ACCESS_KEY, or neither');
  const candidate = JSON.stringify({
    accessKeyId: `AKCS${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  });
  const stored = await store.getOrCreateSetting(SETTING, candidate);
  const pair = JSON.parse(stored) as { accessKeyId: string; secretAccessKey: string };
  return { ...pair, generated: stored === candidate };
}
