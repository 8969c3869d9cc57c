// Fans committed changes out to the live streams (SSE) open on this process, by identity.
import type { ChangeEvent, Store } from '../store/store.js';

type Listener = (event: ChangeEvent) => void;
interface Subscriber {
  listener: Listener;
  /** Changes may have been missed (the store's watch had a gap): the stream should end so its client catches up. */
  onGap: () => void;
}

const identityKey = (identityPoolId: string, identityId: string) => `${identityPoolId}/${identityId}`;

export class LiveHub {
  private readonly listeners = new Map<string, Set<Subscriber>>();
  private stopWatching: (() => Promise<void>) | undefined;

  /** Starts receiving the store's change events (from every process on PostgreSQL). */
  async start(store: Store): Promise<void> {
    this.stopWatching = await store.watchChanges(
      (event) => this.publish(event),
      () => {
        for (const set of [...this.listeners.values()]) for (const subscriber of [...set]) subscriber.onGap();
      },
    );
  }

  publish(event: ChangeEvent): void {
    for (const subscriber of this.listeners.get(identityKey(event.identityPoolId, event.identityId)) ?? []) subscriber.listener(event);
  }

  /** Listens to one identity's changes; returns the function that stops listening. */
  subscribe(identityPoolId: string, identityId: string, listener: Listener, onGap: () => void = () => undefined): () => void {
    const key = identityKey(identityPoolId, identityId);
    const set = this.listeners.get(key) ?? new Set<Subscriber>();
    const subscriber = { listener, onGap };
    set.add(subscriber);
    this.listeners.set(key, set);
    return () => {
      set.delete(subscriber);
      if (set.size === 0) this.listeners.delete(key);
    };
  }

  /** How many live streams are open (for metrics and tests). */
  /** How many listen to this identity's changes (its open live streams). */
  listening(identityPoolId: string, identityId: string): number {
    return this.listeners.get(identityKey(identityPoolId, identityId))?.size ?? 0;
  }

  get size(): number {
    let count = 0;
    for (const set of this.listeners.values()) count += set.size;
    return count;
  }

  async stop(): Promise<void> {
    await this.stopWatching?.();
  }
}
