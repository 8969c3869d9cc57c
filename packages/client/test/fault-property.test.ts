// Property under faults: the interleavings of property.test.ts, while the network loses requests before they reach
// the server and answers after the server acted on them, delivers requests late or twice, and the app aborts syncs.
// Syncs that fail are simply tried again later, as an app would; once the network is healthy again every device
// converges, no written value vanishes unless a conflict hook dropped it or a later write on a device that had seen
// it replaced it, and no device is asked about a conflict on a key no other device wrote. Against one server on
// SQLite, and against two server processes on one PostgreSQL database behind a proxy that spreads requests over both.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../server/test/support/postgres.ts';
import type { SyncConflict } from '../src/conflicts.ts';
import type { Dataset } from '../src/dataset.ts';
import { IndexedDbStore } from '../src/stores/indexeddb/indexeddb-store.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { NamedMutex } from '../src/stores/mutex.ts';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.ts';
import type { LocalStore } from '../src/stores/store.ts';
import { createPool, device, operationOf, serverValues, startServer, type Endpoint, type ServerProcess } from './support.ts';
import { WriteLedger } from './write-ledger.ts';

/** Where the devices sync: an endpoint and a pool on it. */
interface Target {
  server: Endpoint;
  poolId: string;
}

const dir = mkdtempSync(join(tmpdir(), 'cognisync-faults-'));
let storeCount = 0;

/**
 * Each device's local store, MemoryStore, SqliteStore and IndexedDbStore (fake-indexeddb) in turn, opened twice: two
 * tabs (or app instances) of the device, each with its own manager, on one store.
 */
function tabStores(d: number): [LocalStore, LocalStore] {
  const kind = process.env.FAULT_STORE ?? ['memory', 'sqlite', 'indexeddb'][d % 3];
  const n = ++storeCount;
  if (kind === 'sqlite') {
    const path = join(dir, `device-${n}.db`);
    return [new SqliteStore(path, { synchronous: 'NORMAL' }), new SqliteStore(path, { synchronous: 'NORMAL' })];
  }
  if (kind === 'indexeddb') {
    // One browser: one IndexedDB and the Web Locks its tabs share (Node 20 has no navigator.locks).
    const options = { indexedDB: new IDBFactory(), IDBKeyRange, locks: webLocks() };
    return [new IndexedDbStore(`device-${n}`, options), new IndexedDbStore(`device-${n}`, options)];
  }
  const store = new MemoryStore();
  return [store, store];
}

/** The exclusive `navigator.locks.request(name, { signal }, callback)` of a browser, enough for IndexedDbStore. */
function webLocks(): LockManager {
  const mutex = new NamedMutex();
  const request = (name: string, options: LockOptions, callback: () => Promise<unknown>) => mutex.run(name, callback, Infinity, options.signal);
  return { request } as unknown as LockManager;
}

after(() => rmSync(dir, { recursive: true, force: true }));

/** Dozens of requests per identity in a few hundred milliseconds are the point here, not the server's throttling. */
const unthrottled = { COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '0' };

/** `tab`: which of the device's two managers acts (both on the device's one store). */
type Action =
  | { kind: 'put'; device: number; tab: number; key: string }
  | { kind: 'remove'; device: number; tab: number; key: string }
  | { kind: 'sync'; device: number; tab: number }
  | { kind: 'syncTogether'; device: number; tab: number; other: number }
  | { kind: 'syncInBackground'; device: number; tab: number }
  | { kind: 'syncAborted'; device: number; tab: number; afterMs: number };

const keys = ['a', 'b', 'c'];
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), device: fc.nat(2), tab: fc.nat(1), key: fc.constantFrom(...keys) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), device: fc.nat(2), tab: fc.nat(1), key: fc.constantFrom(...keys) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), device: fc.nat(2), tab: fc.nat(1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('syncTogether' as const), device: fc.nat(2), tab: fc.nat(1), other: fc.nat(2) }) },
  // A sync left running while the next steps (edits of the same device among them) go on.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('syncInBackground' as const), device: fc.nat(2), tab: fc.nat(1) }) },
  // The app aborts a sync (the user left the screen) at some point of it.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('syncAborted' as const), device: fc.nat(2), tab: fc.nat(1), afterMs: fc.nat(15) }) },
);

