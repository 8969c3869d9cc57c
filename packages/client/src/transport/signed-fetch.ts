// One AWS request: SigV4-signed with @smithy/signature-v4 (or unsigned), sent with fetch or another HttpExchange, AWS JSON errors as ServiceError.
import { SignatureV4 } from '@smithy/signature-v4';
import { NetworkError, ServiceError } from '../errors.ts';
import { Sha256 } from './sha256.ts';

/** AWS credentials as every AWS SDK shapes them. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** When they stop working; the client refreshes before then. */
  expiration?: Date;
}

/** Anything that yields credentials: the AWS SDK v3 credential providers all fit. */
export type AwsCredentialProvider = () => Promise<AwsCredentials & { identityId?: string }>;

export interface AwsRequest {
  method: 'GET' | 'POST' | 'DELETE';
  endpoint: string;
  /** Path with its labels already URI-encoded. */
  path: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  body?: unknown;
  /** Signing name and region; omit `credentials` for the unsigned Cognito Identity operations. */
  service: string;
  region: string;
  credentials?: AwsCredentials;
  fetch: typeof fetch;
  /** How sendAwsRequest sends it and reads the answer; default: `fetch`. (Streamed answers always use `fetch`.) */
  exchange?: HttpExchange;
  signal?: AbortSignal;
  /**
   * How long sendAwsRequest waits for the answer's head, and between parts of its body (default
   * DEFAULT_ANSWER_TIMEOUT_MS); the whole body may take longer.
   */
  answerTimeoutMs?: number;
}

/**
 * How long a request waits for its answer's status line and headers. Neither fetch nor node:http gives up by
 * itself: a request queued behind a browser's six HTTP/1.1 connections per host (six tabs each holding a live
 * stream) or sent into a half-open connection waited forever, and with it the sync and the lock it held. Only the
 * head is timed, so a large page on a slow network is not cut off.
 */
export const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;

/** What sendAwsRequest needs of an answer: the status line, its headers, and the whole body. */
export interface HttpAnswer {
  status: number;
  statusText: string;
  /** A header's value (repeated headers joined with ", "), or null. */
  header(name: string): string | null;
  /**
   * Reads the whole body as UTF-8; rejects when the connection fails before it ends. `onProgress`, when the exchange
   * can tell, is called as parts arrive (the node:http exchange has an idle timeout of its own instead).
   */
  text(onProgress?: () => void): Promise<string>;
}

/** Sends one request and resolves once the answer's head arrived; rejects when no answer arrives. */
export type HttpExchange = (url: string, init: { method: string; headers: Record<string, string>; body: string | undefined; signal?: AbortSignal }) => Promise<HttpAnswer>;

/** An HttpExchange over a fetch implementation. */
export function fetchExchange(fetchImpl: typeof fetch): HttpExchange {
  return async (url, init) => {
    const response = await fetchImpl(url, init);
    const text = async (onProgress?: () => void) => {
      if (!onProgress || !response.body) return response.text();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let body = '';
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        onProgress();
        body += decoder.decode(read.value, { stream: true });
      }
      return body + decoder.decode();
    };
    return { status: response.status, statusText: response.statusText, header: (name) => response.headers.get(name), text };
  };
}

/**
 * How far the device's clock is off from each service's (ms to add to Date.now() when signing), learned from the
 * `Date` header of an answer that refused a signature as expired or not yet current, as the AWS SDKs do
 * (`systemClockOffset`). A device whose clock is more than the service's window (15 min) off could not sync at all.
 * Shared by every manager in the process: the clock is the device's.
 */
const clockOffsets = new Map<string, number>();

/** Whether an error is a signature refused for its time, which the device's clock caused. */
const isClockSkewError = (error: ServiceError) =>
  (error.name === 'InvalidSignatureException' || error.name === 'SignatureDoesNotMatch') && /Signature (expired|not yet current)/.test(error.message);

/**
 * Whether `error` refused the request's signature for its time and the answer's Date header taught a new clock
 * offset: the request is then worth signing and sending once more.
 */
export function learnedClockSkew(request: AwsRequest, error: ServiceError, date: string | null): boolean {
  return request.credentials !== undefined && isClockSkewError(error) && learnClockOffset(request.endpoint, date);
}

/**
 * Learns the clock offset to `endpoint` from an answer's Date header; true when it changed by more than a second
 * (a request signed again with it is then worth sending).
 */
function learnClockOffset(endpoint: string, date: string | null): boolean {
  const serverTime = date ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(serverTime)) return false;
  const origin = new URL(endpoint).origin;
  const offset = serverTime - Date.now();
  if (Math.abs(offset - (clockOffsets.get(origin) ?? 0)) < 1000) return false;
  clockOffsets.set(origin, offset);
  return true;
}

