// The `cognisync` command line: migrate, usage errors, and the contract's listening line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { binPath, startServer } from '../support/server-process.ts';

const run = promisify(execFile);

async function cognisync(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [binPath, ...args], { env: { ...process.env, COGNISYNC_LOG_LEVEL: 'warn' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

test('migrate creates the schema and is idempotent', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-cli-'));
  try {
    for (let i = 0; i < 2; i++) {
      const result = await cognisync('migrate', '--data-dir', dataDir);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /schema is up to date/);
    }
    // After a restore that `backup` did not make (pg_restore, a copied file): mark-restored (see core/restore.ts).
    const marked = await cognisync('mark-restored', '--data-dir', dataDir);
    assert.equal(marked.code, 0, marked.stderr);
    assert.equal(marked.stdout, 'cognisync: marked 0 datasets as restored\n');
    // A mistyped data dir is refused, not marked as an empty new database.
    const typo = await cognisync('mark-restored', '--data-dir', join(dataDir, 'typo'));
    assert.equal(typo.code, 1);
    assert.equal(typo.stderr, `cognisync: no database at ${join(dataDir, 'typo', 'cognisync.db')}\n`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('bad commands and options fail with a clear message and a non-zero exit', async () => {
  const unknown = await cognisync('frobnicate');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const badPort = await cognisync('serve', '--port', 'eighty');
  assert.notEqual(badPort.code, 0);
  assert.match(badPort.stderr, /invalid port/);
  // Flags without a command are serve's, as `cognisync` alone serves.
  const flagsOnly = await cognisync('--port', 'eighty');
  assert.notEqual(flagsOnly.code, 0);
  assert.match(flagsOnly.stderr, /invalid port/);
  // The one-shot commands take only the store's flags: serve's are refused, not ignored.
  for (const args of [['migrate', '--port', '8081'], ['mark-restored', '--region=eu-west-1'], ['backup', '--out', 'x.db', '--host', '0.0.0.0']]) {
    const oneShot = await cognisync(...args);
    assert.equal(oneShot.code, 1, args.join(' '));
    assert.match(oneShot.stderr, new RegExp(`^cognisync: ${args[0]} takes only --data-dir and --database-url, not --(port|region|host)\n`));
  }
  const badUrl = await cognisync('serve', '--port', '0', '--database-url', 'mysql://localhost/x');
  assert.notEqual(badUrl.code, 0);
  assert.match(badUrl.stderr, /postgres:\/\//);
  // An unreachable database is named, its password masked.
  const unreachable = await cognisync('serve', '--port', '0', '--database-url', 'postgres://user:hunter2@127.0.0.1:1/x');
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot use the database at postgres:\/\/user:\*\*\*@127\.0\.0\.1:1\/x: .*ECONNREFUSED/);
  assert.doesNotMatch(unreachable.stderr, /hunter2/);
  // An address that cannot be listened on names the settings that chose it (node's own message names neither).
  const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-cli-'));
  try {
    const badHost = await cognisync('serve', '--port', '0', '--host', 'no-such-host.invalid', '--data-dir', dataDir);
    assert.equal(badHost.code, 1);
    assert.match(badHost.stderr, /^cognisync: cannot listen on no-such-host\.invalid:0 \(--host or HOST, --port or PORT\): getaddrinfo [A-Z_]+ no-such-host\.invalid$/m);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('--help after any command prints the usage and exits 0; backup takes --out=FILE too', async () => {
  for (const command of ['serve', 'migrate', 'backup']) {
    const help = await cognisync(command, '--help');
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: cognisync serve/);
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-cli-'));
  try {
    assert.equal((await cognisync('migrate', '--data-dir', dataDir)).code, 0);
    const backup = await cognisync('backup', `--out=${join(dataDir, 'copy.db')}`, '--data-dir', dataDir);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stdout, /backed up \d+ pages/);
    const missing = await cognisync('backup', '--out', '--data-dir', dataDir);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /backup needs --out FILE/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('serve prints exactly one listening line on stdout; generated credentials go to stderr once', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-cli-'));
  try {
    const env = { COGNISYNC_ACCESS_KEY_ID: '', COGNISYNC_SECRET_ACCESS_KEY: '' };
    const first = await startServer({ dataDir, env });
    let stdout = '';
    first.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    assert.match(first.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    await first.stop();
    assert.equal(stdout, '', 'nothing but the listening line on stdout');
    assert.match(first.stderr(), /COGNISYNC_SECRET_ACCESS_KEY=/);
    const second = await startServer({ dataDir, env });
    await second.stop();
    assert.doesNotMatch(second.stderr(), /COGNISYNC_SECRET_ACCESS_KEY=/, 'printed only on first start');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('listening on every interface without COGNISYNC_PUBLIC_URL warns that the OpenID issuer is the wildcard address; with it, no warning', async () => {
  const wildcard = await startServer({ args: ['--host', '0.0.0.0'] });
  const named = await startServer({ args: ['--host', '0.0.0.0'], env: { COGNISYNC_PUBLIC_URL: 'https://sync.example.com' } });
  // Stopped first: log lines are written in batches, at the latest when the server stops.
  await Promise.all([wildcard.stop(), named.stop()]);
  const warning = wildcard.stderr().split('\n').find((line) => line.includes('COGNISYNC_PUBLIC_URL is not set'));
  assert.ok(warning, wildcard.stderr());
  assert.match(JSON.parse(warning).issuer, /^http:\/\/0\.0\.0\.0:\d+$/);
  assert.doesNotMatch(named.stderr(), /COGNISYNC_PUBLIC_URL is not set/);
});
