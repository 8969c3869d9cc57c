// GET /admin/outbox: the delivery backlog (developer credentials only), so failing deliveries are visible.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CredentialLookup } from '../auth/principal.js';
import { verifySignature } from '../auth/sigv4.js';
import { NotAuthorizedException } from '../errors.js';
import { parseQuery } from '../protocol/request.js';
import type { Store } from '../store/store.js';

export const isAdminPath = (rawPath: string) => rawPath === '/admin/outbox';

export async function serveAdmin(req: IncomingMessage, res: ServerResponse, rawPath: string, rawQuery: string, store: Store, credentials: CredentialLookup, skewSeconds: number): Promise<void> {
  const request = { method: req.method ?? 'GET', rawPath, query: parseQuery(rawQuery), headers: req.headers, body: Buffer.alloc(0) };
  const principal = await verifySignature(request, 'cognito-sync', credentials, new Date(), skewSeconds);
  if (principal.kind !== 'developer') throw new NotAuthorizedException('The admin API needs developer credentials.');
  const backlog = await store.outboxBacklog();
  const body = JSON.stringify({
    pending: backlog.pending,
    oldestCreatedAt: backlog.oldestCreatedAt === undefined ? null : backlog.oldestCreatedAt / 1000,
    oldestAgeSeconds: backlog.oldestCreatedAt === undefined ? 0 : (Date.now() - backlog.oldestCreatedAt) / 1000,
  });
  res.writeHead(200, { 'content-type': 'application/json' }).end(body);
}
