// Answers held to the end of the event loop's I/O phase, then written together.
//
// Every answer is its own write(2) on its own connection, and on a busy server each one used to find the client's
// process asleep again: the write paid for waking it (perf: a fifth of a small request's CPU went to the answer's
// writev, most of it that wake-up). Answers computed while the loop is still reading the requests that arrived with
// them (reads, and every refusal) now wait until it has read them all, and go out back to back in the check phase
// right after: the first write wakes the client, the next ones find it awake. Paired, about 0.7 x the CPU per request for
// ListRecords and DescribeDataset (bench/README.md, twenty-sixth round).
//
// An answer is held at most until that check phase: an idle server writes it in the same turn of the loop, a busy
// one after the other requests of that turn (which it would have spent on them before the next read anyway), and
// never behind more than MAX_HELD others: the one that fills the batch sends it. An answer that comes later than
// that phase (after a group commit, a SyncTrigger, the network) waits only for the promise jobs under way to finish
// (process.nextTick runs after them): the answers of one group commit go out together.
import type { ServerResponse } from 'node:http';

/** A batch this full is sent at once: a loop phase can read hundreds of requests, and the first answer waits for the rest. */
export const MAX_HELD = 64;

export class AnswerBatch {
  private held: Array<[ServerResponse, string]> = [];
  /** Which I/O phase the loop is in: one more after each flush. */
  private phase = 0;
  private flushing = false;
  private ticking = false;

  /** Called as a request arrives (in the I/O callback that read it); its answer passes the result to `end`. */
  arrived(): number {
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(this.flush);
    }
    return this.phase;
  }

  /**
   * Ends `res` with `body`: held with the others while the phase its request `arrived` in lasts; after it, until the
   * promise jobs now running are done.
   */
  end(res: ServerResponse, body: string, arrivedIn: number): void {
    if (this.held.push([res, body]) >= MAX_HELD) {
      this.send();
    } else if (arrivedIn !== this.phase && !this.ticking) {
      this.ticking = true;
      process.nextTick(this.sendLate);
    }
  }

  private readonly flush = (): void => {
    this.flushing = false;
    this.phase++;
    this.send();
  };

  private readonly sendLate = (): void => {
    this.ticking = false;
    this.send();
  };

  private send(): void {
    const held = this.held;
    this.held = [];
    for (const [res, body] of held) {
      try {
        res.end(body);
      } catch {
        // No answer must be left behind another's failure; this one's connection cannot carry it.
        res.destroy();
      }
    }
  }
}
