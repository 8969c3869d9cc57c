// Scale-out and failure tests, black-box: several real server processes on one PostgreSQL database under
// concurrent AWS SDK v3 clients, kill -9 in the middle of a write load on both stores, and a database
// outage simulated by a TCP proxy between the server and PostgreSQL. Every load is bounded in count and time.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateIdentityPoolCommand, GetCredentialsForIdentityCommand, GetOpenIdTokenForDeveloperIdentityCommand, MergeDeveloperIdentitiesCommand } from '@aws-sdk/client-cognito-identity';
import { ListDatasetsCommand, ListRecordsCommand, UpdateRecordsCommand, type CognitoSyncClient, type _Record } from '@aws-sdk/client-cognito-sync';
import pg from 'pg';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.ts';
import { identityClient, newIdentityId, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

// The SQLite durability test must run in the default `synchronous` mode (NORMAL in WAL), whatever the caller's shell says;
// and every server here gets its store explicitly, never from the wire-postgres switch.
delete process.env.COGNISYNC_SQLITE_SYNCHRONOUS;
delete process.env.COGNISYNC_TEST_STORE;

const pgReachable = await postgresAvailable();
if (!pgReachable && process.env.CI) throw new Error('PostgreSQL is required in CI (127.0.0.1:5432)');
const skipPostgres = pgReachable ? false : 'PostgreSQL is not reachable';

/** Every process sharing one database must derive the same credential secrets. */
const sharedEnv = { COGNISYNC_MASTER_KEY: 'scale-out-test-master-key' };

type AwsError = Error & { $metadata?: { httpStatusCode?: number } };
const statusOf = (error: unknown) => (error as AwsError).$metadata?.httpStatusCode;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function createPool(endpoint: string, name: string): Promise<string> {
  const pool = await identityClient(endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: name, AllowUnauthenticatedIdentities: true }));
  return pool.IdentityPoolId!;
}

interface DatasetKey {
  IdentityPoolId: string;
  IdentityId: string;
  DatasetName: string;
}

/** Every record of a dataset (all pages) and its SyncCount. */
async function listAll(client: CognitoSyncClient, key: DatasetKey) {
  const records: _Record[] = [];
  let nextToken: string | undefined;
  let datasetSyncCount = 0;
  do {
    const page = await client.send(new ListRecordsCommand({ ...key, LastSyncCount: 0, ...(nextToken ? { NextToken: nextToken } : {}) }));
    records.push(...(page.Records ?? []));
    datasetSyncCount = page.DatasetSyncCount ?? 0;
    nextToken = page.NextToken;
  } while (nextToken);
  return { records, datasetSyncCount };
}

const isAlive = (server: ServerProcess) => server.child.exitCode === null && server.child.signalCode === null;

async function waitForExit(server: ServerProcess): Promise<void> {
  if (!isAlive(server)) return;
  await new Promise((resolve) => server.child.once('exit', resolve));
}

