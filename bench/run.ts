// `npm run bench [-- --quick] [-- --synchronous FULL]`: starts the ceiling, the floor and cognisync (SQLite, and
// PostgreSQL when one answers) on 127.0.0.1, drives bounded loads at them from a separate, pinned load-generator
// process, and writes bench/results.json plus bench/results.md (also printed). Every ratio is taken between
// figures measured in this run, one right after the other. See bench/README.md.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { measureClientSync, type ClientSyncResult } from './lib/client-sync.ts';
import { LoadGenerator, type Measurement } from './lib/load.ts';
import { LOAD_CPU, pinSelf, pinningAvailable } from './lib/processes.ts';
import { aggregate, answerProblem, evaluateTargets, renderReport } from './lib/report.ts';
import { destroyAgent, mapLimit } from './lib/requests.ts';
import { identityIdFor, seedDatasets, seedIdentities } from './lib/seed-sql.ts';
import { createTestDatabase } from '../packages/server/test/support/postgres.ts';
import { buildServer, keepServerLogsIn, postgresServer, startCeiling, startCognisync, startFloor, type Target } from './lib/targets.ts';
import type { WireRequest } from './lib/types.ts';
import { buildWrites, Fixture, recordKey, value, WriteSlots, type BenchIdentity, type Patch } from './lib/workload.ts';

/** The command line: each option with the line `--help` prints for it. */
const OPTIONS = {
  quick: { type: 'boolean', default: false, help: 'every section, shorter and smaller (under a minute); what CI runs' },
  synchronous: { type: 'string', default: 'NORMAL', help: 'SQLite synchronous mode of the floor and cognisync: NORMAL or FULL' },
  only: { type: 'string', help: 'sections to run, comma-separated: main, scaling, identities, client (default: all)' },
  'no-postgres': { type: 'boolean', default: false, help: 'skip PostgreSQL even when one answers' },
  'cpu-prof-dir': { type: 'string', help: 'DIR: cognisync runs with --cpu-prof and writes its profile there when it stops' },
  /** e.g. '--max-semi-space-size=16' for an A/B. */
  'server-node-args': { type: 'string', help: 'extra node flags for the cognisync processes, space-separated' },
  scenarios: { type: 'string', help: 'REGEX: only the main scenarios whose name matches (to profile one of them)' },
  duration: { type: 'string', help: "SECONDS per measured run (overrides the mode's default)" },
  repetitions: { type: 'string', help: "rounds of the main scenarios (overrides the mode's default)" },
  /**
   * A/B: another build's bin (e.g. a worktree of the previous commit) runs as server "compare" (on SQLite unless
   * --compare-store postgres), in every round of the main scenarios next to the server of its store (after it in
   * even rounds, before it in odd ones); the table gives the median of compare ÷ that server per round.
   */
  'compare-bin': { type: 'string', help: 'BIN: A/B, another build\'s packages/server/bin/cognisync.js runs as "compare" next to the server of its store' },
  'compare-store': { type: 'string', default: 'sqlite', help: 'the store of the "compare" build: sqlite, or postgres (its own throw-away database)' },
  /**
   * The fixed load of the paced runs in req/s, instead of ½ of the capacity just measured: to compare the latency of
   * two builds (or two runs) at the same load. The report then says "at N req/s (fixed)", and the target row still reads it.
   */
  'paced-rate': { type: 'string', help: 'REQ/S: the paced runs at this fixed load instead of ½ of the capacity just measured' },
  'keep-server-logs': { type: 'string', help: "DIR: copy every server's stderr (cognisync's request log) to DIR/<server>.log at the end" },
  help: { type: 'boolean', short: 'h', default: false, help: 'print this and exit' },
} as const;

function usage(): string {
  const lines = Object.entries(OPTIONS).map(([name, option]) => `  --${name}${option.type === 'string' ? ' …' : ''}`.padEnd(26) + option.help);
  return `npm run bench [-- OPTIONS]: cognisync against the ceiling and floor baselines, as ratios (see bench/README.md)\n${lines.join('\n')}\n`;
}

