// Open-loop (paced) load for the latency target: a fixed rate of requests, sent evenly over keep-alive
// connections whatever the answers, with a minimal HTTP/1.1 reader instead of node:http's client.
import { connect, type Socket } from 'node:net';
import type { LoadJob, LoadResult, PreparedRequest } from './types.ts';

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The latency figures of a run (ms); sorts `latencies` in place. */
export function latencySummary(latencies: Float64Array): LoadResult['latencyMs'] {
  const sorted = latencies.sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : 0,
    mean: sorted.length ? sum / sorted.length : 0,
  };
}

/** A pooled request as it goes on the wire (request line, headers, body), built once. */
const wireBytes = new WeakMap<PreparedRequest, Buffer>();
function bytesOf(request: PreparedRequest): Buffer {
  let bytes = wireBytes.get(request);
  if (!bytes) {
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
    head += request.body ? `content-length: ${request.body.length}\r\n\r\n` : '\r\n';
    bytes = request.body ? Buffer.concat([Buffer.from(head, 'latin1'), request.body]) : Buffer.from(head, 'latin1');
    wireBytes.set(request, bytes);
  }
  return bytes;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

/**
 * One keep-alive connection of a paced run and the answer it is reading. Answers are framed by Content-Length
 * (cognisync and both baselines always send it); the body is skipped, not kept, unless it is an error's.
 */
class PacedConnection {
  readonly socket: Socket;
  /** When the request in flight was due; undefined while idle. */
  sentAt: number | undefined;
  private head: Buffer | undefined;
  private status = 0;
  /** Body bytes still to come; -1 while reading the head. */
  private remaining = -1;
  private errorBody: Buffer[] | undefined;

  constructor(
    socket: Socket,
    private readonly onAnswer: (connection: PacedConnection, status: number, errorBody: string | undefined) => void,
    private readonly keepErrors: () => boolean,
  ) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.read(chunk));
  }

  send(bytes: Buffer, sentAt: number): void {
    this.sentAt = sentAt;
    this.socket.write(bytes);
  }

  private read(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining < 0) {
        const data = this.head ? Buffer.concat([this.head, chunk.subarray(offset)]) : chunk.subarray(offset);
        const end = data.indexOf(HEAD_END);
        if (end < 0) {
          this.head = Buffer.from(data);
          return;
        }
        this.head = undefined;
        const head = data.toString('latin1', 0, end);
        const length = CONTENT_LENGTH.exec(head);
        if (!length) {
          this.socket.destroy(new Error(`an answer without Content-Length: ${head.slice(0, 200)}`));
          return;
        }
        this.status = Number(head.slice(9, 12));
        this.remaining = Number(length[1]);
        this.errorBody = this.status >= 300 && this.keepErrors() ? [] : undefined;
        chunk = data;
        offset = end + HEAD_END.length;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      this.errorBody?.push(chunk.subarray(offset, offset + take));
      this.remaining -= take;
      offset += take;
      if (this.remaining === 0) {
        this.remaining = -1;
        const body = this.errorBody && Buffer.concat(this.errorBody).toString('utf8');
        this.errorBody = undefined;
        this.onAnswer(this, this.status, body);
      }
    }
  }
}

/**
 * Open-loop load at a fixed rate for the latency target. autocannon's own rate limit releases each connection's
 * quota in a burst at the start of every second, so it would measure the burst rather than the rate; this
 * paces requests evenly (every millisecond, the requests now due) over at most `connections` keep-alive sockets.
 * A request due while every socket is busy waits for one, and its latency counts from when it was due.
 *
 * The sockets are plain TCP with a minimal HTTP/1.1 reader, not node:http's client: at ~1,000 answers of ~15 KB
 * a second, the client's own work (a parser, a response stream and its events per answer) stalled this process's
 * event loop by 3.5–6.5 ms at the 99th percentile, and every stall was added to the latencies it measured.
 */
export async function pacedLoad(job: Pick<LoadJob, 'url' | 'connections' | 'durationSeconds' | 'overallRate'>, next: () => PreparedRequest): Promise<LoadResult> {
  const rate = job.overallRate!;
  const { hostname, port } = new URL(job.url);
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  const errorSamples: string[] = [];
  let errors = 0;
  let sent = 0;
  let inFlight = 0;
  let finished = false;
  const idle: PacedConnection[] = [];
  const waiting: Array<{ bytes: Buffer; dueAt: number }> = [];
  let resolveRun: (result: LoadResult) => void;
  const result = new Promise<LoadResult>((resolve) => (resolveRun = resolve));
  const connections: PacedConnection[] = [];

  const dispatch = (connection: PacedConnection) => {
    const next = waiting.shift();
    if (next) connection.send(next.bytes, next.dueAt);
    else idle.push(connection);
  };
  const done = () => {
    inFlight--;
    if (finished && inFlight === 0) finish();
  };
  const onAnswer = (connection: PacedConnection, status: number, errorBody: string | undefined) => {
    latencies.push(performance.now() - connection.sentAt!);
    connection.sentAt = undefined;
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    if (errorBody !== undefined) errorSamples.push(`${status} ${errorBody.slice(0, 300)}`);
    dispatch(connection);
    done();
  };
  const open = () =>
    new Promise<PacedConnection>((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port), noDelay: true });
      const connection = new PacedConnection(socket, onAnswer, () => errorSamples.length < 3);
      socket.once('connect', () => {
        connections.push(connection);
        resolve(connection);
      });
      socket.on('error', reject);
      socket.on('close', () => {
        // The server closed the connection (or it failed): the request it carried is an error, and a new
        // connection takes its place.
        connections.splice(connections.indexOf(connection), 1);
        const at = idle.indexOf(connection);
        if (at >= 0) idle.splice(at, 1);
        if (connection.sentAt !== undefined) {
          connection.sentAt = undefined;
          errors++;
          done();
        }
        if (!finished || waiting.length > 0) {
          open().then(dispatch, () => {
            // Nowhere to send what waits: each is an error.
            for (const _ of waiting.splice(0)) {
              errors++;
              done();
            }
          });
        }
      });
    });
  // Every connection is open before the clock starts, so no request waits for a handshake.
  for (let i = 0; i < job.connections; i++) idle.push(await open());

  const started = performance.now();
  const durationMs = job.durationSeconds * 1000;
  // Called once `finished` is set and nothing is in flight; the sockets it closes are not replaced.
  function finish() {
    for (const connection of [...connections]) connection.socket.destroy();
    const elapsedSeconds = (performance.now() - started) / 1000;
    resolveRun({
      completed: latencies.length,
      elapsedSeconds,
      requestsPerSecond: latencies.length / elapsedSeconds,
      latencyMs: latencySummary(Float64Array.from(latencies)),
      statusCounts,
      errors,
      timeouts: 0,
      poolExhausted: false,
      errorSamples,
    });
  }
  const timer = setInterval(() => {
    const now = performance.now();
    const elapsed = now - started;
    if (elapsed >= durationMs) {
      clearInterval(timer);
      finished = true;
      if (inFlight === 0) finish();
      return;
    }
    const due = Math.floor((elapsed / 1000) * rate) - sent;
    for (let i = 0; i < due; i++, sent++) {
      const bytes = bytesOf(next());
      inFlight++;
      const connection = idle.pop();
      if (connection) connection.send(bytes, now);
      else waiting.push({ bytes, dueAt: now });
    }
  }, 1);
  return result;
}