describe('several server processes on one PostgreSQL database', { skip: skipPostgres }, () => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];
  let clients: CognitoSyncClient[];
  let poolId: string;

  before(async () => {
    database = await createTestDatabase('cognisync_scale');
    const env = { ...sharedEnv, COGNISYNC_LIMIT_DATASETS_PER_IDENTITY: '3' };
    // Start one first so the others find the schema migrated (they would wait on the migration lock anyway).
    servers.push(await startServer({ databaseUrl: database.url, env }));
    servers.push(...(await Promise.all([startServer({ databaseUrl: database.url, env }), startServer({ databaseUrl: database.url, env })])));
    clients = servers.map((server) => syncClient(server.endpoint));
    poolId = await createPool(servers[0]!.endpoint, 'scale-out');
  });
  after(async () => {
    const codes = await Promise.all(servers.map((server) => server.stop()));
    await database?.drop();
    assert.deepEqual(codes, servers.map(() => 0));
  });

  test('a contended hot dataset: every acknowledged write gets the next SyncCount, and replaying them gives the final state', async (t) => {
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'hot' };
    const recordKeys = ['alpha', 'beta', 'gamma', 'delta'];
    const loops = 12;
    const iterations = 25;
    const acknowledged: { key: string; value: string; syncCount: number }[] = [];
    let conflicts = 0;

    await Promise.all(
      range(loops).map(async (loop) => {
        const client = clients[loop % clients.length]!;
        for (let iteration = 0; iteration < iterations; iteration++) {
          const listed = await client.send(new ListRecordsCommand({ ...key, LastSyncCount: 0 }));
          const recordKey = recordKeys[Math.floor(Math.random() * recordKeys.length)]!;
          const seen = listed.Records?.find((record) => record.Key === recordKey)?.SyncCount ?? 0;
          const value = `loop ${loop} iteration ${iteration}`;
          try {
            const written = await client.send(
              new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: recordKey, Value: value, SyncCount: seen }] }),
            );
            assert.equal(written.Records?.length, 1);
            const record = written.Records![0]!;
            assert.equal(record.Key, recordKey);
            assert.equal(record.Value, value);
            acknowledged.push({ key: recordKey, value, syncCount: record.SyncCount! });
          } catch (error) {
            // A lost race is the protocol working; anything else is a failure.
            if ((error as Error).name !== 'ResourceConflictException') throw error;
            assert.equal(statusOf(error), 409);
            conflicts++;
          }
        }
      }),
    );

    t.diagnostic(`${acknowledged.length} writes acknowledged, ${conflicts} rejected with ResourceConflictException`);
    assert.equal(acknowledged.length + conflicts, loops * iterations);
    assert.ok(acknowledged.length > 0, 'some writes succeeded');
    assert.ok(conflicts > 0, 'some writes lost a race and were rejected');

    // (a) No skipped and no repeated SyncCount: the acknowledged writes are numbered exactly 1..N.
    const syncCounts = acknowledged.map((write) => write.syncCount).sort((a, b) => a - b);
    assert.deepEqual(syncCounts, range(acknowledged.length).map((i) => i + 1));

    // (b) Replaying the acknowledged writes serially reproduces what every process now serves.
    const replayed = new Map<string, { value: string; syncCount: number }>();
    for (const write of [...acknowledged].sort((a, b) => a.syncCount - b.syncCount)) replayed.set(write.key, { value: write.value, syncCount: write.syncCount });
    const expected = [...replayed].map(([recordKey, { value, syncCount }]) => ({ key: recordKey, value, syncCount })).sort((a, b) => a.key.localeCompare(b.key));
    for (const client of clients) {
      const final = await listAll(client, key);
      assert.equal(final.datasetSyncCount, acknowledged.length);
      const actual = final.records.map((record) => ({ key: record.Key!, value: record.Value!, syncCount: record.SyncCount! })).sort((a, b) => a.key.localeCompare(b.key));
      assert.deepEqual(actual, expected);
    }
  });

  test('concurrent writers of one record with the same SyncCount, spread over the processes: exactly one wins', async () => {
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'contended' };
    const first = await clients[0]!.send(new ListRecordsCommand(key));
    await clients[0]!.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: first.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'counter', Value: 'start', SyncCount: 0 }] }));
    const writers = 12;
    // Each writer gets its token from the process it will write to, then all fire at once.
    const tokens = await Promise.all(range(writers).map(async (i) => (await clients[i % clients.length]!.send(new ListRecordsCommand(key))).SyncSessionToken!));
    const results = await Promise.allSettled(
      range(writers).map((i) =>
        clients[i % clients.length]!.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: tokens[i]!, RecordPatches: [{ Op: 'replace', Key: 'counter', Value: `writer ${i}`, SyncCount: 1 }] })),
      ),
    );
    const winners = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []));
    assert.equal(winners.length, 1, 'exactly one writer wins');
    for (const result of results) {
      if (result.status === 'fulfilled') {
        assert.equal(result.value.Records![0]!.SyncCount, 2);
        continue;
      }
      assert.equal((result.reason as Error).name, 'ResourceConflictException', String(result.reason));
      assert.equal(statusOf(result.reason), 409);
    }
    for (const client of clients) {
      const final = await listAll(client, key);
      assert.equal(final.datasetSyncCount, 2);
      assert.deepEqual(final.records.map((record) => [record.Key, record.Value, record.SyncCount]), [['counter', `writer ${winners[0]}`, 2]]);
    }
  });

  test('a Cognito token one process issued logs in on every other (each names itself the issuer)', async () => {
    const developerPool = (await identityClient(servers[0]!.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'tokens', AllowUnauthenticatedIdentities: false, DeveloperProviderName: 'login.scale' }))).IdentityPoolId!;
    const { IdentityId, Token } = await identityClient(servers[0]!.endpoint).send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: developerPool, Logins: { 'login.scale': 'alice' } }));
    for (const server of servers) {
      const { Credentials } = await identityClient(server.endpoint).send(new GetCredentialsForIdentityCommand({ IdentityId, Logins: { 'cognito-identity.amazonaws.com': Token! } }));
      assert.ok(Credentials?.SessionToken, server.endpoint);
    }
  });

  test('sign-ins of a developer user whose identity keeps being merged into others, across processes, all succeed', async () => {
    const developerPool = (await identityClient(servers[0]!.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'merging', AllowUnauthenticatedIdentities: false, DeveloperProviderName: 'login.scale' }))).IdentityPoolId!;
    const clients = servers.map((server) => identityClient(server.endpoint));
    const signIn = (n: number, user: string) => clients[n % clients.length]!.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: developerPool, Logins: { 'login.scale': user } }));
    await signIn(0, 'moving');
    const deadline = Date.now() + 6_000;
    const failures: string[] = [];
    let signIns = 0;
    let merges = 0;
    const signers = Array.from({ length: 12 }, async (_, n) => {
      while (Date.now() < deadline) await signIn(n, 'moving').then(() => signIns++, (error: Error) => failures.push(`${error.name}: ${error.message}`));
    });
    const merger = (async () => {
      for (let k = 0; Date.now() < deadline; k++) {
        await signIn(k, `destination-${k}`);
        await clients[(k + 1) % clients.length]!.send(new MergeDeveloperIdentitiesCommand({ IdentityPoolId: developerPool, DeveloperProviderName: 'login.scale', SourceUserIdentifier: 'moving', DestinationUserIdentifier: `destination-${k}` }));
        merges++;
      }
    })();
    await Promise.all([...signers, merger]);
    assert.ok(merges >= 10 && signIns >= 100, `${merges} merges, ${signIns} sign-ins`);
    assert.deepEqual(failures, []);
  });

  test('concurrent first writes to new datasets of one identity across processes never exceed the datasets-per-identity limit', async () => {
    const identityId = newIdentityId();
    const names = range(10).map((i) => `dataset-${i}`);
    const tokens = await Promise.all(
      names.map(async (name, i) => (await clients[i % clients.length]!.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: name }))).SyncSessionToken!),
    );
    const results = await Promise.allSettled(
      names.map((name, i) =>
        clients[i % clients.length]!.send(
          new UpdateRecordsCommand({
            IdentityPoolId: poolId, IdentityId: identityId, DatasetName: name, SyncSessionToken: tokens[i]!,
            RecordPatches: [{ Op: 'replace', Key: 'k', Value: name, SyncCount: 0 }],
          }),
        ),
      ),
    );
    const created = names.filter((_, i) => results[i]!.status === 'fulfilled');
    assert.equal(created.length, 3);
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      assert.equal((result.reason as Error).name, 'LimitExceededException', String(result.reason));
      assert.equal(statusOf(result.reason), 400);
    }
    for (const client of clients) {
      const listed = await client.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: identityId }));
      assert.deepEqual(listed.Datasets!.map((dataset) => dataset.DatasetName).sort(), created.sort());
      assert.equal(listed.Count, 3);
    }
  });
});

