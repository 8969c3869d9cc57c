// Turns one run's measurements into the target verdicts and the Markdown report (bench/results.md).
import type { ClientSyncResult } from './client-sync.ts';
import type { Measurement } from './load.ts';

export interface TargetVerdict {
  target: string;
  figure: string;
  met: boolean | undefined;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : 0;
};

/**
 * What is wrong with a run's answers, if anything: a figure measured on failed requests measures the error path.
 * Every scenario must be answered 2xx without transport errors, except the hot-record race, whose answers must be
 * 200 or ResourceConflictException (409) and about one success per four requests (each race of four that the run
 * ended in the middle of may have had its winner without all its losers: up to one per connection).
 */
export function answerProblem(m: Measurement, connections: number): string | undefined {
  const transport = m.errors + m.timeouts;
  if (transport > 0) return `${transport} transport errors or timeouts${m.errorSamples.length ? ` (e.g. ${m.errorSamples[0]})` : ''}`;
  if (m.completed === 0) return 'no request completed';
  const counts = Object.entries(m.statusCounts).map(([code, n]) => `${code}: ${n}`).join(', ');
  if (!m.scenario.startsWith('Hot record')) return m.non2xx > 0 ? `${m.non2xx} answers were not 2xx (${counts})${m.errorSamples.length ? `, e.g. ${m.errorSamples[0]}` : ''}` : undefined;
  const won = m.statusCounts['200'] ?? 0;
  const lost = m.statusCounts['409'] ?? 0;
  if (won + lost !== m.completed) return `answers other than 200 and 409 (${counts})`;
  if (Math.abs(won - m.completed / 4) > connections) return `${won} of ${m.completed} races won, expected about one in four (${counts})`;
  return undefined;
}

/**
 * One row per scenario and server: medians over its repetitions (req/s, latencies, CPU), the highest RSS,
 * and every status and error summed.
 */
