// Answers requests node:http rejects before the listener sees them (overlong headers, malformed HTTP,
// timeouts, CONNECT) with an AWS-shaped error and the security headers instead of a bare status line.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SECURITY_HEADERS } from './http-policy.js';

const securityHeaderLines = Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('');

/**
 * How long a connection answered here stays half-closed for the client to read the answer and close its side. Long
 * enough for a client that writes its whole body before it reads (Python's http.client) to get to the answer; what
 * it sends meanwhile goes to node's parser, out of sight, so there is no idle timer as for closeAfterAnswer.
 */
const LINGER_MS = 5_000;

function writeRawError(socket: Duplex, status: number, reason: string, code: string, message: string): void {
  const body = JSON.stringify({ __type: code, message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n${securityHeaderLines}Content-Type: application/json\r\nx-amzn-ErrorType: ${code}\r\nx-amzn-RequestId: ${randomUUID()}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  // end() closes our side only. A client that never closes its own (a slow or stalled sender, which is what a timeout
  // answers) held the socket for good: its file descriptor, and for a request already handed to the listener its
  // in-flight slot and buffered body, since that request never ended either (QA: 9 stalled senders answered 429 to
  // every caller past the 60 s request timeout). node's own handler destroys the socket at once; a wait first lets a
  // client still sending read the answer rather than a reset.
  const linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('close', () => clearTimeout(linger));
}

export function writeClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || (error.code === 'ECONNRESET')) {
    socket.destroy();
    return;
  }
  const [status, reason, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'Request headers exceed the limit of 16384 bytes']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'The request was not received in time']
        : [400, 'Bad Request', 'Malformed HTTP request'];
  writeRawError(socket, status, reason, 'InvalidParameterException', message);
}

/** CONNECT asks for a proxy tunnel, which an API endpoint never opens (node would just drop the socket). */
export function refuseConnect(req: IncomingMessage, socket: Duplex): void {
  writeRawError(socket, 404, 'Not Found', 'UnknownOperationException', `No operation matches CONNECT ${String(req.url).slice(0, 256)}`);
}