/**
 * Writers (one identity each, distinct new keys, so no conflicts) against one server; the server is killed
 * with SIGKILL once `killAfter` writes were acknowledged. Returns every acknowledged write.
 */
async function writeUntilKilled(server: ServerProcess, poolId: string, options: { writers: number; maxWritesPerWriter: number; killAfter: number }) {
  const client = syncClient(server.endpoint);
  const acknowledged = new Map<string, Map<string, string>>();
  let total = 0;
  let killed = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    server.child.kill('SIGKILL');
  };
  // Bounded in time too: if the writers are slow, kill whatever was written by then.
  const deadline = setTimeout(kill, 10_000);
  const identities = range(options.writers).map(() => newIdentityId());
  await Promise.all(
    identities.map(async (identityId, writer) => {
      const key = { IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'durable' };
      const mine = new Map<string, string>();
      acknowledged.set(identityId, mine);
      const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
      for (let i = 0; i < options.maxWritesPerWriter && !killed; i++) {
        const recordKey = `w${writer}-${i}`;
        const value = `value ${writer}/${i} ${'x'.repeat(i % 50)}`;
        try {
          await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: recordKey, Value: value, SyncCount: 0 }] }));
        } catch (error) {
          if (killed) return; // The in-flight request of a killed server: it may or may not have committed.
          throw error;
        }
        mine.set(recordKey, value);
        if (++total >= options.killAfter) kill();
      }
    }),
  ).finally(() => clearTimeout(deadline));
  client.destroy();
  await waitForExit(server);
  assert.equal(server.child.signalCode, 'SIGKILL', 'the server was killed in the middle of the load, not stopped');
  return { acknowledged, total };
}

