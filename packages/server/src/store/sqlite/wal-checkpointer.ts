// Moves the SQLite store's WAL checkpoints to a worker thread with its own connection, so that copying the WAL
// into the database file, and the two fsyncs around it, no longer stall the event loop that serves requests.
//
//   first CHECKPOINT_EVERY_WRITES writes   SQLite checkpoints on the store's connection, as it always did
//   then the worker starts, and the store's connection keeps only a backstop (BACKSTOP_PAGES)
//   every CHECKPOINT_EVERY_WRITES writes after that, and every TICK_MS, the worker runs a round:
//
//     PASSIVE ──▶ WAL < RESTART_PAGES ──────────────────────────────────────────────▶ done
//        │        unchanged since the last tick (idle) ─▶ pause writes, TRUNCATE, resume ─▶ done
//        └──────▶ WAL ≥ RESTART_PAGES ─▶ PASSIVE ─▶ pause writes, PASSIVE, resume ─▶ done
//
// PASSIVE copies committed frames without waiting for or blocking anyone. But under steady writes it never
// finishes (something commits while it syncs), and only a WAL copied to its end starts over from the beginning
// at the next commit; otherwise the file grows. So once the WAL is large, the worker holds back new write
// transactions (reads go on) while it copies the last few frames; the writes that arrive meanwhile wait without
// blocking the event loop, and the next commit starts the WAL over. The same pause makes the idle TRUNCATE
// (which returns the WAL's disk space) never collide with a write. A pause lasts as long as that last copy and
// its two fsyncs (where SQLite's own checkpoint would have blocked every request for the whole copy), but never
// more than MAX_PAUSE_MS, in case the worker hangs. (Another process writing the same file is not paused; a
// round it spoils leaves the restart to a later one.)
//
// The pause is one shared Int32Array, changed with Atomics: OPEN, WRITING (the store's thread is inside a write
// transaction) or PAUSED (the worker's last copy). Each takes it from OPEN with a compare-and-exchange, so the
// worker starts its copy the moment no write is running, without a message to the busy event loop and an answer
// back, and the next write that finds the pause over lets the waiting ones go. With messages both ways, a pause
// had held writes back for 5–17 ms (median 6.5) where the copy took a median of 2 ms, in the benchmark's paced
// UpdateRecords(1) at 2,100 writes/s with the process on one CPU; now the writes wait a median of 0.9 ms (at most
// 3.2 ms). The writes that land in pauses make up the tail of write latency.
//
// The worker's connection has the store's synchronous mode, so a checkpoint syncs exactly what it did on the
// store's connection; with NORMAL, a commit now reaches the disk within about TICK_MS (the PASSIVE of the
// next tick syncs the WAL first) rather than whenever 1,000 pages have piled up.
// A store that writes less than CHECKPOINT_EVERY_WRITES never starts the thread (a thread costs about 10 MB).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** About SQLite's default of 1,000 pages per checkpoint for single-record writes (each touches 4–5 pages). */
const CHECKPOINT_EVERY_WRITES = 256;
const TICK_MS = 1_000;
/** 16 MB of 4 KB pages: about one restart per second at 1,000 single-record writes per second. */
const RESTART_PAGES = 4_096;
/** Only if the worker falls far behind does the store's connection checkpoint by itself. */
const BACKSTOP_PAGES = 10_000;
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1_000;
const MAX_PAUSE_MS = 1_000;
/** The states of the pause (see above). */
const OPEN = 0;
const WRITING = 1;
const PAUSED = 2;

// Plain JavaScript run with `eval`: the worker needs no TypeScript loader, and import() works whether the eval
// is run as CommonJS or as a module.
const workerSource = `(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { default: Database } = await import(workerData.driver);
  const db = new Database(workerData.filename, { fileMustExist: true });
  db.pragma('synchronous = ' + workerData.synchronous);
  db.pragma('busy_timeout = 0');
  const run = (mode) => db.pragma('wal_checkpoint(' + mode + ')')[0];
  const pause = new Int32Array(workerData.pause);
  let running = false;
  let stopped = false;
  let lastLog = -1;
  // Takes the pause from OPEN (waiting out a write transaction the store's thread is in), runs the checkpoint,
  // and opens it again; gives up after maxPauseMs (the store also breaks a pause that long).
  const whilePaused = (checkpoint) => {
    const deadline = performance.now() + workerData.maxPauseMs;
    while (Atomics.compareExchange(pause, 0, ${OPEN}, ${PAUSED}) !== ${OPEN}) {
      if (performance.now() > deadline) return undefined;
      Atomics.wait(pause, 0, ${WRITING}, 5);
    }
    try {
      return checkpoint();
    } finally {
      Atomics.compareExchange(pause, 0, ${PAUSED}, ${OPEN});
      Atomics.notify(pause, 0);
    }
  };
  const round = async (tick) => {
    let result = run('PASSIVE');
    if (result.busy) return;
    if (result.log >= workerData.restartPages) {
      run('PASSIVE');
      result = whilePaused(() => run('PASSIVE'));
    } else if (tick && result.log > 0 && result.log === result.checkpointed && result.log === lastLog) {
      result = whilePaused(() => run('TRUNCATE'));
    }
    lastLog = result?.log ?? -1;
  };
  const finish = () => {
    db.close();
    parentPort.close();
  };
  // Busy (another process's checkpoint): the next round tries again. Anything else ends the worker, and the
  // store checkpoints by itself again.
  const start = async (tick) => {
    if (running || stopped) return;
    running = true;
    try {
      await round(tick);
    } catch (error) {
      if (error?.code !== 'SQLITE_BUSY' && error?.code !== 'SQLITE_LOCKED') throw error;
    } finally {
      running = false;
      if (stopped) finish();
    }
  };
  const timer = setInterval(() => start(true), workerData.tickMs);
  parentPort.on('message', (message) => {
    if (message === 'checkpoint') return start(false);
    stopped = true;
    clearInterval(timer);
    if (!running) finish();
  });
})();`;

