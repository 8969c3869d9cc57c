// The `cognisync` command: `serve` (the default) runs the server until SIGTERM/SIGINT; `migrate` applies
// pending schema migrations to the configured store and exits.
import { loadConfig } from './config.js';
import { limitHeapGrowth } from './heap-growth.js';
import { startServer } from './server.js';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openStore } from './store/open-store.js';
import { backupSqlite } from './store/sqlite/backup.js';

const usage = `usage: cognisync serve [--host H] [--port N] [--data-dir DIR] [--database-url URL] [--region R]
       cognisync migrate [--data-dir DIR] [--database-url URL]
       cognisync backup --out FILE [--data-dir DIR]
       cognisync mark-restored [--data-dir DIR] [--database-url URL]`;

/** The flags every one-shot command takes: where the store is. */
const STORE_FLAGS = ['--data-dir', '--database-url'];

/**
 * The flags of a one-shot command (migrate, backup, mark-restored): only the store's. serve's own (--port, --host,
 * --region) are refused rather than ignored, since `cognisync migrate --port 8081` would suggest it serves.
 */
function storeArgs(command: string, args: string[]): string[] {
  for (const arg of args) {
    if (arg.startsWith('--') && !STORE_FLAGS.includes(arg.split('=')[0]!)) throw new Error(`${command} takes only ${STORE_FLAGS.join(' and ')}, not ${arg.split('=')[0]}\n${usage}`);
  }
  return args;
}

/** Takes over the signals bin/cognisync.js held while the CLI loaded: none when the CLI was loaded another way. */
function heldSignals(): string[] {
  const take = (globalThis as Record<symbol, unknown>)[Symbol.for('cognisync.heldSignals')] as (() => string[]) | undefined;
  return take?.() ?? [];
}

async function main(argv: string[]): Promise<void> {
  // `cognisync --port 8080` serves, as `cognisync` alone does: flags without a command are serve's.
  const [command = 'serve', ...rest] = argv[0]?.startsWith('--') && argv[0] !== '--help' ? ['serve', ...argv] : argv;
  if (command !== 'serve') {
    // The one-shot commands stop on a signal as any process does.
    const [signal] = heldSignals();
    if (signal) process.kill(process.pid, signal);
  }
  if (command === '--help' || command === '-h' || command === 'help' || rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  // Opening a PostgreSQL store may find it restored and mark it (PostgresStore.markIfRestored): say so.
  const reportMarks = { onMarkedRestored: (note: string) => void process.stderr.write(`cognisync: ${note}\n`) };
  if (command === 'migrate') {
    // Opening a store applies its migrations (under an advisory lock on PostgreSQL).
    const store = await openStore(loadConfig(storeArgs(command, rest), process.env), reportMarks);
    await store.close();
    process.stdout.write('cognisync: schema is up to date\n');
    return;
  }
  if (command === 'backup') {
    // --out is backup's own flag (also as --out=FILE); the rest are the usual store flags.
    const at = rest.findIndex((arg) => arg === '--out' || arg.startsWith('--out='));
    const inline = at >= 0 && rest[at]!.startsWith('--out=');
    const out = at < 0 ? undefined : inline ? rest[at]!.slice('--out='.length) : rest[at + 1];
    if (!out || out.startsWith('--')) throw new Error(`backup needs --out FILE\n${usage}`);
    const config = loadConfig(storeArgs(command, [...rest.slice(0, at), ...rest.slice(at + (inline ? 1 : 2))]), process.env);
    const pages = await backupSqlite(config, resolve(out));
    process.stdout.write(`cognisync: backed up ${pages} pages to ${resolve(out)}\n`);
    process.stderr.write(`cognisync: keep a copy of ${config.masterKey ? 'COGNISYNC_MASTER_KEY' : `${config.dataDir}/master.key`} too; issued credentials and the OpenID key need it.\n`);
    return;
  }
  if (command === 'mark-restored') {
    // After a restore that did not come from `cognisync backup` (pg_restore, a file copied by hand); see core/restore.ts.
    const config = loadConfig(storeArgs(command, rest), process.env);
    // A mistyped --data-dir would otherwise create an empty database there and report success.
    const sqliteFile = join(config.dataDir, 'cognisync.db');
    if (!config.databaseUrl && !existsSync(sqliteFile)) throw new Error(`no database at ${sqliteFile}`);
    const store = await openStore(config, reportMarks);
    try {
      process.stdout.write(`cognisync: marked ${await store.markRestored(Date.now())} datasets as restored\n`);
    } finally {
      await store.close();
    }
    return;
  }
  if (command !== 'serve') throw new Error(`unknown command '${command}'\n${usage}`);
  // A long-running server keeps its heap within 2× what it holds (see heap-growth.ts); the one-shot commands need not.
  limitHeapGrowth();
  // Handlers before anything starts: a stop asked for during startup (a supervisor giving up, Ctrl-C) waits for
  // startup to finish, then stops as cleanly as any other, exit status 0.
  let running: Awaited<ReturnType<typeof startServer>> | undefined;
  let stopRequested = false;
  const stop = () => {
    if (!running) {
      stopRequested = true;
      return;
    }
    // close() is idempotent: a second signal (a supervisor's repeat, a second Ctrl-C) waits for the same stop, which
    // COGNISYNC_SHUTDOWN_GRACE_MS bounds; with `once`, a repeat of the same signal killed the process at once, its
    // requests in flight unanswered and its buffered log lines lost.
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`cognisync: error while shutting down: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (heldSignals().length > 0) stopRequested = true;
  running = await startServer(loadConfig(rest, process.env));
  if (stopRequested) return stop();
  process.stdout.write(`cognisync listening on ${running.url}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`cognisync: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