/** Asserts every acknowledged write survived; at most one unacknowledged (in-flight) write per writer may have, too. */
async function assertDurable(server: ServerProcess, poolId: string, acknowledged: Map<string, Map<string, string>>): Promise<number> {
  const client = syncClient(server.endpoint);
  let unacknowledgedSurvivors = 0;
  for (const [identityId, writes] of acknowledged) {
    const { records, datasetSyncCount } = await listAll(client, { IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'durable' });
    const stored = new Map(records.map((record) => [record.Key!, record.Value!]));
    for (const [recordKey, value] of writes) assert.equal(stored.get(recordKey), value, `acknowledged write ${recordKey} of ${identityId} survived`);
    const extra = records.length - writes.size;
    assert.ok(extra === 0 || extra === 1, `only an in-flight write may have survived unacknowledged (found ${extra} extra)`);
    unacknowledgedSurvivors += extra;
    // Each write was one UpdateRecords of one new key: the dataset counter matches the records exactly.
    assert.equal(datasetSyncCount, records.length);
  }
  client.destroy();
  return unacknowledgedSurvivors;
}

describe('kill -9 in the middle of a write load loses no acknowledged write', () => {
  const load = { writers: 6, maxWritesPerWriter: 150, killAfter: 240 };

  test('SQLite, default synchronous mode (NORMAL in WAL)', async (t) => {
    assert.equal(process.env.COGNISYNC_SQLITE_SYNCHRONOUS, undefined, 'the server runs with the default synchronous mode');
    const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-kill-'));
    const restarted: ServerProcess[] = [];
    try {
      const server = await startServer({ dataDir });
      const poolId = await createPool(server.endpoint, 'durability');
      const { acknowledged, total } = await writeUntilKilled(server, poolId, load);
      t.diagnostic(`${total} writes acknowledged before kill -9`);
      assert.ok(total >= 1, 'writes were acknowledged before the kill');
      // Killed before any checkpoint could fold everything in: recovery goes through the WAL.
      assert.ok(existsSync(join(dataDir, 'cognisync.db-wal')), 'the write-ahead log was left behind');
      restarted.push(await startServer({ dataDir }));
      const survivors = await assertDurable(restarted[0]!, poolId, acknowledged);
      t.diagnostic(`all acknowledged writes present after restart; ${survivors} unacknowledged in-flight writes had committed too`);
    } finally {
      for (const server of restarted) assert.equal(await server.stop(), 0);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL', { skip: skipPostgres }, async (t) => {
    const database = await createTestDatabase('cognisync_kill');
    const restarted: ServerProcess[] = [];
    try {
      const server = await startServer({ databaseUrl: database.url, env: sharedEnv });
      const poolId = await createPool(server.endpoint, 'durability');
      const { acknowledged, total } = await writeUntilKilled(server, poolId, load);
      t.diagnostic(`${total} writes acknowledged before kill -9`);
      assert.ok(total >= 1, 'writes were acknowledged before the kill');
      // Already dead: this only removes the data dir the helper made for it.
      await server.stop();
      restarted.push(await startServer({ databaseUrl: database.url, env: sharedEnv }));
      const survivors = await assertDurable(restarted[0]!, poolId, acknowledged);
      t.diagnostic(`all acknowledged writes present after restart; ${survivors} unacknowledged in-flight writes had committed too`);
    } finally {
      for (const server of restarted) assert.equal(await server.stop(), 0);
      await database.drop();
    }
  });
});

/**
 * A loopback TCP proxy that can drop every connection and refuse new ones, to take a database "away", or silence the
 * connections open now while new ones work (a failover that leaves the old connections hanging).
 */
class TcpProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private down = false;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((downstream) => {
      if (this.down) {
        downstream.destroy();
        return;
      }
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [downstream, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.sockets.delete(socket);
          downstream.destroy();
          upstream.destroy();
        });
      }
      downstream.pipe(upstream);
      upstream.pipe(downstream);
      const pair: [net.Socket, net.Socket] = [downstream, upstream];
      this.pairs.add(pair);
      downstream.on('close', () => this.pairs.delete(pair));
    });
  }

  /** The connections open now stay open but carry nothing more, either way; new ones work. */
  silenceOpenConnections(): void {
    for (const [downstream, upstream] of this.pairs) {
      downstream.unpipe(upstream);
      upstream.unpipe(downstream);
      downstream.pause();
      upstream.pause();
    }
    this.pairs.clear();
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Every open connection is cut; new ones are accepted and dropped at once. */
  takeDown(): void {
    this.down = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.takeDown();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('PostgreSQL connections gone silent (a failover that leaves them hanging)', { skip: skipPostgres }, () => {
  test('a statement nobody answers fails after COGNISYNC_DATABASE_QUERY_TIMEOUT_MS as a 500, and new connections take over', { timeout: 60_000 }, async (t) => {
    const database = await createTestDatabase('cognisync_silent');
    const direct = new URL(database.url);
    const proxy = new TcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const proxied = new URL(database.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(await proxy.listen());
    const server = await startServer({ databaseUrl: proxied.toString(), env: { ...sharedEnv, COGNISYNC_DATABASE_QUERY_TIMEOUT_MS: '1000' } });
    try {
      const client = syncClient(server.endpoint);
      const poolId = await createPool(server.endpoint, 'silent');
      const identities = range(8).map(() => newIdentityId());
      const listAll = () => Promise.allSettled(identities.map((IdentityId) => client.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId }))));
      assert.deepEqual((await listAll()).map((r) => r.status), identities.map(() => 'fulfilled'));

      proxy.silenceOpenConnections();
      const started = Date.now();
      const during = await listAll();
      const took = Date.now() - started;
      t.diagnostic(`with the pool's connections silent: ${during.filter((r) => r.status === 'fulfilled').length} answered, in ${took} ms`);
      assert.ok(took < 10_000, `answered within the query timeout, not held (${took} ms)`);
      for (const result of during) {
        if (result.status === 'rejected') assert.equal(`${result.reason.name}:${statusOf(result.reason)}`, 'InternalErrorException:500', result.reason.message);
      }
      // The silent connections were dropped: what follows runs on new ones.
      assert.deepEqual((await listAll()).map((r) => r.status), identities.map(() => 'fulfilled'));
    } finally {
      assert.equal(await server.stop(), 0);
      await proxy.close();
      await database.drop();
    }
  });
});