/** mulberry32: a small seeded generator, so that a failing run's faults can be replayed (timing aside). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the network does to one request, with its chance; UpdateRecords' answers go astray more often (the hard case). */
const faults = [
  { fault: 'lost before the server', chance: 0.05, updateChance: 0.05 },
  // The device gives up on a request that is only slow: it reaches the server later, while the device goes on.
  { fault: 'late', chance: 0.05, updateChance: 0.05 },
  { fault: '503 before the server', chance: 0.03, updateChance: 0.03 },
  { fault: 'answer lost', chance: 0.07, updateChance: 0.2 },
  // A gateway gives up waiting for the server, which still acts: the device gets a 504 for a request that was done.
  { fault: 'answer replaced by a 504', chance: 0.03, updateChance: 0.07 },
  // A proxy that lost the answer sends the same signed request again and passes on the second answer.
  { fault: 'sent twice', chance: 0.04, updateChance: 0.06 },
] as const;

function pickFault(roll: number, operation: string): (typeof faults)[number]['fault'] | undefined {
  let threshold = 0;
  for (const { fault, chance, updateChance } of faults) {
    threshold += operation === 'UpdateRecords' ? updateChance : chance;
    if (roll < threshold) return fault;
  }
  return undefined;
}

/** A network that, while `faulty`, does one of `faults` to about a quarter of the requests (nearly half of UpdateRecords). */
function flakyNetwork(seed: number, log: string[], name: string) {
  const random = generator(seed);
  const state = { faulty: false };
  const inFlight = new Set<Promise<unknown>>();
  const fetchImpl: typeof fetch = async (input, init) => {
    const operation = operationOf(input as string, init);
    const fault = state.faulty ? pickFault(random(), operation) : undefined;
    const delay = random() * 3;
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (fault === 'lost before the server') {
      log.push(`${name} ${operation}: lost before the server`);
      throw new TypeError('fetch failed (request lost)');
    }
    if (fault === '503 before the server') {
      log.push(`${name} ${operation}: 503 before the server`);
      return new Response('<html>503 Service Temporarily Unavailable</html>', { status: 503, headers: { 'content-type': 'text/html' } });
    }
    if (fault === 'late') {
      // Late enough, at times, for whole syncs to run before it lands.
      const late = 5 + random() * 145;
      log.push(`${name} ${operation}: timed out, lands in ${late.toFixed(0)} ms`);
      const landed = new Promise((resolve) => setTimeout(resolve, late))
        .then(() => fetch(input, init))
        .then(async (response) => log.push(`${name} ${operation} (late): ${response.status} ${response.status === 200 ? '' : await response.text()}`))
        .catch(() => {});
      inFlight.add(landed);
      void landed.finally(() => inFlight.delete(landed));
      throw new TypeError('fetch failed (timed out)');
    }
    const response = await fetch(input, init);
    if (fault === 'answer lost') {
      await response.arrayBuffer();
      log.push(`${name} ${operation}: answer ${response.status} lost`);
      throw new TypeError('fetch failed (answer lost)');
    }
    if (fault === 'answer replaced by a 504') {
      await response.arrayBuffer();
      log.push(`${name} ${operation}: answer ${response.status} replaced by a 504`);
      return new Response('<html>504 Gateway Time-out</html>', { status: 504, headers: { 'content-type': 'text/html' } });
    }
    if (fault === 'sent twice') {
      await response.arrayBuffer();
      const again = await fetch(input, init);
      log.push(`${name} ${operation}: answer ${response.status} lost, sent again: ${again.status}`);
      return again;
    }
    log.push(`${name} ${operation}: ${response.status}`);
    return response;
  };
  /** Resolves once every request the devices gave up on has landed. */
  const landed = async () => {
    while (inFlight.size) await Promise.all(inFlight);
  };
  return { fetch: fetchImpl, state, landed };
}

interface Scenario {
  target: Target;
  seeded: boolean;
  deviceCount: number;
  actions: Action[];
  policySeed: number;
  faultSeed: number;
}

