// The request pipeline, declared in order in one place:
//   request id → preflight, health/ready/metrics/OIDC discovery/live stream (SSE)/admin (security/CORS headers set)
//   → in-flight cap → body (capped) → query → authenticate (SigV4) → route & bind (protocol) → authorize
//   → rate limit → validate (model) → operation → response with the security/CORS headers; any error → AWS error
//   response (small answers held to the end of the loop's I/O phase: answer-batch.ts); metrics + log.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { authorize, type CredentialLookup, type Principal } from '../auth/principal.js';
import { verifySignature } from '../auth/sigv4.js';
import type { SyncSessionTokens } from '../core/sync-session-token.js';
import { RequestEntityTooLargeException, ServiceError, TooManyRequestsException, type ServiceName } from '../errors.js';
import type { Limits } from '../limits.js';
import { cognitoIdentityMetadata } from '../model/cognito-identity.generated.js';
import { cognitoSyncMetadata } from '../model/cognito-sync.generated.js';
import type { IdentityServices, Integrations, Operation } from '../operations/operation.js';
import { AwsJsonTargets, decodeAwsJson } from '../protocol/aws-json.js';
import { parseQuery, type ApiRequest, type DecodedCall } from '../protocol/request.js';
import { decodeRestJson, RestJsonRouter } from '../protocol/rest-json.js';
import { validateInput } from '../protocol/validate.js';
import type { Store } from '../store/store.js';
import { BodyBudget, BodyRefusedUnread, closeAfterAnswer, readBody } from './body.js';
import type { HttpPolicy } from './http-policy.js';
import type { Metrics } from './metrics.js';
import type { RateLimiter } from './rate-limiter.js';
import { isLivePath, serveLiveStream, type LiveStreamDependencies } from './live-stream.js';
import { isAdminPath, serveAdmin } from './admin.js';
import { isStreamPayloadPath, serveStreamPayload } from './stream-payload.js';
import { writeError, writeOutput, type EndAnswer } from './respond.js';
import { AnswerBatch } from './answer-batch.js';
import { sharedFor } from './shared-answer.js';

export interface ListenerDependencies {
  store: Store;
  logger: Logger;
  limits: Limits;
  region: string;
  credentials: CredentialLookup;
  syncSessionTokens: SyncSessionTokens;
  identity: IdentityServices;
  integrations: Integrations;
  syncOperations: readonly Operation[];
  identityOperations: readonly Operation[];
  live: LiveStreamDependencies;
  rateLimiter: RateLimiter;
  metrics: Metrics | undefined;
  policy: HttpPolicy;
  /** The Web Push application server key (public), for browsers' pushManager.subscribe. */
  vapidPublicKey: string;
}