describe('PostgreSQL outage and recovery', { skip: skipPostgres }, () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let server: ServerProcess | undefined;

  before(async () => {
    database = await createTestDatabase('cognisync_outage');
    const direct = new URL(database.url);
    proxy = new TcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const proxied = new URL(database.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(await proxy.listen());
    server = await startServer({ databaseUrl: proxied.toString(), env: sharedEnv });
  });
  after(async () => {
    proxy.restore();
    const code = server && isAlive(server) ? await server.stop() : server?.child.exitCode;
    await proxy.close();
    await database.drop();
    assert.equal(code, 0, `the server exited cleanly; stderr:\n${server?.stderr()}`);
  });

  test('requests fail with an AWS-shaped 5xx while the database is away, and succeed again once it is back', async (t) => {
    const running = server!;
    const client = syncClient(running.endpoint);
    const ready = async () => (await fetch(`${running.endpoint}/ready`)).status;
    /** /ready's answer once it shows `status` (it asks the store at most once a second), or its last. */
    const readyTurns = async (status: number) => {
      const deadline = Date.now() + 3_000;
      let last = await ready();
      while (last !== status && Date.now() < deadline) {
        await sleep(100);
        last = await ready();
      }
      return last;
    };
    const poolId = await createPool(running.endpoint, 'outage');
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'kept' };
    const listed = await client.send(new ListRecordsCommand(key));
    await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'before', Value: 'intact', SyncCount: 0 }] }));
    assert.equal(await ready(), 200);

    // Writers are in the middle of transactions when the connections are cut.
    const allowed = new Set(['InternalErrorException:500', 'TooManyRequestsException:429']);
    const failures: string[] = [];
    let stopWriters = false;
    const writers = range(4).map(async (writer) => {
      const own = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'busy' };
      const { SyncSessionToken } = await client.send(new ListRecordsCommand(own));
      for (let i = 0; i < 400 && !stopWriters; i++) {
        try {
          await client.send(new UpdateRecordsCommand({ ...own, SyncSessionToken: SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: `k${writer}-${i}`, Value: 'v', SyncCount: 0 }] }));
        } catch (error) {
          failures.push(`${(error as Error).name}:${statusOf(error)}`);
          await sleep(20);
        }
      }
    });
    await sleep(300);
    proxy.takeDown();
    await sleep(700);
    stopWriters = true;
    await Promise.all(writers);
    t.diagnostic(`writers' failures during the outage: ${JSON.stringify(Object.fromEntries([...new Set(failures)].map((f) => [f, failures.filter((g) => g === f).length])))}`);
    assert.ok(failures.length > 0, 'the writers saw the outage');
    assert.deepEqual(failures.filter((failure) => !allowed.has(failure)), [], 'every failure was InternalErrorException (500) or TooManyRequestsException (429)');

    for (const call of [
      () => client.send(new ListRecordsCommand(key)),
      () => client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'during', Value: 'outage', SyncCount: 0 }] })),
      () => client.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: key.IdentityId })),
    ]) {
      const error = await call().then(
        () => assert.fail('a request succeeded while the database was away'),
        (caught: unknown) => caught as AwsError,
      );
      assert.ok(allowed.has(`${error.name}:${statusOf(error)}`), `${error.name} (${statusOf(error)}): ${error.message}`);
    }
    assert.equal(await readyTurns(503), 503);
    await sleep(200);
    assert.ok(isAlive(running), `the server survived the outage; stderr:\n${running.stderr()}`);

    proxy.restore();
    const restoredAt = Date.now();
    const deadline = restoredAt + 10_000;
    let recovered: Awaited<ReturnType<typeof listAll>> | undefined;
    while (!recovered) {
      try {
        recovered = await listAll(client, key);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
    t.diagnostic(`requests succeeded again ${Date.now() - restoredAt} ms after the database came back`);
    assert.equal(await readyTurns(200), 200);
    assert.deepEqual(recovered.records.map((record) => [record.Key, record.Value, record.SyncCount]), [['before', 'intact', 1]]);
    const again = await client.send(new ListRecordsCommand(key));
    const written = await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: again.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'after', Value: 'recovered', SyncCount: 0 }] }));
    assert.equal(written.Records![0]!.SyncCount, 2);
    client.destroy();
  });
});

