// Child processes of a benchmark run: servers pinned to one CPU and the load generator to the other
// (taskset, when present), with their CPU time and resident memory read from /proc.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';

/** Two cores: servers get the last one, the load generator the first, so they do not steal each other's time. */
export const SERVER_CPU = 1;
export const LOAD_CPU = 0;
const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((path) => existsSync(path));
const CLOCK_TICKS_PER_SECOND = 100;

// All CPUs of the machine (not availableParallelism(), which shrinks once this process is pinned).
const PINNING = TASKSET !== undefined && cpus().length >= 2;

export function pinningAvailable(): boolean {
  return PINNING;
}

/** `command args` prefixed with `taskset -c cpu` when pinning is available (taskset execs, so the pid stays the same). */
export function pinned(cpu: number, command: string, args: string[]): [string, string[]] {
  return pinningAvailable() ? [TASKSET!, ['-c', String(cpu), command, ...args]] : [command, args];
}

export interface RunningProcess {
  name: string;
  pid: number;
  url: string;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/** Pins this process (all its threads) to `cpu`, so that the orchestrator never competes with a server. */
export function pinSelf(cpu: number): void {
  if (pinningAvailable()) execFileSync(TASKSET!, ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/**
 * Spawns a server and waits for the line matching `ready` (its first group is the URL it listens on).
 * stderr (cognisync's request log) goes to `stderrFile`, as it would go to a log collector in production,
 * rather than through a pipe this process would have to drain while the load runs.
 */
export async function startServerProcess(options: {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  ready: RegExp;
  cpu?: number;
  stderrFile: string;
  timeoutMs?: number;
}): Promise<RunningProcess> {
  const [command, args] = options.cpu === undefined ? [options.command, options.args] : pinned(options.cpu, options.command, options.args);
  const stderrFd = openSync(options.stderrFile, 'a');
  const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', stderrFd] });
  closeSync(stderrFd);
  const stderr = () => {
    try {
      return readFileSync(options.stderrFile, 'utf8').slice(-8192);
    } catch {
      return '';
    }
  };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.name} did not start in time; stderr:\n${stderr()}`)), options.timeoutMs ?? 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = options.ready.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${code ?? signal}) before it was ready; stderr:\n${stderr()}`));
    });
  });
  return {
    name: options.name,
    pid: child.pid!,
    url,
    child,
    stderr,
    stop: () => stopChild(child),
  };
}

export async function stopChild(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** User + system CPU time of a process so far, in microseconds (Linux /proc; 0 elsewhere). */
export function cpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Resident set size of a process in bytes (Linux /proc; 0 elsewhere). */
export function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; returns the peak and the last sample. */
export function sampleRss(pid: number, intervalMs = 200): { stop(): { peak: number; end: number } } {
  let peak = rssBytes(pid);
  let end = peak;
  const timer = setInterval(() => {
    end = rssBytes(pid);
    if (end > peak) peak = end;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      end = rssBytes(pid);
      if (end > peak) peak = end;
      return { peak, end };
    },
  };
}

/**
 * Waits until the process has (almost) stopped using CPU: a server keeps working on requests whose connections
 * the load generator already closed, and that backlog must not spill into the next run.
 */
export async function waitForIdle(pid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let before = cpuMicros(pid);
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = cpuMicros(pid);
    if (after - before <= 10_000) return;
    before = after;
  }
}