/** One run: a new identity, a device per store, the actions under faults, then healthy rounds and the checks. */
async function scenario({ target: { server, poolId }, seeded, deviceCount, actions, policySeed, faultSeed }: Scenario) {
  const log: string[] = [];
  const trace = () => `\n${log.join('\n')}`;
  const identityId = await device(server, poolId).identityId();
  // Each tab has its own connection to the network (and its own faults).
  const networks = Array.from({ length: deviceCount }, (_, d) => [0, 1].map((tab) => flakyNetwork(faultSeed + 2 * d + tab, log, `device ${d} tab ${tab}`)));
  const stores = Array.from({ length: deviceCount }, (_, d) => tabStores(d));
  try {
    const datasets: Array<[Dataset, Dataset]> = await Promise.all(
      stores.map(async (tabs, d) => {
        const open = (tab: number) => device(server, poolId, { identityId, random: () => 0.5, fetch: networks[d]![tab]!.fetch, store: tabs[tab]! }).openOrCreateDataset('faults');
        return [await open(0), await open(1)] as [Dataset, Dataset];
      }),
    );

    const ledger = new WriteLedger(keys, policySeed);
    if (seeded) {
      for (const key of keys) ledger.seeded(key, `seed-${key}`);
      await datasets[0]![0].putAll(Object.fromEntries(keys.map((key) => [key, `seed-${key}`])));
      for (const [ds] of datasets) await ds.synchronize();
    }
    for (const n of networks.flat()) n.state.faulty = true;
    // Which devices wrote each key (after the seeding): a conflict on a key no other device wrote is spurious,
    // our own push coming back (an echo the sync failed to recognise).
    const writers = new Map<string, Set<number>>(keys.map((k) => [k, new Set()]));
    const spurious: string[] = [];
    const onConflict = (d: number, tab: number) => (conflicts: SyncConflict[]) =>
      conflicts.map((c) => {
        const choice = ledger.choose(c);
        log.push(`device ${d} tab ${tab} conflict ${c.key}: local ${c.localValue} remote ${c.remoteValue} → ${choice}`);
        if (![...writers.get(c.key)!].some((w) => w !== d)) spurious.push(`device ${d} key ${c.key}: local ${c.localValue} remote ${c.remoteValue}`);
        if (choice === 'value') writers.get(c.key)!.add(d);
        return ledger.resolve(d, c, choice);
      });
    const sync = async (d: number, tab = 0, signal?: AbortSignal) => {
      try {
        await datasets[d]![tab]!.synchronize({ onConflict: onConflict(d, tab), ...(signal ? { signal } : {}) });
        log.push(`device ${d} tab ${tab} synced`);
      } catch (error) {
        log.push(`device ${d} tab ${tab} sync failed: ${(error as Error).message}`);
      }
    };

    const background: Array<Promise<void>> = [];
    for (const step of actions) {
      const d = step.device % deviceCount;
      const tab = step.tab;
      const ds = datasets[d]![tab]!;
      if (step.kind === 'put' || step.kind === 'remove') {
        writers.get(step.key)!.add(d);
        const value = ledger.write(step.key, `d${d}`, await ds.get(step.key), step.kind === 'remove');
        log.push(`device ${d} tab ${tab} ${value === null ? `remove ${step.key}` : `put ${step.key}=${value}`}`);
        if (value === null) await ds.remove(step.key);
        else await ds.put(step.key, value);
      } else if (step.kind === 'sync') {
        await sync(d, tab);
      } else if (step.kind === 'syncInBackground') {
        background.push(sync(d, tab));
      } else if (step.kind === 'syncAborted') {
        await sync(d, tab, AbortSignal.timeout(step.afterMs));
      } else {
        // With itself: both tabs of the device at once.
        const other = step.other % deviceCount;
        await Promise.all(other === d ? [sync(d, 0), sync(d, 1)] : [sync(d, tab), sync(other, tab)]);
      }
    }
    await Promise.all([...background, ...datasets.map((_, d) => sync(d))]);
    for (const n of networks.flat()) n.state.faulty = false;
    log.push('--- network healthy');
    await Promise.all(networks.flat().map((network) => network.landed()));
    for (let round = 0; round < 3; round++) for (let d = 0; d < deviceCount; d++) await sync(d, round % 2);
    const remote = await serverValues(server, poolId, identityId, 'faults');
    assert.deepEqual(spurious, [], `conflicts on keys only the device itself wrote${trace()}`);
    for (let d = 0; d < deviceCount; d++) {
      for (const tab of [0, 1]) assert.deepEqual(await datasets[d]![tab]!.getAll(), remote, `device ${d} tab ${tab} holds the server's state${trace()}`);
      assert.equal(await datasets[d]![0].hasPendingChanges(), false, `device ${d} has nothing left to push${trace()}`);
    }
    ledger.check(remote, trace());
  } finally {
    await Promise.all(stores.flat().map((store) => store.close()));
  }
}

