// Writing responses: the only place where errors become AWS-shaped HTTP answers.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorStatus, InternalErrorException, ServiceError, type ServiceName } from '../errors.js';
import { serializeOutput } from '../protocol/request.js';

const contentTypes: Record<ServiceName, string> = { sync: 'application/json', identity: 'application/x-amz-json-1.1' };

/** Answers up to this many characters go out as a string; larger ones as a Buffer (see writeOutput). */
const STRING_BODY_MAX = 16 * 1024;

export function writeOutput(res: ServerResponse, service: ServiceName, output: object): number {
  // node:http joins a string body with the headers into one write(2); a Buffer goes out after them (writev).
  // Small answers (nearly all) take the single write. A large one goes as a Buffer: joining it with the headers
  // would copy it again, which for 1 MB answers to many clients at once doubled the heap.
  const text = serializeOutput(output);
  const body = text.length <= STRING_BODY_MAX ? text : Buffer.from(text);
  res.writeHead(200, { 'content-type': contentTypes[service], 'content-length': Buffer.byteLength(body) });
  res.end(body);
  return 200;
}

/** Writes `error` as AWS does; anything that is not a ServiceError is logged and becomes InternalErrorException. */
export function writeError(res: ServerResponse, service: ServiceName, error: unknown, requestId: string, logger: Logger): number {
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
  res.writeHead(status, {
    'content-type': contentTypes[service],
    'content-length': Buffer.byteLength(body),
    'x-amzn-errortype': serviceError.code,
  });
  res.end(body);
  return status;
}
