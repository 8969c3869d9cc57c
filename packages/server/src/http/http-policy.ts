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

const SECURITY_HEADER_LIST = Object.entries(SECURITY_HEADERS).flat();

const CORS_ALLOW_HEADERS = 'authorization, content-type, x-amz-date, x-amz-security-token, x-amz-target, x-amz-content-sha256, x-amz-client-context, x-amz-user-agent, amz-sdk-invocation-id, amz-sdk-request';
const CORS_EXPOSE_HEADERS = 'x-amzn-requestid, x-amzn-errortype, date';

export class HttpPolicy {
  /** `corsOrigins`: allowed origins, `*` for any; empty = CORS off (the default). */
  constructor(private readonly corsOrigins: readonly string[]) {}

  /** The CORS headers for this request's Origin (none when CORS is off or the origin is not allowed). */
  private corsHeaders(req: IncomingMessage): string[] | undefined {
    const origin = req.headers.origin;
    if (!origin || this.corsOrigins.length === 0) return undefined;
    if (!this.corsOrigins.includes('*') && !this.corsOrigins.includes(origin)) return undefined;
    // Requests authenticate with SigV4 headers, never cookies: no Access-Control-Allow-Credentials.
    return ['access-control-allow-origin', this.corsOrigins.includes('*') ? '*' : origin, 'vary', 'Origin', 'access-control-expose-headers', CORS_EXPOSE_HEADERS];
  }

  private closing = false;

  /**
   * From now on every API answer says `Connection: close`, also those of requests that arrived before the stop:
   * their answers had said keep-alive, and the client's next request on that connection was reset by the stop.
   */
  closeConnections(): void {
    this.closing = true;
  }

  /** Whether answers close their connection (see closeConnections); read when an answer is written. */
  get closingConnections(): boolean {
    return this.closing;
  }

  /** Sets the request id, the security headers and CORS on `res` (every answer but the API's; see headerList). */
  apply(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const list = this.headerList(req, requestId);
    for (let i = 0; i < list.length; i += 2) res.setHeader(list[i]!, list[i + 1]!);
  }

  /**
   * The same headers as a flat `[name, value, …]` list, which an API answer hands to writeHead with its own: no
   * setHeader calls, whose per-response header object cost a few µs per request.
   */
  headerList(req: IncomingMessage, requestId: string): string[] {
    const list = ['x-amzn-requestid', requestId, ...SECURITY_HEADER_LIST];
    const cors = this.corsHeaders(req);
    if (cors) list.push(...cors);
    return list;
  }

  /** Whether the request is a CORS preflight. */
  isPreflight(req: IncomingMessage): boolean {
    return req.method === 'OPTIONS' && Boolean(req.headers['access-control-request-method']);
  }

  /** Answers a CORS preflight (after apply); false when the request is not one. */
  preflight(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.isPreflight(req)) return false;
    if (res.hasHeader('access-control-allow-origin')) {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
      res.setHeader('access-control-allow-headers', CORS_ALLOW_HEADERS);
      res.setHeader('access-control-max-age', '600');
    }
    res.writeHead(204).end();
    return true;
  }
}
