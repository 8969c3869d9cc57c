// Shapes shared by the benchmark orchestrator (bench/run.ts) and its load generator process.

/** One ready-to-send HTTP request (already signed for cognisync; the baselines ignore the signature). */
export interface WireRequest {
  method: string;
  /** Path with query string, as it goes on the wire. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** A WireRequest as the load generator holds it, ready to send: the body as bytes. */
export interface PreparedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

export interface LoadJob {
  url: string;
  /** A request pool loaded into the generator before (requests are used in order from a shared cursor). */
  pool: string;
  connections: number;
  durationSeconds: number;
  /** Reads may replay their pool; writes must not (a replayed write would conflict), so they stop when it runs low. */
  cycle: boolean;
  /** Lane pools: the first lane this run's connections take (warm-up and measurement use different lanes). */
  laneBase?: number;
  /** Requests per second for an open-loop run (with `paced`); closed loop (as fast as possible) when unset. */
  overallRate?: number;
  /** Open loop: send `overallRate` requests per second evenly, whatever the answers (see load-generator.ts). */
  paced?: boolean;
  /** Keep the first few non-2xx bodies (costs a string per response, so off for large responses). */
  captureErrors: boolean;
}

export interface LoadResult {
  completed: number;
  elapsedSeconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  statusCounts: Record<string, number>;
  errors: number;
  timeouts: number;
  /** The run ended early because its unique requests ran out (bounded by count, not time). */
  poolExhausted: boolean;
  errorSamples: string[];
}