export function createRequestListener(deps: ListenerDependencies) {
  const router = new RestJsonRouter(deps.syncOperations);
  const targets = new AwsJsonTargets(deps.identityOperations);

  function authenticate(request: ApiRequest, service: ServiceName): Promise<Principal> {
    // Both models sign with their endpoint prefix (cognito-sync / cognito-identity).
    const signingName = service === 'sync' ? cognitoSyncMetadata.endpointPrefix : cognitoIdentityMetadata.endpointPrefix;
    return verifySignature(request, signingName, deps.credentials, new Date(), deps.limits.signatureSkewSeconds);
  }

  async function serveApi(req: IncomingMessage, res: ServerResponse, requestId: string, rawPath: string, rawQuery: string, headers: string[], arrivedIn: number) {
    const started = performance.now();
    const end: EndAnswer = (answered, body) => answers.end(answered, body, arrivedIn);
    // Cognito Identity is served on `POST /` (X-Amz-Target); every other path is Cognito Sync's REST API.
    const service: ServiceName = rawPath === '/' ? 'identity' : 'sync';
    let operationName: string | undefined;
    let caller: string | undefined;
    let errorCode: string | undefined;
    let status: number;
    try {
      // A request without a body (every GET) has its empty Buffer at once: no await, no extra turn of the loop.
      const read = readBody(req, service === 'identity' ? Math.min(deps.limits.maxIdentityRequestBodyBytes, deps.limits.maxRequestBodyBytes) : deps.limits.maxRequestBodyBytes, res, bodyBudget);
      const body = Buffer.isBuffer(read) ? read : await read;
      const request: ApiRequest = { method: req.method ?? 'GET', rawPath, query: parseQuery(rawQuery), headers: req.headers, body };
      let call: DecodedCall;
      let principal: Principal | undefined;
      if (service === 'identity') {
        const target = req.headers['x-amz-target'];
        if (!targets.isUnsigned(target)) principal = await authenticate(request, service);
        call = decodeAwsJson(targets.find(target), request);
      } else {
        principal = await authenticate(request, service);
        call = decodeRestJson(router, request);
      }
      const { operation } = call;
      operationName = operation.model.name;
      // Who called, never with a secret: the identity id, or just "developer".
      caller = principal?.kind === 'identity' ? principal.identityId : principal?.kind;
      if (principal) authorize(operation.model.name, operation.callers, principal, call.input);
      // App users (identity credentials, unsigned Identity calls) are rate limited; the developer is not.
      if (principal?.kind === 'identity') deps.rateLimiter.check(principal.identityPoolId, principal.identityId);
      // Unsigned calls count against the pool they name (GetId), before any work; those that name an identity count
      // against it, and its pool, once they proved they may act for it (context.rateLimit).
      else if (!principal) {
        // Ids longer than the model allows fail validation anyway; they must not become bucket keys.
        const poolId = call.input.IdentityPoolId;
        deps.rateLimiter.check(typeof poolId === 'string' && poolId.length <= 128 ? poolId : undefined, undefined);
      }
      const input = validateInput<never>(operation.model.input, call.input);
      const output = await operation.handle(
        { requestId, principal, region: deps.region, now: new Date(), limits: deps.limits, syncSessionTokens: deps.syncSessionTokens, identity: deps.identity, integrations: deps.integrations, rateLimit },
        input,
        deps.store,
      );
      if (deps.policy.closingConnections) res.shouldKeepAlive = false;
      status = writeOutput(res, service, output, headers, end);
    } catch (error) {
      if (deps.policy.closingConnections) res.shouldKeepAlive = false;
      // The rest of an oversized body is never stored: answer, then close the connection without losing the answer.
      if (error instanceof RequestEntityTooLargeException || error instanceof BodyRefusedUnread) closeAfterAnswer(req, res);
      status = writeError(res, service, error, requestId, deps.logger, headers, end);
      errorCode = error instanceof ServiceError ? error.code : 'InternalErrorException';
    }
    deps.metrics?.observe(operationName, status, errorCode, (performance.now() - started) / 1000);
    // Error messages carry no secrets or record values; the body and headers are never logged.
    deps.logger.info({ requestId, service, operation: operationName, caller, status, error: errorCode, ms: Math.round((performance.now() - started) * 100) / 100 }, 'request');
  }

  const rateLimit = (identityPoolId: string, identityId: string) => deps.rateLimiter.check(identityPoolId, identityId);
  const bodyBudget = new BodyBudget(deps.limits.maxBufferedRequestBytes);
  const answers = new AnswerBatch();

  let inFlight = 0;

  function startApi(req: IncomingMessage, res: ServerResponse, requestId: string, rawPath: string, rawQuery: string): void {
    inFlight++;
    serveApi(req, res, requestId, rawPath, rawQuery, deps.policy.headerList(req, requestId), answers.arrived())
      .catch((error: unknown) => {
        deps.logger.error({ err: error, requestId }, 'request pipeline failed');
        deps.logger.flush();
        res.destroy();
      })
      .finally(() => inFlight--);
  }

  /**
   * The store's readiness, asked at most once a second and shared by the probes meanwhile: /ready needs no credentials,
   * and on a read-only PostgreSQL each ask opens a new session (a read-only one is dropped), so a flood of probes forked
   * a database backend each (1,619 in 5 s) on a database already in trouble.
   */
  const ready = sharedFor(1000, () => deps.store.ping());

  type OwnAnswer = (req: IncomingMessage, res: ServerResponse, requestId: string, rawPath: string, rawQuery: string) => void;
  const json = (res: ServerResponse, status: number, body: string) => res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  /** What is served on GET beside the API, by path. */
  const ownGets = new Map<string, OwnAnswer>([
    ['/health', (_req, res) => json(res, 200, '{"status":"ok"}')],
    // The OpenID Connect discovery documents for the tokens GetOpenIdToken* issue.
    ['/.well-known/jwks.json', (_req, res) => json(res, 200, JSON.stringify(deps.identity.openIdTokens.jwks()))],
    [
      '/.well-known/openid-configuration',
      (_req, res) => {
        const issuer = deps.identity.openIdTokens.issuer;
        json(res, 200, JSON.stringify({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json`, id_token_signing_alg_values_supported: ['RS256'], subject_types_supported: ['public'], response_types_supported: ['id_token'] }));
      },
    ],
    ['/webpush/vapid-public-key', (_req, res) => json(res, 200, JSON.stringify({ publicKey: deps.vapidPublicKey }))],
    ['/ready', (_req, res) => void ready().then((ok) => json(res, ok ? 200 : 503, JSON.stringify({ status: ok ? 'ready' : 'store unavailable' })))],
  ]);
  if (deps.metrics) {
    const { metrics } = deps;
    ownGets.set('/metrics', (_req, res) => {
      void metrics.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        () => res.writeHead(503).end(),
      );
    });
  }
  /** The request line and metrics of an answer served beside the API (the admin page, a live stream's opening). */
  const served = (operation: string, requestId: string, started: number, status: number, error?: unknown) => {
    const errorCode = error === undefined ? undefined : error instanceof ServiceError ? error.code : 'InternalErrorException';
    deps.metrics?.observe(operation, status, errorCode, (performance.now() - started) / 1000);
    deps.logger.info({ requestId, operation, status, error: errorCode }, 'request');
  };
  const serveAdminPage: OwnAnswer = (req, res, requestId, rawPath, rawQuery) => {
    const started = performance.now();
    void serveAdmin(req, res, rawPath, rawQuery, deps.store, deps.credentials, deps.limits.signatureSkewSeconds).then(
      () => served('Admin', requestId, started, res.statusCode),
      (error: unknown) => served('Admin', requestId, started, writeError(res, 'sync', error, requestId, deps.logger), error),
    );
  };
  const serveLive: OwnAnswer = (req, res, requestId, rawPath, rawQuery) => {
    const started = performance.now();
    void serveLiveStream(req, res, rawPath, rawQuery, deps.live).then(
      () => served('LiveStream', requestId, started, 200),
      (error: unknown) => served('LiveStream', requestId, started, writeError(res, 'sync', error, requestId, deps.logger), error),
    );
  };
  const servePayload: OwnAnswer = (_req, res, requestId, rawPath) => {
    const started = performance.now();
    void serveStreamPayload(res, rawPath, deps.store).then(
      () => served('GetStreamPayload', requestId, started, 200),
      (error: unknown) => served('GetStreamPayload', requestId, started, writeError(res, 'sync', error, requestId, deps.logger), error),
    );
  };
  const ownGet = (rawPath: string): OwnAnswer | undefined =>
    ownGets.get(rawPath) ?? (isAdminPath(rawPath) ? serveAdminPage : isLivePath(rawPath) ? serveLive : isStreamPayloadPath(rawPath) ? servePayload : undefined);

  return (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    // HEAD of what is served on GET beside the API answers as GET does, without the body (node leaves it out); not
    // of the live stream, which would hold the connection open for a body never sent.
    const own = req.method === 'GET' ? ownGet(rawPath) : req.method === 'HEAD' && !isLivePath(rawPath) ? ownGet(rawPath) : undefined;
    // An API call (nearly every request) hands its headers to writeHead in one list; everything else has them set here.
    if (!own && !deps.policy.isPreflight(req) && inFlight < deps.limits.maxInFlightRequests) return startApi(req, res, requestId, rawPath, rawQuery);
    deps.policy.apply(req, res, requestId);
    if (deps.policy.preflight(req, res)) return;
    if (own) return own(req, res, requestId, rawPath, rawQuery);
    // What is left is an API call over the in-flight cap: a flood beyond what this process works on at once is
    // refused before its body is even read.
    closeAfterAnswer(req, res);
    const service: ServiceName = rawPath === '/' ? 'identity' : 'sync';
    writeError(res, service, new TooManyRequestsException('The server is busy; retry the request.'), requestId, deps.logger);
    deps.metrics?.observe(undefined, 429, 'TooManyRequestsException', 0);
    // Logged like every other answer: a refusal under overload is when the log is needed most.
    deps.logger.info({ requestId, service, status: 429, error: 'TooManyRequestsException', ms: 0 }, 'request');
  };
}