async function convergenceUnderFaults(target: Target, seeded: boolean, numRuns = Number(process.env.FC_RUNS ?? 50)) {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 2, max: 3 }), fc.array(action, { maxLength: Number(process.env.FC_ACTIONS ?? 24) }), fc.nat(), fc.nat(), (deviceCount, actions, policySeed, faultSeed) =>
      scenario({ target, seeded, deviceCount, actions, policySeed, faultSeed }),
    ),
    { seed: Number(process.env.FC_SEED ?? 20261207), numRuns, endOnFailure: true, includeErrorInReport: true },
  );
}

describe('one server on SQLite', () => {
  let server: ServerProcess;
  let target: Target;
  before(async () => {
    server = await startServer({ env: unthrottled });
    target = { server, poolId: await createPool(server) };
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  test('under lost requests and lost answers, 2–3 devices converge and lose no write a hook did not drop', () => convergenceUnderFaults(target, false));

  test('the same with every key synced to every device first (pushes first, with lost answers)', () => convergenceUnderFaults(target, true));
});

/**
 * A load balancer: each request goes to one of `backends` at random, Host header and all (SigV4 signs it, so the
 * servers see the host the device signed for).
 */
async function spreadingProxy(backends: readonly Endpoint[]): Promise<{ endpoint: string; served: number[]; close(): Promise<void> }> {
  const agent = new Agent({ keepAlive: true });
  const ports = backends.map((backend) => Number(new URL(backend.endpoint).port));
  const served = ports.map(() => 0);
  const proxy: Server = createServer((req, res) => {
    const chosen = Math.floor(Math.random() * ports.length);
    served[chosen]!++;
    const port = ports[chosen]!;
    const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    served,
    async close() {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      agent.destroy();
    },
  };
}

describe('two server processes on one PostgreSQL database, requests spread over both', { skip: (await postgresAvailable()) ? false : 'PostgreSQL is not reachable' }, () => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];
  let proxy: Awaited<ReturnType<typeof spreadingProxy>>;
  let target: Target;
  before(async () => {
    database = await createTestDatabase('cognisync_faults');
    // Every process on one database must derive the same credential secrets.
    const env = { ...unthrottled, COGNISYNC_MASTER_KEY: 'fault-property-master-key' };
    servers = [await startServer({ databaseUrl: database.url, env })];
    servers.push(await startServer({ databaseUrl: database.url, env }));
    proxy = await spreadingProxy(servers);
    const server = { endpoint: proxy.endpoint };
    target = { server, poolId: await createPool(server) };
  });
  let ran = false;
  after(async () => {
    await proxy?.close();
    const stopped = await Promise.all(servers.map((server) => server.stop()));
    await database?.drop();
    assert.deepEqual(stopped, servers.map(() => 0));
    if (ran) assert.ok(proxy.served.every((n) => n > 100), `each process served its share of the requests: ${proxy.served}`);
  });

  const runs = Number(process.env.FC_RUNS ?? 25);
  test('2–3 devices converge and lose no write a hook did not drop', () => ((ran = true), convergenceUnderFaults(target, false, runs)));

  test('the same with every key synced to every device first', () => ((ran = true), convergenceUnderFaults(target, true, runs)));
});
