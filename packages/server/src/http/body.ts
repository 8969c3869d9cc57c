// Request bodies: reads one into memory, refusing (before buffering it) anything over the configured cap, and
// closes the connection of a request answered without reading its body so that the answer is not lost.
// Plain 'data'/'end' listeners rather than `for await`: the async iterator costs more than the rest of reading a
// small body, and a request without a body (every GET) is answered without waiting for the stream at all.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { InvalidParameterException, RequestEntityTooLargeException, TooManyRequestsException } from '../errors.js';

const EMPTY = Buffer.alloc(0);

/** The bytes of request bodies a process holds at once (Limits.maxBufferedRequestBytes). */
export class BodyBudget {
  private held = 0;

  constructor(private readonly capBytes: number) {}

  /** Whether `bytes` more would fit now (taking nothing). */
  fits(bytes: number): boolean {
    return this.held + bytes <= this.capBytes;
  }

  take(bytes: number): boolean {
    if (!this.fits(bytes)) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}

/** Refused unread, as over the in-flight cap: the caller answers and closes (closeAfterAnswer). */
export class BodyRefusedUnread extends TooManyRequestsException {
  constructor(message = 'The server is busy; retry the request.') {
    super(message);
  }
}

/** How long the body of a request pipelined behind an unfinished answer waits for its turn before it is refused. */
const PIPELINED_TURN_MS = 2_000;

/**
 * Reads the body, or refuses it by its declared length alone. A client that sent `Expect: 100-continue` is told
 * to go on (through `res`) only once its body is going to be read: the server hands such requests over without
 * node's automatic 100 Continue (server.ts), so a body refused by its length is never sent at all.
 * The bytes that arrive count against `budget` until the answer is written or the connection goes, whichever is
 * first (a request pipelined behind an answer never written has no answer to wait for). Counted as they arrive,
 * not at the declared length: connections that only declared 8 MiB and sent nothing held the whole budget (QA:
 * 16 of them refused every write and sign-in). A body whose declared length does not fit the budget at the start is
 * refused unread.
 */
export function readBody(req: IncomingMessage, maxBytes: number, res: ServerResponse, budget: BodyBudget): Buffer | Promise<Buffer> {
  const length = req.headers['content-length'];
  // HTTP/1.1: a request has a body only when it declares a length or a transfer coding.
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return EMPTY;
  const declared = Number(length);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(new RequestEntityTooLargeException(`Request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`));
  }
  if (Number.isFinite(declared) && !budget.fits(declared)) return Promise.reject(new BodyRefusedUnread());
  // Pipelined behind an answer still being written (its response has no socket yet), the body is read only once its
  // turn comes: read at once, its bytes stayed counted for as long as the answers before it took, and behind a live
  // stream that is an hour (QA: one guest's 16 pipelined 8 MiB bodies held the whole budget). Unread, node stops
  // reading the connection once a little of it is buffered.
  if (!res.socket) return awaitTurn(req, res).then(() => readBody(req, maxBytes, res, budget));
  return readNow(req, maxBytes, res, budget);
}

function awaitTurn(req: IncomingMessage, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      res.off('socket', onTurn);
      req.off('close', onClosed);
      req.socket.off('close', onClosed);
    };
    const onTurn = () => {
      done();
      resolve();
    };
    const onClosed = () => {
      done();
      reject(new InvalidParameterException('The request body ended before its declared length'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new BodyRefusedUnread('The answers before this pipelined request are still being written; send it on its own.'));
    }, PIPELINED_TURN_MS);
    res.once('socket', onTurn);
    req.once('close', onClosed);
    req.socket.once('close', onClosed);
  });
}

function readNow(req: IncomingMessage, maxBytes: number, res: ServerResponse, budget: BodyBudget): Promise<Buffer> {
  const { socket } = req;
  let held = 0;
  const release = () => {
    budget.give(held);
    held = 0;
    res.off('close', release);
    socket.off('close', release);
  };
  const hold = (bytes: number) => {
    if (!budget.take(bytes)) return false;
    if (held === 0) {
      res.once('close', release);
      socket.once('close', release);
    }
    held += bytes;
    return true;
  };
  if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData).off('end', onEnd).off('error', onEnded).off('close', onEnded);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // The rest is dropped unread (see closeAfterAnswer).
        stop();
        reject(new RequestEntityTooLargeException(`Request body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      if (!hold(chunk.length)) {
        stop();
        reject(new BodyRefusedUnread());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // The client closed the connection mid-body or timed out: its mistake, not a server fault (no 500, no error log).
    const onEnded = () => {
      stop();
      reject(new InvalidParameterException('The request body ended before its declared length'));
    };
    req.on('data', onData).on('end', onEnd).on('error', onEnded).on('close', onEnded);
  });
}

/** How long a refused request's connection may stay open for the rest of its body, in all and without data. */
const LINGER_MS = 5_000;
const LINGER_IDLE_MS = 2_000;

/**
 * For an answer sent before the request's body was read (413, and 429 / 503 turned away unread): the answer
 * carries `connection: close`, and the connection then closes the way nginx's and Apache's "lingering close" does.
 * Closing a socket while the client is still sending makes the kernel answer with a reset, and a client still
 * writing its body loses the answer already on its way (it sees EPIPE or ECONNRESET instead of the AWS error; one
 * 16 MB upload in three on loopback). So: the rest of the body is read and dropped, our side is closed for
 * writing once the answer is out (FIN), and the socket goes when the client closes its side, after LINGER_MS in
 * all, or after LINGER_IDLE_MS without data. node's http server closes a `connection: close` response's socket
 * through `socket.destroySoon()`; that one socket gets a lingering version of it.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  const socket = req.socket as Socket & { destroySoon?: () => void };
  // The body goes on through node's parser to `req` (the socket itself may emit no 'data': the parser can read
  // its handle natively), so that is where arriving data is seen.
  req.resume();
  socket.destroySoon = function lingeringClose(this: Socket) {
    this.end();
    const close = () => this.destroy();
    const total = setTimeout(close, LINGER_MS);
    const idle = setTimeout(close, LINGER_IDLE_MS);
    req.on('data', () => idle.refresh());
    this.once('close', () => {
      clearTimeout(total);
      clearTimeout(idle);
    });
  };
}
