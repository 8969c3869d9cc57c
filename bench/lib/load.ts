// Drives the load-generator process and measures one target per run: autocannon's answer plus the
// server's CPU time and RSS over the same window, read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { LOAD_CPU, cpuMicros, pinned, sampleRss, stopChild, waitForIdle } from './processes.ts';
import type { Target } from './targets.ts';
import type { LoadJob, LoadResult, WireRequest } from './types.ts';

export interface Measurement extends LoadResult {
  scenario: string;
  target: string;
  store: Target['store'];
  /** SQLite's synchronous pragma of the target (undefined for the ceiling and PostgreSQL). */
  synchronous: Target['synchronous'];
  connections: number;
  /** Server CPU (user + system) per completed request, µs. */
  serverCpuMicrosPerRequest: number;
  serverRssPeakBytes: number;
  serverRssEndBytes: number;
  non2xx: number;
  /** Round of a repeated scenario (0 for scenarios run once). */
  repetition?: number;
  /** Set on aggregated rows: how many runs the medians are taken over. */
  runs?: number;
}

type Reply = { type: 'ready' } | { type: 'loaded'; pool: string } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

export class LoadGenerator {
  private child: ChildProcess;
  private waiting: ((reply: Reply) => void) | undefined;
  private pools = 0;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (reply: Reply) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.(reply);
    });
  }

  static async start(): Promise<LoadGenerator> {
    const script = resolve(import.meta.dirname, '../load-generator.ts');
    const [command, args] = pinned(LOAD_CPU, process.execPath, ['--import', 'tsx', script]);
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    const generator = new LoadGenerator(child);
    await generator.reply();
    return generator;
  }

  private reply(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited (${code})`));
      this.child.once('exit', onExit);
      this.waiting = (reply) => {
        this.child.off('exit', onExit);
        if (reply.type === 'error') reject(new Error(`load generator: ${reply.message}`));
        else resolve(reply);
      };
    });
  }

  /** Hands a pool of requests to the generator; returns its id. */
  async load(requests: WireRequest[]): Promise<string> {
    const pool = `pool-${++this.pools}`;
    this.child.send({ type: 'load', pool, requests });
    await this.reply();
    return pool;
  }

  /** Hands per-connection request sequences ("lanes") to the generator; returns the pool id. */
  async loadLanes(lanes: WireRequest[][]): Promise<string> {
    const pool = `pool-${++this.pools}`;
    this.child.send({ type: 'load-lanes', pool, lanes });
    await this.reply();
    return pool;
  }

  drop(pool: string): void {
    this.child.send({ type: 'drop', pool });
  }

  async run(job: LoadJob): Promise<LoadResult> {
    this.child.send({ type: 'run', job });
    const reply = await this.reply();
    if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type}`);
    return reply.result;
  }

  /**
   * A warm-up run (discarded) and a measured run against `target`, sampling the server's CPU and RSS over
   * the measured run only. Unique writes warm up on their own pool and build the measured pool afterwards,
   * sized from the warm-up's rate (`buildPool`), so no more requests are signed than the run can use.
   */
  async measure(options: {
    scenario: string;
    target: Target;
    connections: number;
    warmupSeconds: number;
    durationSeconds: number;
    cycle: boolean;
    pool?: string;
    warmupPool?: string;
    buildPool?: (warmupRequestsPerSecond: number) => Promise<string>;
    /** Open loop at this many requests per second (see load-generator.ts) instead of as fast as possible. */
    pacedRate?: number;
    captureErrors?: boolean;
  }): Promise<Measurement> {
    const { target } = options;
    const base = { url: target.url, connections: options.connections, cycle: options.cycle, captureErrors: options.captureErrors ?? true, ...(options.pacedRate ? { overallRate: options.pacedRate, paced: true } : {}) };
    let warmupRate = 0;
    if (options.warmupSeconds > 0) {
      const pool = options.warmupPool ?? options.pool;
      if (!pool) throw new Error('measure: no warm-up pool');
      warmupRate = (await this.run({ ...base, pool, durationSeconds: options.warmupSeconds })).requestsPerSecond;
      if (options.warmupPool) this.drop(options.warmupPool);
    }
    const pid = target.process.pid;
    await waitForIdle(pid);
    const pool = options.buildPool ? await options.buildPool(warmupRate) : options.pool;
    if (!pool) throw new Error('measure: no pool');
    await waitForIdle(pid);
    const cpuBefore = cpuMicros(pid);
    const rss = sampleRss(pid);
    const result = await this.run({ ...base, pool, durationSeconds: options.durationSeconds });
    const cpuAfter = cpuMicros(pid);
    const memory = rss.stop();
    await waitForIdle(pid);
    if (options.buildPool || !options.cycle) this.drop(pool);
    const non2xx = Object.entries(result.statusCounts).reduce((sum, [status, n]) => (status.startsWith('2') ? sum : sum + n), 0);
    return {
      ...result,
      scenario: options.scenario,
      target: target.name,
      store: target.store,
      synchronous: target.synchronous,
      connections: options.connections,
      serverCpuMicrosPerRequest: result.completed ? (cpuAfter - cpuBefore) / result.completed : 0,
      serverRssPeakBytes: memory.peak,
      serverRssEndBytes: memory.end,
      non2xx,
    };
  }

  async stop(): Promise<void> {
    this.child.disconnect();
    await stopChild(this.child);
  }
}
