// A conflict handed to onConflict, and the three ways to resolve it.
import type { LocalRecord } from './records.ts';
import type { RemoteRecord } from './transport/cognito-sync-api.ts';

/** How one conflict was resolved: keep the remote record, push the local value, or push another value. */
export type ConflictResolution =
  | { key: string; resolution: 'remote' }
  | { key: string; resolution: 'local' }
  | { key: string; resolution: 'value'; value: string | null };

/** A key changed both here (not yet pushed) and on the server since this device last synced it. */
export class SyncConflict {
  constructor(
    readonly datasetName: string,
    readonly localRecord: LocalRecord,
    readonly remoteRecord: RemoteRecord,
  ) {}

  get key(): string {
    return this.localRecord.key;
  }
  /** The local value; null when the key was removed locally. */
  get localValue(): string | null {
    return this.localRecord.value;
  }
  /** The server's value; null when another device removed the key. */
  get remoteValue(): string | null {
    return this.remoteRecord.value;
  }

  /** Take the server's version; the local change is dropped. */
  resolveWithRemote(): ConflictResolution {
    return { key: this.key, resolution: 'remote' };
  }
  /** Keep the local version and push it over the server's. */
  resolveWithLocal(): ConflictResolution {
    return { key: this.key, resolution: 'local' };
  }
  /** Push `value` (e.g. a merge of both; `null` removes the key). */
  resolveWithValue(value: string | null): ConflictResolution {
    return { key: this.key, resolution: 'value', value };
  }
}