describe('/ready on a read-only PostgreSQL (a standby after a failover)', { skip: skipPostgres }, () => {
  test('answers 503, and a flood of probes opens a few database sessions, not one each; 200 again once the database is writable', async () => {
    const database = await createTestDatabase('cognisync_ready');
    const name = new URL(database.url).pathname.slice(1);
    const server = await startServer({ databaseUrl: database.url });
    const admin = new pg.Client({ connectionString: database.url.replace(`/${name}`, '/postgres') });
    await admin.connect();
    const sessions = async () => Number((await admin.query('SELECT sessions FROM pg_stat_database WHERE datname = $1', [name])).rows[0].sessions);
    const ready = async () => (await fetch(`${server.endpoint}/ready`)).status;
    try {
      assert.equal(await ready(), 200);
      await admin.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      await sleep(1_100);
      const before = await sessions();
      const answers = await Promise.all(Array.from({ length: 300 }, () => ready()));
      assert.deepEqual([...new Set(answers)], [503]);
      const opened = (await sessions()) - before;
      assert.ok(opened <= 5, `${opened} sessions opened for 300 probes`);
      await admin.query(`ALTER DATABASE ${name} RESET default_transaction_read_only`);
      const deadline = Date.now() + 5_000;
      while ((await ready()) !== 200) {
        assert.ok(Date.now() < deadline, '/ready stayed 503 after the database was writable again');
        await sleep(100);
      }
    } finally {
      await admin.query(`ALTER DATABASE ${name} RESET default_transaction_read_only`).catch(() => undefined);
      await admin.end();
      await server.stop();
      await database.drop();
    }
  });
});