/** A request ready for fetch: its URL (with a pre-signed query when asked) and headers (with the signature otherwise). */
export interface PreparedRequest {
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/**
 * Signs the request with SigV4: in the Authorization header, or, with `presignExpiresInSeconds`, in the URL's query
 * (as @smithy/signature-v4's `presign`: for clients that cannot send headers, or to avoid a CORS preflight).
 */
export async function prepareAwsRequest(request: AwsRequest, presignExpiresInSeconds?: number): Promise<PreparedRequest> {
  const base = new URL(request.endpoint);
  const path = base.pathname.replace(/\/$/, '') + request.path;
  let query: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.query ?? {})) if (value !== undefined) query[name] = value;
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  let headers: Record<string, string> = { host: base.host, ...request.headers };
  if (body !== undefined) headers['content-type'] ??= 'application/json';

  if (request.credentials) {
    const signer = new SignatureV4({ service: request.service, region: request.region, credentials: request.credentials, sha256: Sha256, uriEscapePath: true });
    const unsigned = { method: request.method, protocol: base.protocol, hostname: base.hostname, port: base.port ? Number(base.port) : undefined, path, query, headers, body };
    const signingDate = new Date(Date.now() + (clockOffsets.get(base.origin) ?? 0));
    const signed = presignExpiresInSeconds === undefined ? await signer.sign(unsigned, { signingDate }) : await signer.presign(unsigned, { expiresIn: presignExpiresInSeconds, signingDate });
    headers = signed.headers as Record<string, string>;
    query = signed.query as Record<string, string>;
  }
  // fetch sets Host itself (and browsers refuse it); it was only needed for the signature.
  delete headers.host;

  const url = new URL(base.origin + path);
  for (const [name, value] of Object.entries(query)) url.searchParams.append(name, value);
  return { url: url.toString(), headers, body };
}

/** The ServiceError an AWS error answer stands for (AWS JSON error shapes, REST-JSON and awsJson1.1). */
export function serviceErrorOf(response: Response | Omit<HttpAnswer, 'text'>, text: string): ServiceError {
  const header = (name: string) => ('headers' in response ? response.headers.get(name) : response.header(name));
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // Not JSON (a proxy's error page): the status alone names the error.
  }
  // x-amzn-ErrorType may carry ":http://…" after the name; __type may carry "namespace#" before it.
  const errorType = header('x-amzn-errortype')?.split(':')[0];
  const type = errorType || (typeof parsed.__type === 'string' ? parsed.__type : typeof parsed.code === 'string' ? parsed.code : '');
  const name = type.split('#').pop() || `Http${response.status}Error`;
  const message = typeof parsed.message === 'string' ? parsed.message : typeof parsed.Message === 'string' ? parsed.Message : response.statusText;
  return new ServiceError(name, message, response.status, header('x-amzn-requestid') ?? undefined);
}

/**
 * Sends the prepared request, with a failure to get any answer as NetworkError (or the abort reason when `signal`
 * fired: the caller's, or sendAwsRequest's own when the answer's head is late).
 */
async function sendOrNetworkError<A>(request: AwsRequest, prepared: PreparedRequest, send: typeof fetch | HttpExchange, signal = request.signal): Promise<A> {
  try {
    return (await send(prepared.url, { method: request.method, headers: prepared.headers, body: prepared.body, signal })) as A;
  } catch (error) {
    if (signal?.aborted) throw signal.reason ?? error;
    throw new NetworkError(`${request.method} ${prepared.url.split('?')[0]} failed: ${(error as Error)?.message ?? error}`, { cause: error });
  }
}

/** fetch, with a failure to get any answer as NetworkError (or the abort reason when the signal fired). */
export function fetchOrNetworkError(request: AwsRequest, prepared: PreparedRequest): Promise<Response> {
  return sendOrNetworkError<Response>(request, prepared, request.fetch);
}

/**
 * Sends the request and returns the parsed JSON body; throws ServiceError for an AWS error, NetworkError without an
 * answer. A signature refused for its time is sent once more, signed with the service's clock (see clockOffsets).
 */
export async function sendAwsRequest<T>(request: AwsRequest): Promise<T> {
  const timeoutMs = request.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    const prepared = await prepareAwsRequest(request);
    const where = `${request.method} ${prepared.url.split('?')[0]}`;
    // This attempt's signal: the caller's abort, or no head within timeoutMs.
    const controller = new AbortController();
    const forward = () => controller.abort(request.signal!.reason);
    if (request.signal?.aborted) forward();
    request.signal?.addEventListener('abort', forward, { once: true });
    const timer = setTimeout(() => controller.abort(new NetworkError(`${where} got no answer within ${timeoutMs} ms`)), timeoutMs);
    let answer: HttpAnswer;
    let text: string;
    try {
      try {
        answer = await sendOrNetworkError<HttpAnswer>(request, prepared, request.exchange ?? fetchExchange(request.fetch), controller.signal);
      } finally {
        clearTimeout(timer);
      }
      // The body may take long, but not stop: fetch has no idle timeout of its own (a browser waited for ever on
      // an answer whose connection went silent after its head), so a gap of timeoutMs between its parts ends it.
      let idle: ReturnType<typeof setTimeout> | undefined;
      const restartIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(new NetworkError(`${where}: the answer stopped for ${timeoutMs} ms`)), timeoutMs);
      };
      restartIdle();
      try {
        text = await answer.text(restartIdle);
      } catch (error) {
        if (controller.signal.aborted) throw controller.signal.reason ?? error;
        throw new NetworkError(`Reading the answer of ${where} failed: ${(error as Error)?.message ?? error}`, { cause: error });
      } finally {
        clearTimeout(idle);
      }
    } finally {
      request.signal?.removeEventListener('abort', forward);
    }
    if (answer.status < 200 || answer.status > 299) {
      const error = serviceErrorOf(answer, text);
      if (attempt > 0 || !learnedClockSkew(request, error, answer.header('date'))) throw error;
      continue;
    }
    if (!text) return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ServiceError('SerializationException', `Answer of ${where} is not JSON`, answer.status);
    }
  }
}

/** Label encoding of the AWS SDKs (RFC 3986 unreserved characters stay, everything else is percent-encoded). */
export const encodeLabel = (label: string) => encodeURIComponent(label).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
