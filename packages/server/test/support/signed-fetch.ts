// Sends raw, SigV4-signed HTTP requests (for wire cases the SDKs will not produce: bad JSON, odd paths, …).
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { developerCredentials } from './server-process.ts';

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export interface RawRequest {
  method: string;
  /** Path as it goes on the wire (already percent-encoded). */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Buffer;
  service?: 'cognito-sync' | 'cognito-identity';
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  signingDate?: Date;
  /** Skip signing entirely. */
  unsigned?: boolean;
  /** Change the request after signing (to test tampering). */
  tamper?: (request: { path: string; headers: Record<string, string>; body: string | Buffer | undefined }) => void;
}

export async function rawRequest(endpoint: string, request: RawRequest): Promise<RawResponse> {
  const url = new URL(endpoint);
  const headers: Record<string, string> = { host: url.host, ...(request.headers ?? {}) };
  let finalHeaders = headers;
  if (!request.unsigned) {
    const signer = new SignatureV4({
      service: request.service ?? 'cognito-sync',
      region: 'us-east-1',
      sha256: Hash.bind(null, 'sha256'),
      credentials: request.credentials ?? developerCredentials,
    });
    const signed = await signer.sign(
      new HttpRequest({ method: request.method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: request.path, query: request.query ?? {}, headers, body: request.body }),
      request.signingDate ? { signingDate: request.signingDate } : {},
    );
    finalHeaders = signed.headers as Record<string, string>;
  }
  const mutable = { path: request.path, headers: { ...finalHeaders }, body: request.body };
  request.tamper?.(mutable);
  const query = new URLSearchParams(request.query ?? {}).toString().replace(/\+/g, '%20');
  delete mutable.headers.host;
  const response = await fetch(`${endpoint}${mutable.path}${query ? `?${query}` : ''}`, {
    method: request.method,
    headers: mutable.headers,
    ...(mutable.body !== undefined ? { body: typeof mutable.body === 'string' ? mutable.body : new Uint8Array(mutable.body) } : {}),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}
