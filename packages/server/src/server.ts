// Assembles a running cognisync: store, developer credentials, session-token secret, pipeline, listener,
// and a graceful close that stops accepting, lets in-flight requests finish and closes the store.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { resolveDeveloperCredentials } from './auth/developer-credentials.js';
import { LoginVerifier } from './auth/login-verifier.js';
import { loadMasterKey } from './auth/master-key.js';
import { OpenIdTokens } from './auth/openid-tokens.js';
import type { CredentialLookup, SigningCredentials } from './auth/principal.js';
import { CredentialDeriver } from './auth/temporary-credentials.js';
import type { Config } from './config.js';
import { SyncSessionTokens } from './core/sync-session-token.js';
import { createRequestListener } from './http/listener.js';
import { closeAfterAnswer } from './http/body.js';
import { identityOperations } from './operations/identity/index.js';
import { syncOperations } from './operations/sync/index.js';
import { openStore } from './store/open-store.js';
import { KinesisDelivery } from './outbox/kinesis-delivery.js';
import { OutboxWorker } from './outbox/outbox-worker.js';
import { SnsDelivery } from './outbox/sns-delivery.js';
import { WebPushDelivery } from './outbox/web-push-delivery.js';
import { SyncTriggerInvoker } from './triggers/sync-trigger.js';
import { LiveHub } from './live/live-hub.js';
import { HttpPolicy } from './http/http-policy.js';
import { Metrics } from './http/metrics.js';
import { RateLimiter } from './http/rate-limiter.js';
import { refuseConnect, writeClientError } from './http/client-error.js';
import { BatchedLogDestination } from './log-destination.js';

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  // Logs go to stderr so that stdout carries only the contract's "listening" line.
  // Lines are written in batches of 4 KiB and at least once a second, not one write(2) per request: a write per
  // request line cost about as much CPU as the SQLite read of a small ListRecords. What is left is written
  // synchronously if the process exits without close() (a crash).
  const logDestination = new BatchedLogDestination(2);
  const logger = pino({ level: config.logLevel, base: undefined }, logDestination);
  const logFlusher = setInterval(() => logger.flush(), 1000).unref();
  const flushLogAtExit = () => logDestination.flushSync();
  process.on('exit', flushLogAtExit);
  // Node's warnings (the AWS SDK clients' NodeVersionSupportWarning when an integration starts, deprecations) join the
  // log as JSON lines, instead of node's multi-line text in the middle of a JSON log.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => logger.warn({ warning: warning.name, code: (warning as { code?: string }).code, message: warning.message }, 'process warning'));
  const store = await openStore(config, {
    // Only message and code: the driver attaches its whole client object to these errors.
    onBackgroundError: (error) => logger.warn({ error: error.message, code: (error as { code?: string }).code }, 'database error outside any request (an idle connection lost, a change notification, a tombstone drop after a write); no request failed'),
    onMarkedRestored: (note) => logger.warn(note),
  });
  const developer = await resolveDeveloperCredentials(store, config.developerAccessKeyId, config.developerSecretAccessKey);
  if (developer.generated) {
    process.stderr.write(
      `cognisync generated developer credentials (stored in the database; shown only this once):\n` +
        `  COGNISYNC_ACCESS_KEY_ID=${developer.accessKeyId}\n  COGNISYNC_SECRET_ACCESS_KEY=${developer.secretAccessKey}\n`,
    );
  }
  const developerCredentials: SigningCredentials = {
    secretAccessKey: developer.secretAccessKey,
    principal: { kind: 'developer', accessKeyId: developer.accessKeyId },
  };
  // Shared through the store so that every process on one database accepts every other's tokens.
  const tokenSecret = await store.getOrCreateSetting('sync-session-token-secret', randomBytes(32).toString('base64'));

  const masterKey = loadMasterKey(config.dataDir, config.masterKey);
  const deriver = new CredentialDeriver(masterKey);
  // An issued key's secret and session token are HMACs of its id (pure), so they are computed once per key; the
  // database lookup still runs on every request, so deleted or expired credentials stop working at once.
  const derived = new Map<string, { secretKey: string; sessionToken: string }>();
  const credentials: CredentialLookup = async (accessKeyId) => {
    if (accessKeyId === developer.accessKeyId) return developerCredentials;
    const issued = await store.getIssuedCredentials(accessKeyId);
    if (!issued) return undefined;
    let secrets = derived.get(accessKeyId);
    if (!secrets) {
      if (derived.size >= 10_000) derived.delete(derived.keys().next().value!);
      secrets = deriver.derive(accessKeyId);
      derived.set(accessKeyId, secrets);
    }
    const { secretKey, sessionToken } = secrets;
    return {
      secretAccessKey: secretKey,
      sessionToken,
      expiration: issued.expiration,
      principal: { kind: 'identity', identityPoolId: issued.identityPoolId, identityId: issued.identityId, accessKeyId, poolSettings: issued.poolSettings },
    };
  };

  // Listen first: the OpenID issuer defaults to the URL we end up on (with --port 0 it is known only now).
  // Until setup finishes, requests get an AWS-shaped 503 (clients that reconnect to a fixed port may arrive
  // before the "listening" line); then the pipeline takes over.
  // Slow clients cannot pin connections: headers within 20 s, the whole request within 60 s (both configurable;
  // checked every 5 s or more often for shorter timeouts), 16 KiB of headers at most, idle keep-alive
  // connections closed after 5 s. (requestTimeout must not be below headersTimeout.)
  // A request without Host still reaches the pipeline, which answers it AWS-shaped (SigV4 needs a signed Host).
  const headersTimeout = config.headersTimeoutMs;
  const requestTimeout = Math.max(config.requestTimeoutMs, headersTimeout);
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let stopping = false;
  const policy = new HttpPolicy(config.corsOrigins);
  const server = createServer(
    {
      headersTimeout, requestTimeout, keepAliveTimeout: 5_000, connectionsCheckingInterval: Math.min(5_000, Math.ceil(headersTimeout / 4)), maxHeaderSize: 16 * 1024, requireHostHeader: false,
    },
    (req, res) => {
      // Once stopping, each answer closes its connection: node 20 keeps a busy keep-alive connection open after
      // server.close(), and it went on taking new requests until the grace period cut it mid-request.
      if (stopping) res.shouldKeepAlive = false;
      if (handle) handle(req, res);
      else answerNotReady(req, res, policy);
    },
  );
  await new Promise<void>((resolve, reject) => {
    // node's own message (`getaddrinfo ENOTFOUND x`, `listen EADDRINUSE`) names neither the setting nor, for a host
    // name, the port.
    server.once('error', (error) => reject(new Error(`cannot listen on ${config.host}:${config.port} (--host or HOST, --port or PORT): ${error.message}`, { cause: error })));
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  // The URL clients reach this server at: OpenID tokens' issuer, and where oversized stream changes are served.
  const publicUrl = config.publicUrl ?? `http://${host}:${address.port}`;
  const openIdTokens = await OpenIdTokens.load(store, masterKey, publicUrl);
  // Listening on every interface (as in a container), the address is no URL anyone else can reach the JWKS at.
  if (!config.publicUrl && (address.address === '0.0.0.0' || address.address === '::')) {
    logger.warn({ issuer: openIdTokens.issuer }, 'COGNISYNC_PUBLIC_URL is not set: OpenID tokens name this wildcard address as their issuer, which verifiers elsewhere cannot reach; set it to the URL clients use');
  }
  const kinesis = new KinesisDelivery({ region: config.region, timeoutMs: config.deliveryTimeoutMs, ...(config.kinesisEndpoint ? { endpoint: config.kinesisEndpoint } : {}) });
  const sns = new SnsDelivery({ region: config.region, timeoutMs: config.deliveryTimeoutMs, ...(config.snsEndpoint ? { endpoint: config.snsEndpoint } : {}) });
  const webPush = await WebPushDelivery.load(store, masterKey, config.vapidSubject, config.deliveryTimeoutMs, config.webPushHosts);
  const outboxWorker = new OutboxWorker(store, kinesis, sns, webPush, logger, { publicUrl });
  outboxWorker.start();
  const liveHub = new LiveHub();
  await liveHub.start(store);
  const liveStreams = new Set<ServerResponse>();
  const { limits } = config;
  const rateLimiter = new RateLimiter(
    { perSecond: limits.identityRequestsPerSecond, burst: limits.identityRequestBurst },
    { perSecond: limits.poolRequestsPerSecond, burst: limits.poolRequestBurst },
  );
  const metrics = config.metricsEnabled ? new Metrics(store, () => liveStreams.size) : undefined;
  // Malformed HTTP (overlong headers, bad framing) never reaches the listener: answer it AWS-shaped here.
  server.on('clientError', (error, socket) => writeClientError(error, socket));
  server.on('connect', (req, socket) => refuseConnect(req, socket));
  const syncTrigger = new SyncTriggerInvoker({
    region: config.region,
    ...(config.lambdaEndpoint ? { lambdaEndpoint: config.lambdaEndpoint } : {}),
    webhookSecret: config.webhookSecret ?? developer.secretAccessKey,
    timeoutMs: config.syncTriggerTimeoutMs,
  });
  handle = createRequestListener({
    store,
    logger,
    limits: config.limits,
    region: config.region,
    credentials,
    syncSessionTokens: new SyncSessionTokens(Buffer.from(tokenSecret, 'base64'), config.limits.syncSessionTokenTtlSeconds * 1000),
    identity: { openIdTokens, logins: new LoginVerifier(openIdTokens, config.oidcClientIds), credentials: deriver },
    integrations: { syncTrigger, outbox: outboxWorker, streams: kinesis, webPush },
    syncOperations,
    identityOperations,
    live: {
      store, hub: liveHub, credentials, signatureSkewSeconds: config.limits.signatureSkewSeconds, heartbeatMs: config.liveHeartbeatMs, open: liveStreams,
      rateLimiter, maxStreamsPerIdentity: config.limits.liveStreamsPerIdentity,
    },
    rateLimiter,
    metrics,
    policy,
    vapidPublicKey: webPush.publicKey,
  });
  // An Expect other than 100-continue is ignored (RFC 9110 allows it) instead of node's bare, non-AWS 417; and
  // 100 Continue is sent by readBody, only for a body it is going to read (not one it refuses by its length).
  server.on('checkExpectation', (req, res) => server.emit('request', req, res));
  server.on('checkContinue', (req, res) => server.emit('request', req, res));

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    server,
    close() {
      closing ??= (async () => {
        stopping = true;
        policy.closeConnections();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Live streams never finish by themselves: end them so the close can complete.
        for (const stream of liveStreams) stream.end();
        // A connection whose request was in flight goes idle once answered (its answer was already under way with
        // keep-alive): close those as they come, rather than waiting for their next request or the cut-off.
        server.closeIdleConnections();
        const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
        // In-flight requests get a grace period, then their connections are cut: after close() node no longer
        // applies the request timeout, so a client that stopped sending its body would hold the stop for good.
        const cutOff = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
        await closed;
        clearTimeout(cutOff);
        clearInterval(idleSweep);
        rateLimiter.stop();
        await outboxWorker.stop();
        await liveHub.stop();
        await Promise.all([kinesis.destroy(), sns.destroy(), syncTrigger.destroy()]);
        await store.close();
        clearInterval(logFlusher);
        // Wait for the batched request lines to reach stderr (the caller exits the process next), but not for a
        // stderr reader that has stopped reading.
        await new Promise<void>((resolve) => {
          setTimeout(resolve, 2000).unref();
          logger.flush(() => resolve());
        });
        process.off('exit', flushLogAtExit);
      })();
      return closing;
    },
  };
}

/** The 503 of a server still starting, with the same security, CORS and request-id headers as any answer (a browser reads it as a 503, not a CORS failure). */
function answerNotReady(req: IncomingMessage, res: ServerResponse, policy: HttpPolicy): void {
  const body = JSON.stringify({ __type: 'ServiceUnavailableException', message: 'cognisync is starting; retry shortly' });
  policy.apply(req, res, randomUUID());
  closeAfterAnswer(req, res);
  res.writeHead(503, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceUnavailableException', 'retry-after': '1' }).end(body);
}
