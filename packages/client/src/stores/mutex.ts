// An in-process FIFO lock per name: the same-process half of every store's withLock.
import { LockTimeoutError } from '../errors.ts';

export class NamedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Waits for the name's earlier holders (up to timeoutMs), then runs fn. */
  async run<T>(name: string, fn: () => Promise<T>, timeoutMs = Infinity): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    try {
      if (Number.isFinite(timeoutMs)) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new LockTimeoutError(`Lock ${name} not acquired within ${timeoutMs} ms`)), timeoutMs);
        });
        try {
          await Promise.race([previous, timedOut]);
        } finally {
          clearTimeout(timer);
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
