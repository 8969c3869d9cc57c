// Response headers every answer carries (security headers, optional CORS) and the CORS preflight.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Browser-facing hardening: the API serves JSON only, never frames or scripts. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const SECURITY_HEADER_ENTRIES = Object.entries(SECURITY_HEADERS);

const CORS_ALLOW_HEADERS = 'authorization, content-type, x-amz-date, x-amz-security-token, x-amz-target, x-amz-content-sha256, x-amz-client-context, x-amz-user-agent, amz-sdk-invocation-id, amz-sdk-request';
const CORS_EXPOSE_HEADERS = 'x-amzn-requestid, x-amzn-errortype, date';

export class HttpPolicy {
  /** `corsOrigins`: allowed origins, `*` for any; empty = CORS off (the default). */
  constructor(private readonly corsOrigins: readonly string[]) {}

  apply(req: IncomingMessage, res: ServerResponse): void {
    for (const [name, value] of SECURITY_HEADER_ENTRIES) res.setHeader(name, value);
    const origin = req.headers.origin;
    if (!origin || this.corsOrigins.length === 0) return;
    if (this.corsOrigins.includes('*') || this.corsOrigins.includes(origin)) {
      // Requests authenticate with SigV4 headers, never cookies: no Access-Control-Allow-Credentials.
      res.setHeader('access-control-allow-origin', this.corsOrigins.includes('*') ? '*' : origin);
      res.setHeader('vary', 'Origin');
      res.setHeader('access-control-expose-headers', CORS_EXPOSE_HEADERS);
    }
  }

  /** Answers a CORS preflight; false when the request is not one. */
  preflight(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'OPTIONS' || !req.headers['access-control-request-method']) return false;
    if (res.hasHeader('access-control-allow-origin')) {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
      res.setHeader('access-control-allow-headers', CORS_ALLOW_HEADERS);
      res.setHeader('access-control-max-age', '600');
    }
    res.writeHead(204).end();
    return true;
  }
}