/** A mistake on the command line: one line and the usage on stderr, exit status 2 (no stack trace). */
function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n${usage()}`);
  process.exit(2);
}

let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>;
try {
  parsed = parseArgs({ options: OPTIONS });
} catch (error) {
  usageError((error as Error).message);
}
const { values: args } = parsed;
if (args.help) {
  process.stdout.write(usage());
  process.exit(0);
}
const quick = args.quick!;
const synchronous = args.synchronous!.toUpperCase() as 'NORMAL' | 'FULL';
if (synchronous !== 'NORMAL' && synchronous !== 'FULL') usageError('--synchronous must be NORMAL or FULL');
const compareStore = args['compare-store']!;
if (compareStore !== 'sqlite' && compareStore !== 'postgres') usageError('--compare-store must be sqlite or postgres');
/** `--cpu-prof-dir DIR`: cognisync runs with --cpu-prof and writes its profile there when it stops. */
const profileArgs = [
  ...(args['cpu-prof-dir'] ? ['--cpu-prof', '--cpu-prof-dir', resolve(args['cpu-prof-dir'])] : []),
  ...(args['server-node-args']?.split(' ').filter(Boolean) ?? []),
];
if (args['keep-server-logs']) keepServerLogsIn(resolve(args['keep-server-logs']));
const SECTIONS = ['main', 'scaling', 'identities', 'client'];
const sections = new Set((args.only ?? SECTIONS.join(',')).split(','));
for (const section of sections) if (!SECTIONS.includes(section)) usageError(`--only: no section '${section}' (sections: ${SECTIONS.join(', ')})`);

/** Run lengths and sizes; --quick keeps every scenario but shortens each and shrinks the largest seedings. */
const plan = quick
  ? {
      jitWarmupSeconds: 0.5, warmupSeconds: 0.25, durationSeconds: 0.6, repetitions: 1, postgresScenarios: /^UpdateRecords\(1\)$/, latencyOnPostgres: false, pacedDurationSeconds: 1, pacedRepetitions: 1,
      scalingDurationSeconds: 0.6, scalingRepetitions: 1, datasetSizes: [10, 1024], scalingOnPostgres: false, identityCounts: [1_000, 10_000], identitiesOnPostgres: false, clientRepetitions: 3, clientOnPostgres: false,
    }
  : {
      // Paced runs are longer, and repeated: their p99 is the 1-in-100 worst, and a single stall of the VM decides it.
      jitWarmupSeconds: 3, warmupSeconds: 0.8, durationSeconds: 1.2, repetitions: 5, postgresScenarios: /./, latencyOnPostgres: true, pacedDurationSeconds: 3, pacedRepetitions: 3,
      scalingDurationSeconds: 1.2, scalingRepetitions: 3, datasetSizes: [10, 100, 1024], scalingOnPostgres: true, identityCounts: [1_000, 100_000], identitiesOnPostgres: true, clientRepetitions: 30, clientOnPostgres: true,
    };
if (args.repetitions) {
  plan.repetitions = Number(args.repetitions);
  if (!Number.isInteger(plan.repetitions) || plan.repetitions < 1) usageError('--repetitions must be a whole number of rounds, at least 1');
}
if (args.duration) {
  const seconds = Number(args.duration);
  if (!(seconds > 0)) usageError('--duration must be a positive number of seconds');
  plan.durationSeconds = plan.scalingDurationSeconds = plan.pacedDurationSeconds = seconds;
}
let scenarioFilter: RegExp;
try {
  scenarioFilter = new RegExp(args.scenarios ?? '.');
} catch (error) {
  usageError(`--scenarios: ${(error as Error).message}`);
}
const pacedRate = args['paced-rate'] === undefined ? undefined : Number(args['paced-rate']);
if (pacedRate !== undefined && !(pacedRate > 0)) usageError('--paced-rate must be a positive number of requests per second');
const CONNECTIONS = 64;
const MAIN_IDENTITIES = 64;
/**
 * Datasets of their own that each allocator of new-key writes may give a main identity: UpdateRecords(1), (10) and
 * each of the 3 paced runs, 4 + 8 + 3 × 2 = 18, with list100 19 of AWS's 20. Runs that need more get new identities.
 */
const WRITE_DATASETS = { 1: 4, 10: 8, paced: 2 } as const;
/** The hot-record race writes 1,000 records per dataset, 20 datasets per identity: 4 identities hold 80k records. */
const HOT_IDENTITIES = 4;
const SMALL_VALUE = 64;
const LARGE_VALUE = 1000;
/** Where seed-sql.ts leaves each scaling dataset: at SyncCount 2, with r0000 at 2 and every other record at 1. */
const SEEDED_SYNC_COUNT = 2;
const IDENTITY_SAMPLE = 256;

const started = Date.now();
const log = (message: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);

pinSelf(LOAD_CPU);
const load = await LoadGenerator.start();
const postgres = args['no-postgres'] ? undefined : await postgresServer();
const measurements: Measurement[] = [];
const client: ClientSyncResult[] = [];
const cleanups: Array<() => Promise<void>> = [];

/** Runs whose answers were wrong (answerProblem): listed at the end, and the run exits with status 1. */
const problems: string[] = [];

function record(m: Measurement): Measurement {
  measurements.push(m);
  const problem = answerProblem(m, CONNECTIONS);
  if (problem) problems.push(`${m.scenario} on ${m.target}: ${problem}`);
  const codes = Object.entries(m.statusCounts).map(([code, n]) => `${code}:${n}`).join(' ');
  log(`${m.scenario.padEnd(34)} ${m.target.padEnd(8)} ${m.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${m.latencyMs.p50.toFixed(2)} p99 ${m.latencyMs.p99.toFixed(2)} ms  cpu ${m.serverCpuMicrosPerRequest.toFixed(0)} µs/req  rss ${(m.serverRssPeakBytes / 2 ** 20).toFixed(0)} MB  [${codes}]${m.errors ? ` errors ${m.errors}` : ''}${m.errorSamples.length ? `  e.g. ${m.errorSamples[0]}` : ''}`);
  return m;
}

interface RunOptions {
  durationSeconds?: number;
  warmupSeconds?: number;
  repetition?: number;
  captureErrors?: boolean;
}

/** A read scenario: a fixed list of requests replayed for the whole run. */
async function measureReads(scenario: string, target: Target, requests: WireRequest[], options: RunOptions = {}) {
  const pool = await load.load(requests);
  const m = await load.measure({ scenario, target, pool, connections: CONNECTIONS, warmupSeconds: options.warmupSeconds ?? plan.warmupSeconds, durationSeconds: options.durationSeconds ?? plan.durationSeconds, cycle: true, captureErrors: options.captureErrors ?? true });
  load.drop(pool);
  return record({ ...m, repetition: options.repetition ?? 0 });
}

/**
 * A write scenario whose requests may each be sent once: the warm-up gets `guessRate` × its length, the
 * measured run 1.5 × the warm-up's rate × its length (ending early, bounded by count, if that runs out).
 */
async function measureWrites(scenario: string, target: Target, guessRate: number, build: (count: number) => Promise<WireRequest[]>, options: RunOptions = {}) {
  const reserve = CONNECTIONS * 2 + 16;
  const durationSeconds = options.durationSeconds ?? plan.durationSeconds;
  const warmupSeconds = options.warmupSeconds ?? plan.warmupSeconds;
  const m = await load.measure({
    scenario,
    target,
    connections: CONNECTIONS,
    warmupSeconds,
    durationSeconds,
    cycle: false,
    ...(warmupSeconds > 0 ? { warmupPool: await load.load(await build(Math.ceil(guessRate * warmupSeconds) + reserve)) } : {}),
    // Sized from the warm-up's rate, or (without one) from the caller's estimate.
    buildPool: async (rate) => load.load(await build(Math.ceil(Math.max(warmupSeconds > 0 ? rate : guessRate, 200) * 1.5 * durationSeconds) + reserve)),
  });
  return record({ ...m, repetition: options.repetition ?? 0 });
}

/**
 * Lane writes: one request sequence per connection (see load-generator.ts), each lane writing its own dataset.
 * No warm-up run: a warm-up that stopped mid-request would leave its lane's SyncCounts unknown, and the server is
 * warm from the reads of the same datasets just before.
 */
async function measureLaneWrites(scenario: string, target: Target, estimate: number, build: (lane: number, perLane: number) => Promise<WireRequest[]>, durationSeconds: number, repetition: number) {
  const perLane = Math.max(20, Math.ceil((estimate * 1.5 * durationSeconds) / CONNECTIONS) + 4);
  const pool = await load.loadLanes(await Promise.all(Array.from({ length: CONNECTIONS }, (_, lane) => build(lane, perLane))));
  return record({ ...(await load.measure({ scenario, target, pool, connections: CONNECTIONS, warmupSeconds: 0, durationSeconds, cycle: false })), repetition });
}

const reads: Array<[string, (fixture: Fixture, identity: BenchIdentity) => Promise<WireRequest>]> = [
  ['ListRecords(100 records)', (f, i) => f.listRecords(i, 'list100')],
  ['ListRecords(lastSyncCount, 1 change)', (f, i) => f.listRecords(i, 'list100', { lastSyncCount: '1' })],
  ['DescribeDataset', (f, i) => f.describeDataset(i, 'list100')],
  ['GetCredentialsForIdentity', (f, i) => f.getCredentialsForIdentity(i)],
];

/** UpdateRecords of `patches` new keys each, `count` of them, spread round-robin over the identities. */
function newKeyWrites(fixture: Fixture, slots: WriteSlots, patches: number) {
  return async (count: number) => {
    await slots.reserve(count, patches);
    return buildWrites(fixture, count, () => {
      const slot = slots.take(patches);
      return { identity: slot.identity, datasetName: slot.datasetName, patches: slot.keys.map((key): Patch => ({ Op: 'replace', Key: key, Value: value(SMALL_VALUE, key), SyncCount: 0 })) };
    });
  };
}

/** Median req/s of a scenario's repetitions on a target (undefined before it ran). */
const rateOf = (scenario: string, target: string) => {
  const rates = measurements.filter((m) => m.scenario === scenario && m.target === target).map((m) => m.requestsPerSecond).sort((a, b) => a - b);
  return rates.length ? rates[Math.floor(rates.length / 2)] : undefined;
};

try {
  log(`${quick ? 'quick' : 'full'} run; SQLite synchronous=${synchronous}; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); pinning ${pinningAvailable() ? 'on (servers CPU 1, load CPU 0)' : 'off'}; PostgreSQL ${postgres ? postgres.version : args['no-postgres'] ? 'skipped (--no-postgres)' : 'not reachable (skipped)'}`);
  log(buildServer() ? 'server bundle rebuilt (cognisync runs from dist/cli.mjs, as after npm ci)' : 'the server under test has no build script: it runs as its bin runs it');
  if (args['compare-bin']) buildServer(args['compare-bin']);
  const ceiling = await startCeiling();
  cleanups.push(() => ceiling.stop());
  const floor = await startFloor(synchronous);
  cleanups.push(() => floor.stop());
  const sqlite = await startCognisync({ name: 'sqlite', synchronous, extraArgs: profileArgs });
  cleanups.push(() => sqlite.stop());
  let pgTarget: Target | undefined;
  if (postgres) {
    const database = await createTestDatabase('cognisync_bench', postgres.adminUrl);
    cleanups.push(() => database.drop());
    pgTarget = await startCognisync({ name: 'postgres', synchronous, databaseUrl: database.url, extraArgs: profileArgs });
    cleanups.push(() => pgTarget!.stop());
  }
  const cognisyncTargets = [sqlite, ...(pgTarget ? [pgTarget] : [])];
  let compare: Target | undefined;
  if (args['compare-bin']) {
    let databaseUrl: string | undefined;
    if (compareStore === 'postgres') {
      if (!postgres) throw new Error('--compare-store postgres needs a reachable PostgreSQL');
      const database = await createTestDatabase('cognisync_bench_compare', postgres.adminUrl);
      cleanups.push(() => database.drop());
      databaseUrl = database.url;
    }
    compare = await startCognisync({ name: 'compare', synchronous, extraArgs: profileArgs, bin: args['compare-bin'], ...(databaseUrl ? { databaseUrl } : {}) });
    cleanups.push(() => compare!.stop());
  }
  // "compare" runs next to the server of its own store in every round: after it in even rounds, before it in odd
  // ones. An A/A run (the same build twice, always in the same order) favoured whichever ran second by up to 1.10 ×,
  // and alternating cancels that out of the median of the rounds' ratios.
  const compareBeside = (store: 'sqlite' | 'postgres') => (compare && compareStore === store ? [compare] : []);
  const mainTargets = [floor, sqlite, ...compareBeside('sqlite'), ...(pgTarget ? [pgTarget] : []), ...compareBeside('postgres')];
  const inRoundOrder = (targets: Target[], repetition: number): Target[] => {
    const at = compare ? targets.indexOf(compare) : -1;
    if (repetition % 2 === 0 || at < 1) return targets;
    const swapped = [...targets];
    [swapped[at - 1], swapped[at]] = [swapped[at]!, swapped[at - 1]!];
    return swapped;
  };
  /** The servers a main scenario runs on (--quick runs PostgreSQL for UpdateRecords(1) only). */
  const targetsFor = (scenario: string) => mainTargets.filter((target) => target.store !== 'postgres' || plan.postgresScenarios.test(scenario));

  // Fixtures: one pool per target, identities with temporary credentials, a 100-record dataset each.
  const fixtures = new Map<string, { fixture: Fixture; identities: BenchIdentity[]; hot: BenchIdentity[] }>();
  for (const target of mainTargets) {
    const fixture = new Fixture(target);
    await fixture.createPool('bench');
    const all = await fixture.createIdentities(MAIN_IDENTITIES + HOT_IDENTITIES);
    const identities = all.slice(0, MAIN_IDENTITIES);
    await mapLimit(identities, 8, (identity) => fixture.seedDataset(identity, 'list100', 100, SMALL_VALUE));
    fixtures.set(target.name, { fixture, identities, hot: all.slice(MAIN_IDENTITIES) });
  }
  log(`fixtures ready: ${MAIN_IDENTITIES} identities × 100 records on ${mainTargets.map((t) => t.name).join(', ')}`);

  if (sections.has('main')) {
    const ceilingGet: WireRequest[] = [{ method: 'GET', path: '/', headers: { host: ceiling.host } }];
    await measureReads('ceiling GET (fixed JSON)', ceiling, ceilingGet);

    // Untimed, before the first measured round: every server replays ListRecords(1 change) for a few seconds. A
    // fresh process runs partly unoptimized code until V8 has compiled its hot functions, which takes seconds of
    // load, and cognisync has far more of them than the floor: in run Q (README) it took 392, 346 and 342 µs of CPU
    // per UpdateRecords(1) in the first three rounds and 247 and 236 µs in the last two (the floor: 290, then
    // 117–140). The ratios are meant for servers that have been running, as servers do.
    for (const target of mainTargets) {
      const { fixture, identities } = fixtures.get(target.name)!;
      const pool = await load.load(await Promise.all(identities.map((identity) => fixture.listRecords(identity, 'list100', { lastSyncCount: '1' }))));
      await load.run({ url: target.url, pool, connections: CONNECTIONS, durationSeconds: plan.jitWarmupSeconds, cycle: true, captureErrors: false });
      load.drop(pool);
    }

    // Each scenario runs floor, SQLite, PostgreSQL back to back, `repetitions` times; tables show medians and
    // every ratio is the median of ratios between runs of the same round.
    const warmupFor = (repetition: number) => (repetition === 0 ? plan.warmupSeconds : 0);
    for (const [scenario, patches] of [['UpdateRecords(1)', 1], ['UpdateRecords(10)', 10]] as const) {
      if (!scenarioFilter.test(scenario)) continue;
      const slots = new Map(mainTargets.map((target) => {
        const { fixture, identities } = fixtures.get(target.name)!;
        return [target.name, new WriteSlots(identities, `w${patches}-`, WRITE_DATASETS[patches], (count) => fixture.createIdentities(count))];
      }));
      for (let repetition = 0; repetition < plan.repetitions; repetition++) {
        for (const target of inRoundOrder(targetsFor(scenario), repetition)) {
          const { fixture } = fixtures.get(target.name)!;
          const guess = rateOf(scenario, target.name) ?? (target.kind === 'floor' ? 30_000 : Math.min(rateOf(scenario, 'floor') ?? 10_000, 15_000));
          await measureWrites(scenario, target, guess, newKeyWrites(fixture, slots.get(target.name)!, patches), { warmupSeconds: warmupFor(repetition), repetition });
        }
      }
    }
    for (const [scenario, build] of reads) {
      if (!scenarioFilter.test(scenario)) continue;
      for (let repetition = 0; repetition < plan.repetitions; repetition++) {
        for (const target of inRoundOrder(targetsFor(scenario), repetition)) {
          const { fixture, identities } = fixtures.get(target.name)!;
          await measureReads(scenario, target, await Promise.all(identities.map((identity) => build(fixture, identity))), { warmupSeconds: warmupFor(repetition), repetition });
        }
      }
    }
    // Hot record: four devices race to create each record (SyncCount 0); exactly one of every four can win.
    const hotOffsets = new Map<string, number>();
    for (const target of scenarioFilter.test('Hot record') ? targetsFor('Hot record') : []) {
      const { fixture, hot } = fixtures.get(target.name)!;
      const guess = target.kind === 'floor' ? 30_000 : Math.min(rateOf('UpdateRecords(1)', target.name) ?? 10_000, 15_000) * 2;
      await measureWrites('Hot record: 4 writers race per record', target, guess, async (count) => {
        let offset = hotOffsets.get(target.name) ?? 0;
        const first = offset;
        offset += Math.ceil(count / 4) + 1;
        hotOffsets.set(target.name, offset);
        return buildWrites(fixture, count, (index) => {
          const record = first + Math.floor(index / 4);
          const dataset = Math.floor(record / 1000);
          return { identity: hot[dataset % HOT_IDENTITIES]!, datasetName: `hot${Math.floor(dataset / HOT_IDENTITIES)}`, patches: [{ Op: 'replace', Key: `h${record}`, Value: value(SMALL_VALUE, record), SyncCount: 0 }] };
        });
      });
    }
    // Latency at a fixed load: open loop at half the capacity just measured, still over 64 connections. (Run
    // closed loop, 64 connections always wait: p99 is then queueing, 64 ÷ throughput, not service time.)
    // The floor runs at the SQLite server's rate right after it: the tail the machine itself adds at that load.
    for (const target of plan.latencyOnPostgres ? cognisyncTargets : [sqlite]) {
      for (const scenario of ['UpdateRecords(1)', 'ListRecords(100 records)', 'ListRecords(lastSyncCount, 1 change)', 'DescribeDataset']) {
        const capacity = rateOf(scenario, target.name);
        if (!capacity || !scenarioFilter.test(scenario)) continue;
        const rate = pacedRate ?? Math.max(50, Math.round(capacity / 2 / 50) * 50);
        const write = scenario === 'UpdateRecords(1)';
        // Several shorter runs, alternating with the floor, and the median p99: one stall of the VM decides a
        // single run's p99.
        for (let repetition = 0; repetition < plan.pacedRepetitions; repetition++) {
          for (const paced of target === sqlite ? [sqlite, floor] : [target]) {
            const { fixture, identities } = fixtures.get(paced.name)!;
            const requests = write
              ? await newKeyWrites(fixture, new WriteSlots(identities, `lat${repetition}-`, WRITE_DATASETS.paced, (count) => fixture.createIdentities(count)), 1)(Math.ceil(rate * plan.pacedDurationSeconds * 1.05) + 100)
              : await Promise.all(identities.map((identity) => reads.find(([name]) => name === scenario)![1](fixture, identity)));
            const pool = await load.load(requests);
            const m = await load.measure({ scenario: `${scenario} at ${rate} req/s (${pacedRate ? 'fixed' : '½ capacity'})`, target: paced, pool, connections: CONNECTIONS, warmupSeconds: 0, durationSeconds: plan.pacedDurationSeconds, cycle: !write, pacedRate: rate });
            record({ ...m, repetition });
            load.drop(pool);
          }
        }
      }
    }
    await measureReads('ceiling GET (fixed JSON), again', ceiling, ceilingGet);
  }

  if (sections.has('scaling')) {
    // Dataset size: records of ~1 KB (1,024 of them are the 1 MB cap), one dataset per connection ("lane"),
    // written straight into the store (see seed-sql.ts) and read and written through the API.
    for (const target of plan.scalingOnPostgres ? cognisyncTargets : [sqlite]) {
      const fixture = new Fixture(target);
      await fixture.createPool('scaling');
      const owners = await fixture.createIdentities(Math.ceil((CONNECTIONS * plan.datasetSizes.length) / 19));
      const datasets = plan.datasetSizes.flatMap((size) => Array.from({ length: CONNECTIONS }, (_, lane) => ({ size, lane, name: `size${size}-${lane}` })));
      const owned = datasets.map((dataset, i) => ({ ...dataset, identity: owners[Math.floor(i / 19)]! }));
      await seedDatasets(target, fixture.identityPoolId, owned.map((d) => ({ identityId: d.identity.identityId, datasetName: d.name, records: d.size, valueBytes: LARGE_VALUE })));
      await fixture.tokens_(owned.map((d) => [d.identity, d.name] as const));
      log(`scaling datasets seeded on ${target.name}`);
      // The reads run in rounds over the sizes (10 → 100 → 1,024, again and again), so that a slow spell of the VM
      // lands on one round, not on one size; "× 10 records" is the median of the ratios within each round.
      for (const [kind, query] of [['ListRecords full', {}], ['ListRecords(1 change)', { lastSyncCount: '1' }]] as const) {
        for (let repetition = 0; repetition < plan.scalingRepetitions; repetition++) {
          for (const size of plan.datasetSizes) {
            const mine = owned.filter((d) => d.size === size);
            const requests = await Promise.all(mine.map((d) => fixture.listRecords(d.identity, d.name, query)));
            await measureReads(`${kind}, ${size} records`, target, requests, {
              durationSeconds: plan.scalingDurationSeconds,
              warmupSeconds: repetition === 0 ? plan.warmupSeconds : plan.warmupSeconds / 2,
              repetition,
              captureErrors: kind !== 'ListRecords full',
            });
          }
        }
      }
      // The writes run in rounds over the sizes too. Each lane is its dataset's only writer, so its SyncCounts can be
      // computed in advance; between rounds they are read back (the records changed since seeding), since a run
      // that ends by time leaves unsent the rest of what was built for it.
      const state = new Map(owned.map((d) => [d.name, { last: new Map<string, number>(), syncCount: SEEDED_SYNC_COUNT, writes: 0 }]));
      const seededCount = (key: string) => (key === recordKey(0) ? SEEDED_SYNC_COUNT : 1);
      for (let repetition = 0; repetition < plan.scalingRepetitions; repetition++) {
        for (const size of plan.datasetSizes) {
          const byLane = owned.filter((d) => d.size === size);
          const guess = Math.min(rateOf('UpdateRecords(1)', target.name) ?? 5_000, 15_000);
          await measureLaneWrites(
            `UpdateRecords(1 replace), ${size} records`,
            target,
            guess,
            async (lane, perLane) => {
              const d = byLane[lane]!;
              const laneState = state.get(d.name)!;
              if (repetition > 0) {
                const changed = await fixture.changesSince(d.identity, d.name, SEEDED_SYNC_COUNT);
                laneState.last = changed.records;
                laneState.syncCount = changed.datasetSyncCount;
              }
              const requests: WireRequest[] = [];
              for (let k = 0; k < perLane; k++) {
                const key = recordKey((laneState.writes + k + 1) % size);
                requests.push(await fixture.updateRecords(d.identity, d.name, [{ Op: 'replace', Key: key, Value: value(LARGE_VALUE, `${key}/${repetition}/${k}`), SyncCount: laneState.last.get(key) ?? seededCount(key) }]));
                laneState.last.set(key, ++laneState.syncCount);
              }
              laneState.writes += perLane;
              return requests;
            },
            plan.scalingDurationSeconds,
            repetition,
          );
        }
      }
    }
  }

  if (sections.has('identities')) {
    // Number of identities in the store: rows written straight into the database, then a sample of 256 of them
    // gets credentials and is read and written through the API.
    for (const target of plan.identitiesOnPostgres ? cognisyncTargets : [sqlite]) {
      const { fixture } = fixtures.get(target.name)!;
      let seeded = 0;
      const used = new Set<number>();
      for (const total of plan.identityCounts) {
        const seedStarted = Date.now();
        await seedIdentities(target, fixture.identityPoolId, seeded, total, SMALL_VALUE);
        log(`seeded identities ${seeded}..${total} on ${target.name} in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);
        seeded = total;
        const sample: number[] = [];
        while (sample.length < IDENTITY_SAMPLE) {
          const index = Math.floor(Math.random() * total);
          if (!used.has(index)) {
            used.add(index);
            sample.push(index);
          }
        }
        const identities = await mapLimit(sample, 16, (index) => fixture.credentialsFor(identityIdFor(index)));
        const label = total >= 1000 ? `${total / 1000}k` : String(total);
        const listRequests = await Promise.all(identities.map((identity) => fixture.listRecords(identity, 'p0', { lastSyncCount: '1' })));
        const guess = Math.min(rateOf('UpdateRecords(1)', target.name) ?? 5_000, 15_000);
        // The writes go to a dataset of their own ('q0'): written into 'p0', they would give the next run's
        // ListRecords(lastSyncCount 1) every record written since instead of 1 change (as they did in the fifteenth round).
        const slots = new WriteSlots(identities, 'q', 1);
        // Each size is measured at one time, so its runs cannot pair with the other size's the way rounds do: the
        // table shows the medians of `scalingRepetitions` runs (a single run of each was 0.64–1.32 × apart).
        for (let repetition = 0; repetition < plan.scalingRepetitions; repetition++) {
          await measureReads(`ListRecords(1 change), ${label} identities`, target, listRequests, { repetition });
          await measureWrites(`UpdateRecords(1), ${label} identities`, target, guess, newKeyWrites(fixture, slots, 1), { repetition });
        }
      }
    }
  }

  if (sections.has('client')) {
    for (const target of plan.clientOnPostgres ? cognisyncTargets : [sqlite]) {
      for (const implementation of ['library', 'sdk'] as const) {
        const result = await measureClientSync(target, plan.clientRepetitions, LARGE_VALUE, implementation);
        client.push(result);
        log(`client sync on ${target.name} (${result.client}): first ${result.firstSyncMs.median.toFixed(1)} ms, push ${result.incrementalPushMs.median.toFixed(2)} ms, pull ${result.incrementalPullMs.median.toFixed(2)} ms`);
      }
    }
  }

  const meta = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    pinning: pinningAvailable() ? 'servers on CPU 1, load generator and orchestrator on CPU 0 (taskset)' : 'none',
    sqliteSynchronous: synchronous,
    postgres: postgres ? postgres.version : args['no-postgres'] ? 'skipped (--no-postgres)' : 'not reachable',
    connections: CONNECTIONS,
    jitWarmupSeconds: plan.jitWarmupSeconds,
    warmupSeconds: plan.warmupSeconds,
    durationSeconds: plan.durationSeconds,
    repetitions: plan.repetitions,
    scalingDurationSeconds: plan.scalingDurationSeconds,
    pacedDurationSeconds: plan.pacedDurationSeconds,
    pacedRepetitions: plan.pacedRepetitions,
    rateLimits: 'raised out of reach (COGNISYNC_RATE_LIMIT_*=1000000): the defaults cap a pool at 10,000 and an identity at 50 req/s',
    signing: 'pre-signed with @smithy/signature-v4 before each run (identity temporary credentials; GetCredentialsForIdentity is unsigned)',
    wallSeconds: 0,
  };
  meta.wallSeconds = Math.round((Date.now() - started) / 100) / 10;
  const targets = evaluateTargets(measurements, client);
  // `summary`: one row per scenario and server (medians over repetitions); `measurements`: every run.
  const results = { meta, targets, summary: aggregate(measurements), client, measurements };
  writeFileSync(resolve(import.meta.dirname, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const report = renderReport(results);
  writeFileSync(join(import.meta.dirname, 'results.md'), report);
  process.stdout.write(`${report}\n`);
  if (problems.length > 0) {
    log(`${problems.length} runs had wrong answers, so their figures do not measure the operation:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    process.exitCode = 1;
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  await load.stop();
  destroyAgent();
}
