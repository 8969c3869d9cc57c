// Writing responses: the only place where errors become AWS-shaped HTTP answers.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorStatus, InternalErrorException, ServiceError, type ServiceName } from '../errors.js';
import { serializeOutput } from '../protocol/request.js';

const contentTypes: Record<ServiceName, string> = { sync: 'application/json', identity: 'application/x-amz-json-1.1' };

/** Answers longer than this many characters go out after their headers rather than joined with them (see writeOutput). */
const JOINED_BODY_MAX = 16 * 1024;

/** Sends a small answer's body (an AnswerBatch may hold it to the end of the loop's I/O phase). */
export type EndAnswer = (res: ServerResponse, body: string) => void;

const endAtOnce: EndAnswer = (res, body) => res.end(body);

/**
 * `headers` (HttpPolicy.headerList: request id, security, CORS; a list of this request's own) go to writeHead
 * together with the answer's own, as one flat list.
 */
export function writeOutput(res: ServerResponse, service: ServiceName, output: object, headers: string[], end: EndAnswer = endAtOnce): number {
  // node:http joins a string body with the headers into one write(2), which is what small answers (nearly all)
  // want. A large answer (a full dataset is ~1 MB of JSON) is sent after its headers instead: joining would copy
  // it into a second string, and a Buffer copy would stay on the heap until the next major GC. Written as a
  // string, the socket copies it into native memory that is freed as soon as the kernel has taken it (at once
  // on loopback), so each answer leaves one string of garbage rather than two copies.
  const text = serializeOutput(output);
  // Pushed onto the request's own list (Array.prototype.concat is a C++ builtin, several times dearer), and taken
  // off again once written (writeHead copies them at once), so that a failure leaves writeError the list it was given.
  const given = headers.length;
  headers.push('content-type', contentTypes[service], 'content-length', String(Buffer.byteLength(text)));
  try {
    res.writeHead(200, headers);
  } finally {
    headers.length = given;
  }
  if (text.length > JOINED_BODY_MAX) {
    res.flushHeaders();
    res.end(text);
  } else {
    end(res, text);
  }
  return 200;
}

/**
 * Writes `error` as AWS does; anything that is not a ServiceError is logged and becomes InternalErrorException.
 * `headers`, when given, are the request's headerList (otherwise they were set on `res` already).
 */
export function writeError(res: ServerResponse, service: ServiceName, error: unknown, requestId: string, logger: Logger, headers?: string[], end: EndAnswer = endAtOnce): number {
  let serviceError: ServiceError;
  if (error instanceof ServiceError) {
    serviceError = error;
  } else {
    logger.error({ err: error, requestId }, 'unexpected error');
    // Request lines are written in batches; a fault is written at once.
    logger.flush();
    serviceError = new InternalErrorException(`An internal error occurred. Request id: ${requestId}`);
  }
  const status = errorStatus(service, serviceError.code);
  const body = JSON.stringify({ __type: serviceError.code, message: serviceError.message });
  if (res.headersSent) {
    res.destroy();
    return status;
  }
  const own = ['content-type', contentTypes[service], 'content-length', String(Buffer.byteLength(body)), 'x-amzn-errortype', serviceError.code];
  if (headers) headers.push(...own);
  res.writeHead(status, headers ?? own);
  end(res, body);
  return status;
}
