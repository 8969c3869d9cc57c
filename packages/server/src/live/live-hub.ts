// Fans committed changes out to the live streams (SSE) open on this process, by identity.
import type { ChangeEvent, Store } from '../store/store.js';

type Listener = (event: ChangeEvent) => void;

const identityKey = (identityPoolId: string, identityId: string) => `${identityPoolId}/${identityId}`;

export class LiveHub {
  private readonly listeners = new Map<string, Set<Listener>>();
  private stopWatching: (() => Promise<void>) | undefined;

  /** Starts receiving the store's change events (from every process on PostgreSQL). */
  async start(store: Store): Promise<void> {
    this.stopWatching = await store.watchChanges((event) => this.publish(event));
  }

  publish(event: ChangeEvent): void {
    for (const listener of this.listeners.get(identityKey(event.identityPoolId, event.identityId)) ?? []) listener(event);
  }

  /** Listens to one identity's changes; returns the function that stops listening. */
  subscribe(identityPoolId: string, identityId: string, listener: Listener): () => void {
    const key = identityKey(identityPoolId, identityId);
    const set = this.listeners.get(key) ?? new Set<Listener>();
    set.add(listener);
    this.listeners.set(key, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(key);
    };
  }

  /** How many live streams are open (for metrics and tests). */
  get size(): number {
    let count = 0;
    for (const set of this.listeners.values()) count += set.size;
    return count;
  }

  async stop(): Promise<void> {
    await this.stopWatching?.();
  }
}
