// An in-process FIFO lock per name: the same-process half of every store's withLock.
import { LockTimeoutError } from '../errors.ts';

export class NamedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /**
   * Waits for the name's earlier holders (up to timeoutMs; rejecting with `signal`'s reason once it aborts), then runs
   * fn. A waiter that gives up keeps its place in the queue only until its turn, which it passes on at once.
   */
  async run<T>(name: string, fn: () => Promise<T>, timeoutMs = Infinity, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    try {
      if (Number.isFinite(timeoutMs) || signal) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        let onAbort: (() => void) | undefined;
        const givenUp = new Promise<never>((_, reject) => {
          if (Number.isFinite(timeoutMs)) timer = setTimeout(() => reject(new LockTimeoutError(`Lock ${name} not acquired within ${timeoutMs} ms`)), timeoutMs);
          onAbort = () => reject(signal!.reason);
          signal?.addEventListener('abort', onAbort, { once: true });
        });
        try {
          await Promise.race([previous, givenUp]);
        } finally {
          clearTimeout(timer);
          if (onAbort) signal?.removeEventListener('abort', onAbort);
        }
      } else {
        await previous;
      }
      return await fn();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}
