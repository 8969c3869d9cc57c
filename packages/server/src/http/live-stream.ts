// GET /live/identitypools/{IdentityPoolId}/identities/{IdentityId}: Server-Sent Events, one JSON event per
// committed change of that identity's datasets. Authorized like every request (SigV4 header or pre-signed
// URL, since EventSource cannot send headers): identity credentials see only their own identity.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, type CredentialLookup, type SigningCredentials } from '../auth/principal.js';
import { verifySignature } from '../auth/sigv4.js';
import { LimitExceededException, ResourceNotFoundException } from '../errors.js';
import type { RateLimiter } from './rate-limiter.js';
import type { LiveHub } from '../live/live-hub.js';
import { decodeComponent, parseQuery } from '../protocol/request.js';
import { validateInput } from '../protocol/validate.js';
import { cognitoSyncOperations } from '../model/cognito-sync.generated.js';
import type { Store } from '../store/store.js';

const LIVE_PATH = /^\/live\/identitypools\/([^/]+)\/identities\/([^/]+)\/?$/;

export interface LiveStreamDependencies {
  store: Store;
  hub: LiveHub;
  credentials: CredentialLookup;
  signatureSkewSeconds: number;
  heartbeatMs: number;
  /** Open streams, so shutdown can end them (an open stream would otherwise keep the server from closing). */
  open: Set<ServerResponse>;
  /** Opening a stream counts against the identity's request rate, as an API call does. */
  rateLimiter: RateLimiter;
  /** Streams one identity may hold open in this process at once (tabs and devices; each holds a socket). */
  maxStreamsPerIdentity: number;
}

/** A stream whose client has stopped reading is ended once this much waits to be sent; it reconnects and resyncs. */
const MAX_UNSENT_BYTES = 1024 * 1024;

/**
 * How old the last check of a stream's credentials may be when an event is sent. A stream outlives the request that
 * opened it, and credentials must stop working at once (decisions.md): they are read again before an event goes out
 * (at most once a second) and at every heartbeat, and the stream ends once they are gone (DeleteIdentities, the
 * pool deleted, the identity's last login unlinked) or expired.
 */
const CREDENTIALS_RECHECK_MS = 1000;

export const isLivePath = (rawPath: string) => LIVE_PATH.test(rawPath);

/** Answers the live stream, or throws a ServiceError for the caller to write (before any byte is sent). */
export async function serveLiveStream(req: IncomingMessage, res: ServerResponse, rawPath: string, rawQuery: string, deps: LiveStreamDependencies): Promise<void> {
  const [, rawPool, rawIdentity] = LIVE_PATH.exec(rawPath)!;
  const request = { method: req.method ?? 'GET', rawPath, query: parseQuery(rawQuery), headers: req.headers, body: Buffer.alloc(0) };
  // The credentials the signature was checked against, kept for their expiry (below) without reading them again.
  let signedWith: SigningCredentials | undefined;
  const lookup: CredentialLookup = async (accessKeyId) => (signedWith = await deps.credentials(accessKeyId));
  const principal = await verifySignature(request, 'cognito-sync', lookup, new Date(), deps.signatureSkewSeconds);
  const input = { IdentityPoolId: decodeComponent(rawPool!, 'path'), IdentityId: decodeComponent(rawIdentity!, 'path') };
  authorize('LiveStream', ['identity', 'developer'], principal, input);
  // The same constraints as DescribeIdentityUsage's path members.
  validateInput(cognitoSyncOperations.DescribeIdentityUsage.input, input);
  if (principal.kind === 'identity') deps.rateLimiter.check(input.IdentityPoolId, input.IdentityId);
  if (!(await deps.store.getIdentityPool(input.IdentityPoolId))) throw new ResourceNotFoundException(`IdentityPool '${input.IdentityPoolId}' not found.`);
  const opened = deps.hub.listening(input.IdentityPoolId, input.IdentityId);
  if (opened >= deps.maxStreamsPerIdentity) {
    throw new LimitExceededException(`Identity ${input.IdentityId} already has ${opened} live streams open; the limit is ${deps.maxStreamsPerIdentity}.`);
  }

  // Headers and a first comment go out at once, so clients know the stream is open before any change.
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': connected\n\n');
  req.socket.setNoDelay(true);
  req.socket.setTimeout(0);
  // Events and checks go out in order, one after the other.
  let queue = Promise.resolve();
  let checkedAt = Date.now();
  const stillValid = async () => {
    const credentials = await deps.credentials(principal.accessKeyId).catch(() => signedWith);
    checkedAt = Date.now();
    return credentials !== undefined && (credentials.expiration === undefined || credentials.expiration > checkedAt);
  };
  const send = (check: boolean, text: string) => {
    queue = queue.then(async () => {
      if (res.writableEnded || res.destroyed) return;
      if ((check || Date.now() - checkedAt >= CREDENTIALS_RECHECK_MS) && !(await stillValid())) return void res.end();
      res.write(text);
    });
  };
  const unsubscribe = deps.hub.subscribe(input.IdentityPoolId, input.IdentityId, (event) => {
    if (res.writableLength > MAX_UNSENT_BYTES) {
      res.destroy();
      return;
    }
    send(false, `id: ${event.syncCount}\ndata: ${JSON.stringify({ identityPoolId: event.identityPoolId, identityId: event.identityId, datasetName: event.datasetName, syncCount: event.syncCount, deviceId: event.deviceId ?? null })}\n\n`);
  }, () => res.end());
  const heartbeat = setInterval(() => send(true, ': keep-alive\n\n'), deps.heartbeatMs);
  // Temporary credentials end the stream when they expire, heartbeat or not.
  const expiry = signedWith?.expiration === undefined ? undefined : setTimeout(() => res.end(), Math.min(Math.max(signedWith.expiration - Date.now(), 0), 2_147_483_647));
  deps.open.add(res);
  const close = () => {
    clearInterval(heartbeat);
    clearTimeout(expiry);
    unsubscribe();
    deps.open.delete(res);
  };
  res.once('close', close);
  req.once('close', close);
}
