// A PostgreSQL database restored with pg_dump/pg_restore, into a new database or over the old one (--clean), is
// found restored when a server next opens it, and marked as `cognisync mark-restored` would mark it
// (PostgresStore.markIfRestored, core/restore.ts): a device that synced what the restore lost is told its copy is gone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import pg from 'pg';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { RESTORE_SYNC_COUNT_GAP } from '../../src/core/restore.ts';
import { createTestDatabase, postgresAvailable } from '../support/postgres.ts';
import { binPath, developerCredentials, identityClient, identityCredentials, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

delete process.env.COGNISYNC_TEST_STORE;
const pgReachable = await postgresAvailable();
if (!pgReachable && process.env.CI) throw new Error('PostgreSQL is required in CI (127.0.0.1:5432)');

const run = promisify(execFile);
const env = { COGNISYNC_MASTER_KEY: 'postgres-restore-test-master-key' };
const MARKED = /the database was restored or copied since it was last opened \(origin \S+, now \S+\): marked 1 datasets as restored/;

/** Whether the server logged the mark: log lines are written in batches, at least once a second. */
async function logsMark(server: ServerProcess): Promise<boolean> {
  for (const deadline = Date.now() + 3000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    if (MARKED.test(server.stderr())) return true;
  }
  return false;
}

test('a database restored with pg_restore is marked at the next start; restarts are not', { skip: pgReachable ? false : 'PostgreSQL is not reachable', timeout: 60_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'cognisync-pg-restore-'));
  const source = await createTestDatabase('cognisync_restore');
  const target = await createTestDatabase('cognisync_restore');
  let server: ServerProcess | undefined;
  const start = async (url: string) => (server = await startServer({ databaseUrl: url, dataDir: work, env }));
  try {
    await start(source.url);
    const poolId = (await identityClient(server!.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'restore', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
    const alice = await identityCredentials(server!.endpoint, poolId);
    const key = { IdentityPoolId: poolId, IdentityId: alice.identityId, DatasetName: 'journal' };
    let client = syncClient(server!.endpoint, alice.credentials);
    const write = async (recordKey: string, lastSyncCount: number) => {
      const { SyncSessionToken } = await client.send(new ListRecordsCommand({ ...key, LastSyncCount: lastSyncCount }));
      const answer = await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: recordKey, Value: 'v', SyncCount: 0 }] }));
      return answer.Records![0]!.SyncCount!;
    };
    assert.equal(await write('before-dump', 0), 1);
    const dump = join(work, 'cognisync.dump');
    await run('pg_dump', ['--format=custom', '--no-owner', `--file=${dump}`, source.url]);
    // Written and synced by a device after the dump: the restore loses it.
    assert.equal(await write('after-dump', 1), 2);
    assert.equal(await server!.stop(), 0);
    // First start on a fresh database: nothing to compare with, nothing marked (the log was flushed by the stop).
    assert.doesNotMatch(server!.stderr(), MARKED);

    // Restored into a new database.
    await run('pg_restore', ['--no-owner', `--dbname=${target.url}`, dump]);
    await start(target.url);
    assert.equal(await logsMark(server!), true, server!.stderr());
    client = syncClient(server!.endpoint, alice.credentials);
    const developer = () => syncClient(server!.endpoint, developerCredentials);
    const listed = await developer().send(new ListRecordsCommand({ ...key, LastSyncCount: 2 }));
    assert.equal(listed.DatasetDeletedAfterRequestedSyncCount, true, 'the device that synced after the dump is told');
    const mark = listed.DatasetSyncCount!;
    assert.ok(mark >= 1 + RESTORE_SYNC_COUNT_GAP, `marked at ${mark}`);
    assert.equal((await developer().send(new ListRecordsCommand({ ...key, LastSyncCount: 1 }))).DatasetDeletedAfterRequestedSyncCount, false, 'one that synced before it is not');
    assert.equal(await write('after-restore', mark), mark + 1);

    // A restart is no restore.
    assert.equal(await server!.stop(), 0);
    await start(target.url);
    client = syncClient(server!.endpoint, alice.credentials);
    assert.equal((await developer().send(new ListRecordsCommand({ ...key, LastSyncCount: mark + 1 }))).DatasetSyncCount, mark + 1);
    assert.equal(await logsMark(server!), false);

    // Restored over the same database (pg_restore --clean): its tables are new.
    await run('pg_dump', ['--format=custom', '--no-owner', `--file=${dump}`, target.url]);
    assert.equal(await write('after-second-dump', mark + 1), mark + 2);
    assert.equal(await server!.stop(), 0);
    await run('pg_restore', ['--clean', '--if-exists', '--no-owner', `--dbname=${target.url}`, dump]);
    await start(target.url);
    assert.equal(await logsMark(server!), true, server!.stderr());
    assert.equal((await developer().send(new ListRecordsCommand({ ...key, LastSyncCount: mark + 2 }))).DatasetDeletedAfterRequestedSyncCount, true);
    // The dataset keeps its first span's start: a device of the first lost time is still told, and so is one that
    // synced between the two restores (it syncs again once); one from before the first backup is not.
    assert.equal((await developer().send(new ListRecordsCommand({ ...key, LastSyncCount: 2 }))).DatasetDeletedAfterRequestedSyncCount, true);
    assert.equal((await developer().send(new ListRecordsCommand({ ...key, LastSyncCount: mark + 1 }))).DatasetDeletedAfterRequestedSyncCount, true);
    assert.equal((await developer().send(new ListRecordsCommand({ ...key, LastSyncCount: 1 }))).DatasetDeletedAfterRequestedSyncCount, false);
  } finally {
    await server?.stop();
    await source.drop();
    await target.drop();
    rmSync(work, { recursive: true, force: true });
  }
});

test('a process waiting for another\'s migrations or mark is not cut off by the statement timeout', { skip: pgReachable ? false : 'PostgreSQL is not reachable', timeout: 60_000 }, async () => {
  const database = await createTestDatabase('cognisync_lockwait');
  const holder = new pg.Client({ connectionString: database.url });
  await holder.connect();
  try {
    // What a process applying long migrations, or marking a large restored database, holds.
    await holder.query("SELECT pg_advisory_lock(hashtextextended('cognisync:migrations', 0))");
    const release = setTimeout(() => void holder.query("SELECT pg_advisory_unlock(hashtextextended('cognisync:migrations', 0))"), 2500);
    const started = Date.now();
    const { stdout } = await run(process.execPath, [binPath, 'migrate', '--database-url', database.url], { env: { ...process.env, ...env, COGNISYNC_DATABASE_QUERY_TIMEOUT_MS: '1000' } });
    clearTimeout(release);
    assert.match(stdout, /schema is up to date/);
    assert.ok(Date.now() - started >= 2000, 'it waited for the lock');
  } finally {
    await holder.end();
    await database.drop();
  }
});
