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
// at the next commit; otherwise the file grows. So once the WAL is large, the worker asks the store to hold
// back new write transactions (reads go on) while it copies the last few frames, about 1–3 ms; the writes
// that arrive meanwhile wait without blocking the event loop, and the next commit starts the WAL over.
// The same pause makes the idle TRUNCATE (which returns the WAL's disk space) never collide with a write.
// A pause lasts as long as that last copy and its two fsyncs (where SQLite's own checkpoint would have blocked
// every request for the whole copy), but never more than MAX_PAUSE_MS, in case the worker hangs. (Another
// process writing the same file is not paused; a round it spoils leaves the restart to a later one.)
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

// Plain JavaScript run with `eval`: the worker needs no TypeScript loader, and import() works whether the eval
// is run as CommonJS or as a module.
const workerSource = `(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { default: Database } = await import(workerData.driver);
  const db = new Database(workerData.filename, { fileMustExist: true });
  db.pragma('synchronous = ' + workerData.synchronous);
  db.pragma('busy_timeout = 0');
  const run = (mode) => db.pragma('wal_checkpoint(' + mode + ')')[0];
  let grant;
  let running = false;
  let stopped = false;
  let lastLog = -1;
  const whilePaused = async (checkpoint) => {
    parentPort.postMessage('pause');
    const granted = await new Promise((resolve) => (grant = resolve));
    if (!granted) return undefined;
    try {
      return checkpoint();
    } finally {
      parentPort.postMessage('resume');
    }
  };
  const round = async (tick) => {
    let result = run('PASSIVE');
    if (result.busy) return;
    if (result.log >= workerData.restartPages) {
      run('PASSIVE');
      result = await whilePaused(() => run('PASSIVE'));
    } else if (tick && result.log > 0 && result.log === result.checkpointed && result.log === lastLog) {
      result = await whilePaused(() => run('TRUNCATE'));
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
    if (message === 'paused') return grant?.(true);
    stopped = true;
    clearInterval(timer);
    grant?.(false);
    if (!running) finish();
  });
})();`;

export class WalCheckpointer {
  private writes = 0;
  private worker: Worker | undefined;
  /** Set once the worker is gone for good (stopped, or failed and replaced by SQLite's own checkpoints). */
  private done = false;
  private stopping: Promise<void> | undefined;
  private resumeWrites: (() => void) | undefined;
  /** While set, the store holds new write transactions back until it resolves. */
  writesPaused: Promise<void> | undefined;

  /** `db` is the store's connection to `filename`, already in WAL mode. */
  constructor(
    private readonly db: Database.Database,
    private readonly filename: string,
    private readonly synchronous: 'FULL' | 'NORMAL',
  ) {}

  /** Called after each write transaction commits, with the number of writes it held (see the store's group commit). */
  noteWrites(count: number): void {
    if (this.done) return;
    const before = this.writes;
    this.writes += count;
    if (Math.floor(this.writes / CHECKPOINT_EVERY_WRITES) === Math.floor(before / CHECKPOINT_EVERY_WRITES)) return;
    if (this.worker) this.worker.postMessage('checkpoint');
    else this.start();
  }

  private start(): void {
    const driver = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;
    // execArgv: [] so that the worker loads none of the main thread's loader hooks (tsx) or profiling flags.
    const worker = new Worker(workerSource, { eval: true, execArgv: [], workerData: { driver, filename: this.filename, synchronous: this.synchronous, tickMs: TICK_MS, restartPages: RESTART_PAGES } });
    // A store that is never closed must not keep the process alive (but waiting for the worker does: see ref()).
    worker.unref();
    worker.on('message', (message: 'pause' | 'resume') => (message === 'pause' ? this.pause() : this.resume()));
    const failed = () => {
      this.resume();
      if (this.done) return;
      this.done = true;
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    };
    worker.on('error', failed);
    worker.on('exit', failed);
    this.worker = worker;
    this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  }

  private pause(): void {
    // Once stopping, the 'stop' message answers the worker instead.
    if (this.done) return;
    // No write transaction is open here: they run synchronously, start to commit, on this thread.
    this.writesPaused ??= new Promise<void>((resolve) => {
      this.worker!.ref();
      const timer = setTimeout(() => this.resume(), MAX_PAUSE_MS);
      this.resumeWrites = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.worker!.postMessage('paused');
  }

  private resume(): void {
    if (!this.writesPaused) return;
    this.worker!.unref();
    this.resumeWrites?.();
    this.resumeWrites = undefined;
    this.writesPaused = undefined;
  }

  /** Closes the worker's connection and ends its thread; call before closing the store's own connection. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const worker = this.worker;
      const running = !this.done && worker;
      this.done = true;
      this.resume();
      if (!running) return resolve();
      worker.once('exit', () => resolve());
      worker.ref();
      worker.postMessage('stop');
    });
    return this.stopping;
  }
}
