// The servers a run measures side by side: the node:http ceiling, the better-sqlite3 floor, cognisync on
// SQLite and, when a PostgreSQL server answers, cognisync on a throw-away PostgreSQL database.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { SERVER_CPU, startServerProcess, type RunningProcess } from './processes.ts';
import type { Credentials } from './requests.ts';

const repoRoot = resolve(import.meta.dirname, '../..');
/** COGNISYNC_BENCH_BIN runs another build of the server (e.g. a checkout from before a change) through the same benchmark. */
const cognisyncBin = process.env.COGNISYNC_BENCH_BIN ? resolve(process.env.COGNISYNC_BENCH_BIN) : join(repoRoot, 'packages/server/bin/cognisync.js');
const baselines = join(repoRoot, 'bench/baselines');

/**
 * Rebuilds the server bundle (dist/cli.mjs) of the build under test, so that it runs as `npm ci` leaves it: from the
 * bundle, not through tsx (bin/cognisync.js falls back to tsx when src is newer). Returns false for a build without
 * a build script (an older checkout), which then runs however its bin runs it.
 */
export function buildServer(bin = cognisyncBin): boolean {
  const packageDir = dirname(dirname(resolve(bin)));
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  if (!manifest.scripts?.build) return false;
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: packageDir, stdio: ['ignore', 'ignore', 'inherit'] });
  return true;
}

/** Developer credentials the benchmark gives every cognisync it starts. */
export const developerCredentials: Credentials = {
  accessKeyId: 'AKIDCOGNISYNCBENCH01',
  secretAccessKey: 'cognisync-benchmark-developer-secret-key',
};

export type TargetKind = 'ceiling' | 'floor' | 'cognisync';

export interface Target {
  /** Short name used in tables: ceiling, floor, sqlite, postgres. */
  name: string;
  kind: TargetKind;
  store: 'sqlite' | 'postgres' | undefined;
  /** SQLite's synchronous pragma for targets that use SQLite; undefined otherwise. */
  synchronous: 'NORMAL' | 'FULL' | undefined;
  url: string;
  host: string;
  process: RunningProcess;
  dataDir: string;
  /** Set for the PostgreSQL target. */
  databaseUrl?: string;
  stop(): Promise<void>;
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cognisync-bench-${prefix}-`));
}

const tsx = ['--import', 'tsx'];

export async function startCeiling(): Promise<Target> {
  const dataDir = tempDir('ceiling');
  const proc = await startServerProcess({ name: 'ceiling', command: process.execPath, args: [...tsx, join(baselines, 'ceiling-server.ts')], ready: /listening on (http:\/\/\S+)/, cpu: SERVER_CPU, stderrFile: join(dataDir, 'stderr.log') });
  return target('ceiling', 'ceiling', undefined, undefined, proc, dataDir);
}

export async function startFloor(synchronous: 'NORMAL' | 'FULL'): Promise<Target> {
  const dataDir = tempDir('floor');
  const proc = await startServerProcess({
    name: 'floor',
    command: process.execPath,
    args: [...tsx, join(baselines, 'floor-server.ts'), '--data-dir', dataDir],
    env: { ...process.env, COGNISYNC_SQLITE_SYNCHRONOUS: synchronous },
    ready: /listening on (http:\/\/\S+)/,
    cpu: SERVER_CPU,
    stderrFile: join(dataDir, 'stderr.log'),
  });
  return target('floor', 'floor', 'sqlite', synchronous, proc, dataDir);
}

/** cognisync exactly as users run it (`cognisync serve --port 0`), logging at its default level. */
export async function startCognisync(options: { name: string; synchronous: 'NORMAL' | 'FULL'; databaseUrl?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv; bin?: string }): Promise<Target> {
  const dataDir = tempDir(options.name);
  const proc = await startServerProcess({
    name: options.name,
    command: process.execPath,
    args: [...(options.extraArgs ?? []), options.bin ? resolve(options.bin) : cognisyncBin, 'serve', '--port', '0', '--data-dir', dataDir, ...(options.databaseUrl ? ['--database-url', options.databaseUrl] : [])],
    env: {
      ...process.env,
      COGNISYNC_ACCESS_KEY_ID: developerCredentials.accessKeyId,
      COGNISYNC_SECRET_ACCESS_KEY: developerCredentials.secretAccessKey,
      COGNISYNC_SQLITE_SYNCHRONOUS: options.synchronous,
      // The default token buckets (50 req/s per identity, 10,000 per pool) would cap every scenario at the
      // limiter; raise them out of reach so the figures show capacity. The check itself still runs per request.
      COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '1000000',
      COGNISYNC_RATE_LIMIT_IDENTITY_BURST: '1000000',
      COGNISYNC_RATE_LIMIT_POOL_RPS: '1000000',
      COGNISYNC_RATE_LIMIT_POOL_BURST: '1000000',
      ...options.env,
    },
    ready: /^cognisync listening on (http:\/\/\S+)$/,
    cpu: SERVER_CPU,
    stderrFile: join(dataDir, 'stderr.log'),
  });
  const store = options.databaseUrl ? 'postgres' : 'sqlite';
  return target(options.name, 'cognisync', store, store === 'sqlite' ? options.synchronous : undefined, proc, dataDir, options.databaseUrl);
}

let keptLogsDir: string | undefined;

/** `--keep-server-logs DIR`: each server's stderr (cognisync's request log) is copied to DIR/<name>.log when it stops. */
export function keepServerLogsIn(dir: string): void {
  mkdirSync(dir, { recursive: true });
  keptLogsDir = dir;
}

function target(name: string, kind: TargetKind, store: Target['store'], synchronous: Target['synchronous'], proc: RunningProcess, dataDir: string, databaseUrl?: string): Target {
  return {
    name,
    kind,
    store,
    synchronous,
    url: proc.url,
    host: new URL(proc.url).host,
    process: proc,
    dataDir,
    ...(databaseUrl ? { databaseUrl } : {}),
    async stop() {
      await proc.stop();
      if (keptLogsDir) copyFileSync(join(dataDir, 'stderr.log'), join(keptLogsDir, `${name}.log`));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The PostgreSQL server to use (same default as the test suite), or undefined when none answers. */
export async function postgresServer(): Promise<{ adminUrl: string; version: string } | undefined> {
  const adminUrl = process.env.COGNISYNC_BENCH_POSTGRES_URL ?? process.env.COGNISYNC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return { adminUrl, version: rows[0]!.server_version };
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}
