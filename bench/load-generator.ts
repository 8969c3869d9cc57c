// The load generator: a separate process (pinned to its own CPU) that receives ready-made HTTP requests
// from bench/run.ts over IPC and replays them: closed loop with autocannon's programmatic API, open loop
// (paced, for the latency target) with lib/paced-load.ts. It never signs or builds requests while a
// measurement runs; it only hands the next one over.
import autocannon from 'autocannon';
import { latencySummary, pacedLoad } from './lib/paced-load.ts';
import type { LoadJob, LoadResult, PreparedRequest, WireRequest } from './lib/types.ts';

/** Requests shared by all connections, handed out in order from one cursor. */
interface SharedPool {
  kind: 'shared';
  requests: PreparedRequest[];
  cursor: number;
}

/**
 * One request sequence per connection ("lane"). A connection sends its next request only after the previous
 * answer, so a lane's writes to its own dataset arrive in order and can carry SyncCounts computed in advance.
 */
interface LanePool {
  kind: 'lanes';
  lanes: Array<{ requests: PreparedRequest[]; cursor: number }>;
}

type Pool = SharedPool | LanePool;

const pools = new Map<string, Pool>();

const prepare = (request: WireRequest): PreparedRequest => ({
  method: request.method,
  path: request.path,
  headers: request.headers,
  body: request.body === undefined ? undefined : Buffer.from(request.body),
});

function run(job: LoadJob): Promise<LoadResult> {
  const pool = pools.get(job.pool);
  if (!pool) throw new Error(`unknown request pool ${job.pool}`);
  if (pool.kind === 'lanes' && pool.lanes.length < (job.laneBase ?? 0) + job.connections) throw new Error(`pool ${job.pool} has too few lanes`);
  // Unique requests (writes) must never be replayed: stop while `reserve` are left for the requests
  // autocannon has already built for its connections.
  const reserve = pool.kind === 'shared' ? job.connections * 2 : 2;
  let exhausted = false;
  let nextLane = job.laneBase ?? 0;
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  const statusCounts: Record<string, number> = {};
  const errorSamples: string[] = [];

  return new Promise((resolve, reject) => {
    // Stopping autocannon takes effect only at its next sample tick; destroying the connections stops at once.
    const clients: Array<{ destroy(): void }> = [];
    const exhaust = () => {
      exhausted = true;
      for (const client of clients) {
        try {
          client.destroy();
        } catch {
          // A client still being constructed has no connection yet; it is destroyed again after construction.
        }
      }
    };
    const take = (source: { requests: PreparedRequest[]; cursor: number }) => {
      if (source.cursor >= source.requests.length) {
        if (job.cycle) source.cursor = 0;
        else throw new Error('request pool exhausted (the reserve was too small)');
      }
      if (!job.cycle && !exhausted && source.cursor >= source.requests.length - reserve) exhaust();
      return source.requests[source.cursor++]!;
    };
    const setup = (source: () => PreparedRequest) => (request: Record<string, unknown>) => {
      const next = source();
      request.method = next.method;
      request.path = next.path;
      request.headers = { ...next.headers };
      request.body = next.body;
      return request;
    };
    const onResponse = job.captureErrors
      ? (status: number, body: string) => {
          if ((status < 200 || status > 299) && errorSamples.length < 3) errorSamples.push(`${status} ${body.slice(0, 300)}`);
        }
      : undefined;
    const placeholder = { method: 'GET', path: '/health', headers: {}, body: undefined };
    const started = performance.now();
    const instance = autocannon(
      {
        url: job.url,
        connections: job.connections,
        pipelining: 1,
        duration: job.durationSeconds,
        timeout: 30,
        sampleInt: 100,
        // Each connection's first request is built before setupClient runs; lane pools replace it there.
        requests: [{ setupRequest: pool.kind === 'shared' ? setup(() => take(pool)) : setup(() => placeholder), ...(onResponse ? { onResponse } : {}) }],
        setupClient(client: { setRequests(requests: unknown[]): void; destroy(): void }) {
          clients.push(client);
          if (pool.kind === 'lanes') {
            const lane = pool.lanes[nextLane++]!;
            client.setRequests([{ setupRequest: setup(() => take(lane)), ...(onResponse ? { onResponse } : {}) }]);
          }
        },
      },
      (error: Error | null, result: autocannon.Result) => {
        if (error) return reject(error);
        const elapsedSeconds = (performance.now() - started) / 1000;
        resolve({
          completed: count,
          elapsedSeconds,
          requestsPerSecond: count / elapsedSeconds,
          latencyMs: latencySummary(latencies.subarray(0, count)),
          statusCounts,
          errors: result.errors,
          timeouts: result.timeouts,
          poolExhausted: exhausted,
          errorSamples,
        });
      },
    );
    if (exhausted) exhaust();
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = responseTime;
      statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
    });
  });
}

/** Open loop over a shared pool, replayed in order (see lib/paced-load.ts). */
function paced(job: LoadJob): Promise<LoadResult> {
  const pool = pools.get(job.pool);
  if (!pool || pool.kind !== 'shared') throw new Error(`paced runs need a shared pool (${job.pool})`);
  return pacedLoad(job, () => {
    if (pool.cursor >= pool.requests.length) pool.cursor = 0;
    return pool.requests[pool.cursor++]!;
  });
}

type Message =
  | { type: 'load'; pool: string; requests: WireRequest[] }
  | { type: 'load-lanes'; pool: string; lanes: WireRequest[][] }
  | { type: 'run'; job: LoadJob }
  | { type: 'drop'; pool: string };

process.on('message', (message: Message) => {
  if (message.type === 'load') {
    pools.set(message.pool, { kind: 'shared', requests: message.requests.map(prepare), cursor: 0 });
    process.send!({ type: 'loaded', pool: message.pool });
  } else if (message.type === 'load-lanes') {
    pools.set(message.pool, { kind: 'lanes', lanes: message.lanes.map((requests) => ({ requests: requests.map(prepare), cursor: 0 })) });
    process.send!({ type: 'loaded', pool: message.pool });
  } else if (message.type === 'drop') {
    pools.delete(message.pool);
  } else {
    Promise.resolve(message.job)
      .then((job) => (job.paced ? paced(job) : run(job)))
      .then(
      (result) => process.send!({ type: 'result', result }),
      (error: Error) => process.send!({ type: 'error', message: error.stack ?? String(error) }),
    );
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