export function aggregate(ms: Measurement[]): Measurement[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of ms) {
    const key = `${m.scenario}\n${m.target}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  return [...groups.values()].map((runs) => {
    if (runs.length === 1) return { ...runs[0]!, runs: 1 };
    const statusCounts: Record<string, number> = {};
    for (const m of runs) for (const [code, n] of Object.entries(m.statusCounts)) statusCounts[code] = (statusCounts[code] ?? 0) + n;
    const pick = (f: (m: Measurement) => number) => median(runs.map(f));
    return {
      ...runs[0]!,
      completed: runs.reduce((sum, m) => sum + m.completed, 0),
      elapsedSeconds: runs.reduce((sum, m) => sum + m.elapsedSeconds, 0),
      requestsPerSecond: pick((m) => m.requestsPerSecond),
      latencyMs: { p50: pick((m) => m.latencyMs.p50), p90: pick((m) => m.latencyMs.p90), p99: pick((m) => m.latencyMs.p99), max: Math.max(...runs.map((m) => m.latencyMs.max)), mean: pick((m) => m.latencyMs.mean) },
      statusCounts,
      errors: runs.reduce((sum, m) => sum + m.errors, 0),
      timeouts: runs.reduce((sum, m) => sum + m.timeouts, 0),
      non2xx: runs.reduce((sum, m) => sum + m.non2xx, 0),
      poolExhausted: runs.some((m) => m.poolExhausted),
      errorSamples: runs.flatMap((m) => m.errorSamples).slice(0, 3),
      serverCpuMicrosPerRequest: pick((m) => m.serverCpuMicrosPerRequest),
      serverRssPeakBytes: Math.max(...runs.map((m) => m.serverRssPeakBytes)),
      serverRssEndBytes: runs.at(-1)!.serverRssEndBytes,
      runs: runs.length,
    };
  });
}

/** req/s of `over` ÷ req/s of `under` for a scenario: the median of the ratios of runs in the same round. */
export function pairedRatio(ms: Measurement[], scenario: string, over: string, under: string, underScenario = scenario): number | undefined {
  const ratios: number[] = [];
  for (const a of ms.filter((m) => m.scenario === scenario && m.target === over)) {
    const b = ms.find((m) => m.scenario === underScenario && m.target === under && (m.repetition ?? 0) === (a.repetition ?? 0));
    if (b && b.requestsPerSecond > 0) ratios.push(a.requestsPerSecond / b.requestsPerSecond);
  }
  return ratios.length ? median(ratios) : undefined;
}

/** A paced (open-loop) run's scenario: "… at N req/s (½ capacity)", or "(fixed)" with --paced-rate. */
const isPaced = (scenario: string) => / req\/s \((?:½ capacity|fixed)\)$/.test(scenario);
const find = (ms: Measurement[], scenario: string, target: string) => ms.find((m) => m.scenario === scenario && m.target === target);
const fixed = (n: number, digits = 2) => n.toFixed(digits);
const syncLabel = (m: { synchronous?: string | undefined; store?: string | undefined }) => (m.synchronous ? m.synchronous : m.store === 'postgres' ? 'n/a (PostgreSQL)' : 'n/a');

export const MAIN_SCENARIOS = [
  'UpdateRecords(1)',
  'UpdateRecords(10)',
  'ListRecords(100 records)',
  'ListRecords(lastSyncCount, 1 change)',
  'DescribeDataset',
  'GetCredentialsForIdentity',
  'Hot record: 4 writers race per record',
];

export function evaluateTargets(raw: Measurement[], client: ClientSyncResult[]): TargetVerdict[] {
  const ms = aggregate(raw);
  const verdicts: TargetVerdict[] = [];
  const ratio = (scenario: string, over: string, under: string, min: number, label: string) => {
    const a = find(ms, scenario, over);
    const b = find(ms, scenario, under);
    const r = pairedRatio(raw, scenario, over, under);
    if (!a || !b || r === undefined) return verdicts.push({ target: label, figure: 'not measured', met: undefined });
    const cpu = b.serverCpuMicrosPerRequest / a.serverCpuMicrosPerRequest;
    verdicts.push({
      target: label,
      figure:
        `${fixed(r)} (median of ${a.runs} paired runs; ${a.requestsPerSecond.toFixed(0)} vs ${b.requestsPerSecond.toFixed(0)} req/s; ` +
        `by server CPU per request ${fixed(cpu)}: ${a.serverCpuMicrosPerRequest.toFixed(0)} vs ${b.serverCpuMicrosPerRequest.toFixed(0)} µs; SQLite synchronous=${a.synchronous ?? b.synchronous})`,
      met: r >= min && a.non2xx === 0,
    });
  };
  ratio('UpdateRecords(1)', 'sqlite', 'floor', 0.6, 'signed UpdateRecords(1) ≥ 0.6 × floor');
  ratio('ListRecords(100 records)', 'sqlite', 'floor', 0.7, 'signed ListRecords (100 records) ≥ 0.7 × floor');
  ratio('ListRecords(lastSyncCount, 1 change)', 'sqlite', 'floor', 0.7, 'signed ListRecords (1 change) ≥ 0.7 × floor');

  const paced = ms.filter((m) => m.target === 'sqlite' && isPaced(m.scenario));
  if (paced.length) {
    verdicts.push({
      target: `p99 ≤ 10 ms at 64 connections on SQLite (open loop at ${paced[0]!.scenario.endsWith('(fixed)') ? 'the fixed --paced-rate' : '½ of measured capacity'})`,
      figure:
        paced
          .map((m) => {
            const floor = ms.find((f) => f.target === 'floor' && f.scenario === m.scenario);
            return `${m.scenario}: ${fixed(m.latencyMs.p99)}${floor ? ` (floor at the same rate ${fixed(floor.latencyMs.p99)})` : ''}`;
          })
          .join('; ') + ` ms (synchronous=${paced[0]!.synchronous})`,
      met: paced.every((m) => m.latencyMs.p99 <= 10 && m.non2xx === 0),
    });
  }
  const saturated = ms.filter((m) => m.target === 'sqlite' && MAIN_SCENARIOS.includes(m.scenario));
  if (saturated.length) {
    verdicts.push({
      target: 'p99 ≤ 10 ms at 64 connections on SQLite (closed loop, saturated: p99 is queueing, ≥ 64 ÷ req/s)',
      figure: saturated.map((m) => `${m.scenario} ${fixed(m.latencyMs.p99)}`).join('; ') + ' ms',
      met: saturated.every((m) => m.latencyMs.p99 <= 10),
    });
  }
  const megabyte = (m: Measurement) => / 1024 records$/.test(m.scenario) || m.scenario.includes('identities');
  for (const store of ['sqlite', 'postgres']) {
    const runs = ms.filter((m) => m.target === store);
    if (!runs.length) continue;
    const peakOf = (list: Measurement[]) => list.reduce((worst, m) => (m.serverRssPeakBytes > worst.serverRssPeakBytes ? m : worst));
    const main = runs.filter((m) => !megabyte(m) && !/ records$/.test(m.scenario));
    if (main.length) {
      const worst = peakOf(main);
      verdicts.push({ target: `server RSS ≤ 200 MB under load (${store}, main scenarios)`, figure: `peak ${fixed(worst.serverRssPeakBytes / 2 ** 20, 0)} MB (during "${worst.scenario}")`, met: worst.serverRssPeakBytes <= 200 * 2 ** 20 });
    }
    const worst = peakOf(runs);
    verdicts.push({ target: `server RSS ≤ 200 MB under load (${store}, every run incl. 64 concurrent 1 MB ListRecords)`, figure: `peak ${fixed(worst.serverRssPeakBytes / 2 ** 20, 0)} MB (during "${worst.scenario}")`, met: worst.serverRssPeakBytes <= 200 * 2 ** 20 });
  }
  ratio('UpdateRecords(1)', 'postgres', 'sqlite', 0.5, 'PostgreSQL UpdateRecords(1) ≥ 0.5 × SQLite');

  for (const c of client.filter((c) => c.client.startsWith('@cognisync/client'))) {
    verdicts.push({ target: `first sync of a 1 MB dataset < 250 ms (${c.target})`, figure: `median ${fixed(c.firstSyncMs.median, 1)} ms (min ${fixed(c.firstSyncMs.min, 1)}, max ${fixed(c.firstSyncMs.max, 1)}; ${c.client})`, met: c.firstSyncMs.median < 250 });
    verdicts.push({
      target: `incremental sync of 1 record < 5 ms (${c.target})`,
      figure: `push 1 local change: median ${fixed(c.incrementalPushMs.median)} ms; pull 1 remote change: median ${fixed(c.incrementalPullMs.median)} ms`,
      met: c.incrementalPushMs.median < 5 && c.incrementalPullMs.median < 5,
    });
  }
  for (const store of ['sqlite', 'postgres']) {
    const small = find(ms, 'ListRecords(1 change), 10 records', store);
    const large = find(ms, 'ListRecords(1 change), 1024 records', store);
    const r = pairedRatio(raw, 'ListRecords(1 change), 1024 records', store, store, 'ListRecords(1 change), 10 records');
    if (!small || !large || r === undefined) continue;
    verdicts.push({
      target: `ListRecords(lastSyncCount) with 1 change independent of dataset size (${store}; 1,024 vs 10 records ≥ 0.8×)`,
      figure:
        `${fixed(r)} (${(large.runs ?? 1) > 1 ? `median of ${large.runs} rounds' ratios; medians` : 'one run each;'} ${large.requestsPerSecond.toFixed(0)} vs ${small.requestsPerSecond.toFixed(0)} req/s; ` +
        `server CPU ${fixed(large.serverCpuMicrosPerRequest, 0)} vs ${fixed(small.serverCpuMicrosPerRequest, 0)} µs/req)`,
      met: r >= 0.8,
    });
  }
  return verdicts;
}

function row(cells: Array<string | number>): string {
  return `| ${cells.join(' | ')} |`;
}

function measurementRows(ms: Measurement[], compare: (m: Measurement) => string[]): string[] {
  return ms.map((m) =>
    row([
      m.scenario,
      m.target,
      syncLabel(m),
      m.requestsPerSecond.toFixed(0),
      fixed(m.latencyMs.p50),
      fixed(m.latencyMs.p99),
      m.non2xx + m.errors + m.timeouts === 0 ? '0' : `${m.non2xx} non-2xx, ${m.errors} errors`,
      m.serverCpuMicrosPerRequest.toFixed(0),
      (m.serverRssPeakBytes / 2 ** 20).toFixed(0),
      ...compare(m),
    ]),
  );
}

const header = ['scenario', 'server', 'SQLite synchronous', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'server CPU µs/req', 'RSS peak MB'];

export function renderReport(results: { meta: Record<string, unknown>; measurements: Measurement[]; client: ClientSyncResult[]; targets: TargetVerdict[] }): string {
  const { meta, client, targets } = results;
  const raw = results.measurements;
  const ms = aggregate(raw);
  const out: string[] = [];
  out.push(`# cognisync benchmark — ${meta.mode} run, ${meta.date}`, '');
  out.push(
    `Node ${meta.node}; ${meta.cpus} × ${meta.cpu}; pinning: ${meta.pinning}; SQLite synchronous=${meta.sqliteSynchronous} (WAL); PostgreSQL ${meta.postgres}; ` +
      `${meta.connections} connections, pipelining 1; main scenarios ${meta.repetitions} × ${meta.durationSeconds} s per server after a ${meta.warmupSeconds} s warm-up (and, before the first, ${meta.jitWarmupSeconds ?? 0} s of untimed ListRecords on every server for the JIT), paced (fixed-load) runs ${meta.pacedRepetitions ?? 1} × ${meta.pacedDurationSeconds} s (median p99), scaling runs ${meta.scalingDurationSeconds} s; ${meta.signing}; rate limits ${meta.rateLimits}; wall time ${meta.wallSeconds} s.`,
    '',
  );

  out.push('## Targets', '', row(['target', 'figure (this run)', 'met']), row(['---', '---', '---']));
  for (const t of targets) out.push(row([t.target, t.figure, t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**']));
  out.push('');

  const ceilingRuns = ms.filter((m) => m.target === 'ceiling');
  const ceilingRate = ceilingRuns.length ? ceilingRuns.map((m) => m.requestsPerSecond).sort((a, b) => a - b)[Math.floor(ceilingRuns.length / 2)]! : undefined;
  out.push('## Main scenarios', '');
  out.push(
    'Medians over the runs; runs of one round go floor → SQLite → PostgreSQL back to back, and × floor / × SQLite are the medians of the ratios within each round (an A/B build, "compare", runs next to the server of its own store, after it in even rounds and before it in odd ones, and is set against it in the × SQLite column). × ceiling is over the median of the node:http ceiling runs. ' +
      'Hot record: 4 requests race to create each record with SyncCount 0, so exactly 1 in 4 must succeed (200) and 3 must be ResourceConflictException (409).',
    '',
  );
  out.push(row([...header, 'runs', '× floor', '× SQLite', '× ceiling']), row(header.concat(['', '', '', '']).map(() => '---')));
  const main = ms.filter((m) => MAIN_SCENARIOS.includes(m.scenario) || m.target === 'ceiling');
  const paced = ms.filter((m) => isPaced(m.scenario));
  out.push(
    ...measurementRows(main, (m) => {
      const overFloor = m.target === 'floor' || m.target === 'ceiling' ? undefined : pairedRatio(raw, m.scenario, m.target, 'floor');
      // "compare" (an A/B build) is set against the server of its own store.
      const base = m.target === 'postgres' ? 'sqlite' : m.target === 'compare' ? m.store : undefined;
      const overSqlite = base ? pairedRatio(raw, m.scenario, m.target, base) : undefined;
      return [
        String(m.runs ?? 1),
        overFloor === undefined ? '' : fixed(overFloor),
        overSqlite === undefined ? '' : fixed(overSqlite),
        ceilingRate && m.target !== 'ceiling' ? fixed(m.requestsPerSecond / ceilingRate, 3) : '',
      ];
    }),
  );
  const hot = ms.filter((m) => m.scenario.startsWith('Hot record'));
  if (hot.length) {
    out.push('', 'Hot-record split (status: count):', '');
    for (const m of hot) out.push(`- ${m.target}: ${Object.entries(m.statusCounts).map(([code, n]) => `${code}: ${n} (${fixed((100 * n) / m.completed, 1)} %)`).join(', ')}`);
  }
  out.push('');

  if (paced.length) {
    out.push('## Latency at a fixed load (open loop at ½ of the capacity measured above, 64 connections; the floor at the SQLite server\'s rate)', '');
    out.push(row(header), row(header.map(() => '---')));
    out.push(...measurementRows(paced, () => []));
    out.push('');
  }
  const scaling = ms.filter((m) => / records$/.test(m.scenario) && !MAIN_SCENARIOS.includes(m.scenario));
  if (scaling.length) {
    out.push('## Scaling with dataset size (records of ~1 KB; 1,024 records ≈ the 1 MB cap)', '');
    out.push(row([...header, '× 10 records']), row(header.concat(['']).map(() => '---')));
    out.push(
      ...measurementRows(scaling, (m) => {
        // Rounds over the sizes: the median of the ratios within each round (a single run: the plain ratio).
        const r = pairedRatio(raw, m.scenario, m.target, m.target, m.scenario.replace(/\d+ records$/, '10 records'));
        return [r === undefined ? '' : fixed(r)];
      }),
    );
    out.push('');
  }
  const identities = ms.filter((m) => / identities$/.test(m.scenario));
  if (identities.length) {
    out.push('## Scaling with identities in the store (each with a 10-record dataset; 256 of them sampled; medians of the runs at each size)', '');
    out.push(row([...header, '× smallest']), row(header.concat(['']).map(() => '---')));
    out.push(
      ...measurementRows(identities, (m) => {
        const kind = m.scenario.replace(/, [^,]+ identities$/, '');
        const first = identities.find((x) => x.target === m.target && x.scenario.startsWith(kind));
        return [first ? fixed(m.requestsPerSecond / first.requestsPerSecond) : ''];
      }),
    );
    out.push('');
  }
  if (client.length) {
    out.push('## Client sync over loopback (idle server; median of repetitions, min–max)', '');
    out.push(row(['server', 'SQLite synchronous', 'client', 'first sync, 1,024 × ~1 KB', 'push 1 local change', 'pull 1 remote change']), row(['---', '---', '---', '---', '---', '---']));
    for (const c of client) {
      const d = (x: { median: number; min: number; max: number }) => `${fixed(x.median)} ms (${fixed(x.min)}–${fixed(x.max)})`;
      out.push(row([c.target, syncLabel(c), c.client, d(c.firstSyncMs), d(c.incrementalPushMs), d(c.incrementalPullMs)]));
    }
    out.push('');
  }
  return out.join('\n');
}