export class WalCheckpointer {
  private writes = 0;
  private worker: Worker | undefined;
  /** Set once the worker is gone for good (stopped, or failed and replaced by SQLite's own checkpoints). */
  private done = false;
  private stopping: Promise<void> | undefined;
  /** The pause this thread shares with the worker (OPEN, WRITING or PAUSED). */
  private readonly pause = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  /** What the writes held back by the current pause wait on, and what lets them go. */
  private paused: Promise<void> | undefined;
  private letGo: (() => void) | undefined;

  /** `db` is the store's connection to `filename`, already in WAL mode. */
  constructor(
    private readonly db: Database.Database,
    private readonly filename: string,
    private readonly synchronous: 'FULL' | 'NORMAL',
  ) {}

  /**
   * Called before each write transaction: undefined when it may start now (the pause is then WRITING until
   * endWrite), or a promise that settles when the worker's pause ends, after which the caller asks again.
   * Waiting writes are let go by the next write that finds the pause over (at once, under load), or else by
   * Atomics.waitAsync, whose wake-up reaches a busy event loop only some milliseconds later. A pause longer than
   * MAX_PAUSE_MS is broken: the writes go ahead, and only that round's restart of the WAL is lost.
   */
  beginWrite(): Promise<void> | undefined {
    if (this.done || !this.worker) return undefined;
    if (Atomics.compareExchange(this.pause, 0, OPEN, WRITING) === OPEN) {
      this.wake();
      return undefined;
    }
    return (this.paused ??= this.waitForWorker(this.worker));
  }

  /** Called after each write transaction, committed or not (pairs with a beginWrite that returned undefined). */
  endWrite(): void {
    if (Atomics.compareExchange(this.pause, 0, WRITING, OPEN) === WRITING) Atomics.notify(this.pause, 0);
  }

  private waitForWorker(worker: Worker): Promise<void> {
    // Writes waiting for the worker keep the process alive, as the writes themselves would.
    worker.ref();
    const waited = Atomics.waitAsync(this.pause, 0, PAUSED, MAX_PAUSE_MS);
    return new Promise<void>((resolve) => {
      this.letGo = resolve;
      if (!waited.async) return this.wake();
      waited.value.then((outcome) => {
        // Only this pause's own timeout may break it (a later pause is a new one).
        if (this.letGo !== resolve) return;
        if (outcome === 'timed-out') Atomics.compareExchange(this.pause, 0, PAUSED, OPEN);
        this.wake();
      });
    });
  }

  /** Lets the writes waiting for a pause go (they ask again), if any wait. */
  private wake(): void {
    const letGo = this.letGo;
    if (!letGo) return;
    this.letGo = undefined;
    this.paused = undefined;
    this.worker?.unref();
    letGo();
  }

  /** Called after each write transaction commits. */
  noteWrite(): void {
    if (this.done || ++this.writes % CHECKPOINT_EVERY_WRITES !== 0) return;
    if (this.worker) this.worker.postMessage('checkpoint');
    else this.start();
  }

  private start(): void {
    const driver = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;
    // execArgv: [] so that the worker loads none of the main thread's loader hooks (tsx) or profiling flags.
    const worker = new Worker(workerSource, { eval: true, execArgv: [], workerData: { driver, filename: this.filename, synchronous: this.synchronous, tickMs: TICK_MS, restartPages: RESTART_PAGES, maxPauseMs: MAX_PAUSE_MS, pause: this.pause.buffer } });
    // A store that is never closed must not keep the process alive (but waiting for the worker does: see ref()).
    worker.unref();
    const failed = () => {
      this.open();
      if (this.done) return;
      this.done = true;
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    };
    worker.on('error', failed);
    worker.on('exit', failed);
    this.worker = worker;
    this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  }

  /** Ends a pause the worker can no longer end itself, and lets the writes waiting for it go. */
  private open(): void {
    Atomics.store(this.pause, 0, OPEN);
    this.wake();
  }

  /** Closes the worker's connection and ends its thread; call before closing the store's own connection. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const worker = this.worker;
      const running = !this.done && worker;
      this.done = true;
      // Writes held back go ahead: from now on they no longer wait for the worker.
      this.wake();
      if (!running) return resolve();
      worker.once('exit', () => resolve());
      worker.ref();
      worker.postMessage('stop');
    });
    return this.stopping;
  }
}
