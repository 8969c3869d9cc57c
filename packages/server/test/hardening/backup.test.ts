// `cognisync backup --out FILE` copies a live SQLite store while the server keeps writing; the documented
// restore (stop, copy the backup to <data-dir>/cognisync.db, remove -wal/-shm, start with the same master key)
// brings back a consistent snapshot, with issued identity credentials and SyncSessionTokens still valid.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { CreateIdentityPoolCommand, DescribeIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { RESTORE_SYNC_COUNT_GAP } from '../../src/core/restore.ts';
import { binPath, developerCredentials, identityClient, identityCredentials, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

const run = promisify(execFile);
// The usual umask, under which files are created 0644 unless asked otherwise; the child processes inherit it.
process.umask(0o022);
const work = mkdtempSync(join(tmpdir(), 'cognisync-backup-'));
const dataDir = join(work, 'data');
const env = { COGNISYNC_MASTER_KEY: randomBytes(32).toString('base64'), COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '0' };
after(() => rmSync(work, { recursive: true, force: true }));

function backup(out: string, args: string[] = ['--data-dir', dataDir]) {
  return run(process.execPath, [binPath, 'backup', '--out', out, ...args], { env: { ...process.env, ...env } });
}

test('backup while writing, then restore per the README: a consistent snapshot that keeps working', { timeout: 60_000 }, async () => {
  let server: ServerProcess = await startServer({ dataDir, env });
  const poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'backup', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  const alice = await identityCredentials(server.endpoint, poolId);
  const key = { IdentityPoolId: poolId, IdentityId: alice.identityId, DatasetName: 'journal' };
  const client = syncClient(server.endpoint, alice.credentials);
  const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));

  let writing = true;
  let writer: Promise<void> | undefined;
  try {
    // One sequential writer: after n acknowledged writes the dataset is exactly `history[n]`.
    const history: Record<string, string>[] = [{}];
    let writerFailure: unknown;
    // Waits for `written` acknowledged writes; a writer that failed fails the test instead of leaving it waiting.
    const untilWritten = async (written: number) => {
      while (history.length - 1 < written) {
        if (writerFailure) throw writerFailure;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    writer = (async () => {
      for (let n = 1; writing; n++) {
        const current = history[history.length - 1]!;
        const recordKey = `entry-${n % 40}`;
        const syncCount = Object.hasOwn(current, recordKey) ? n - 40 : 0;
        const value = `written #${n} ${'.'.repeat(n % 300)}`;
        await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: recordKey, Value: value, SyncCount: syncCount }] }));
        history.push({ ...current, [recordKey]: value });
      }
    })().catch((error: unknown) => {
      writerFailure = error;
    });
    await untilWritten(49);

    const out = join(work, 'cognisync-backup.db');
    const writtenBefore = history.length - 1;
    const { stdout, stderr } = await backup(out);
    const writtenAfter = history.length - 1;
    assert.match(stdout, /^cognisync: backed up \d+ pages to .*cognisync-backup\.db\n$/);
    assert.match(stderr, /COGNISYNC_MASTER_KEY/, 'the command reminds to keep the master key');
    await untilWritten(writtenAfter + 20);
    writing = false;
    await writer;
    if (writerFailure) throw writerFailure;
    const writtenInTotal = history.length - 1;
    assert.ok(writtenAfter > writtenBefore || writtenBefore > 0);

    // The backup and the database hold the developer and SyncSessionToken secrets: only the owner may read them.
    assert.equal(statSync(out).mode & 0o777, 0o600, 'backup file mode');
    assert.equal(statSync(dataDir).mode & 0o777, 0o700, 'data dir mode');
    for (const file of ['cognisync.db', 'cognisync.db-wal', 'cognisync.db-shm']) assert.equal(statSync(join(dataDir, file)).mode & 0o777, 0o600, `${file} mode`);

    // A second backup to the same file is refused rather than overwriting it.
    await assert.rejects(backup(out), (error: { code: number; stderr: string }) => error.code === 1 && /already exists/.test(error.stderr));

    // Restore, as documented: stop, copy the backup over the database, remove -wal/-shm, start with the same master key.
    assert.equal(await server.stop(), 0);
    copyFileSync(out, join(dataDir, 'cognisync.db'));
    for (const suffix of ['-wal', '-shm']) rmSync(join(dataDir, `cognisync.db${suffix}`), { force: true });
    server = await startServer({ dataDir, env });
    assert.equal((await identityClient(server.endpoint).send(new DescribeIdentityPoolCommand({ IdentityPoolId: poolId }))).IdentityPoolName, 'backup');
    // Alice's credentials (issued before the backup) and her SyncSessionToken still work: same master key, same database secrets.
    const restored = syncClient(server.endpoint, alice.credentials);
    const listed = await restored.send(new ListRecordsCommand({ ...key, MaxResults: 1024 }));
    // Each write took the next SyncCount, so the newest record's is the dataset's at the backup.
    const count = Math.max(...listed.Records!.map((r) => r.SyncCount!));
    // The snapshot is one moment of the history, taken while the command ran: nothing acknowledged before it
    // started is missing, nothing half-written.
    assert.ok(count >= writtenBefore && count <= writtenAfter, `snapshot at SyncCount ${count}, backup ran between ${writtenBefore} and ${writtenAfter} (of ${writtenInTotal})`);
    const records = Object.fromEntries(listed.Records!.map((r) => [r.Key!, r.Value!]));
    assert.deepEqual(records, history[count]);
    // The backup is marked as a restore: the dataset's counter jumped ahead (past the gap and the clock), so the
    // counts handed out after the backup are never handed out again, and a device that synced after the backup is
    // told its copy is gone; one that synced before it, or with the restored database, is not.
    const mark = listed.DatasetSyncCount!;
    assert.ok(mark >= count + RESTORE_SYNC_COUNT_GAP, `marked at ${mark}`);
    const developer = syncClient(server.endpoint, developerCredentials);
    const deletedFor = async (LastSyncCount: number) => (await developer.send(new ListRecordsCommand({ ...key, LastSyncCount }))).DatasetDeletedAfterRequestedSyncCount;
    assert.equal(await deletedFor(writtenInTotal), true, 'synced after the backup');
    assert.equal(await deletedFor(count), false, 'synced before it');
    assert.equal(await deletedFor(mark), false, 'synced with the restored database');
    // And it goes on from there, with a token from before the backup and with a new one.
    await restored.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'after-restore', Value: 'yes', SyncCount: 0 }] }));
    const fresh = await restored.send(new ListRecordsCommand({ ...key, LastSyncCount: mark }));
    await restored.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: fresh.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'with-new-token', Value: 'yes', SyncCount: 0 }] }));
    const after = await developer.send(new ListRecordsCommand({ ...key, LastSyncCount: count }));
    assert.deepEqual(after.Records!.map((r) => [r.Key, r.SyncCount]), [['after-restore', mark + 1], ['with-new-token', mark + 2]]);
  } finally {
    // Nothing left running, whatever failed: a live writer and server would keep the test from ever ending.
    writing = false;
    await writer;
    await server.stop();
  }
});

test('backup refuses a PostgreSQL store (pg_dump is the tool, password masked) and a missing database', async () => {
  const out = join(work, 'never.db');
  await assert.rejects(backup(out, ['--database-url', 'postgres://cognisync:hunter2@db.internal:5432/cognisync']), (error: { stderr: string }) => {
    assert.match(error.stderr, /pg_dump --format=custom/);
    assert.doesNotMatch(error.stderr, /hunter2/);
    return true;
  });
  await assert.rejects(backup(out, ['--data-dir', join(work, 'empty')]), (error: { stderr: string }) => /no database at/.test(error.stderr));
  assert.equal(existsSync(out), false);
});

test('one process per SQLite data dir: a second server on it is refused with a clear message (and may start once the first is gone, even after kill -9)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cognisync-lock-'));
  try {
    const first = await startServer({ dataDir: dir, env });
    await assert.rejects(startServer({ dataDir: dir, env }), /exited with 1 before listening[\s\S]*data dir .* is in use by another cognisync process/);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const next = await startServer({ dataDir: dir, env });
    assert.equal(await next.stop(), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
