// Building benchmark requests: Cognito Sync / Cognito Identity calls as raw HTTP requests, SigV4-signed with
// @smithy/signature-v4 — the signer the AWS SDK v3 itself uses, so cognisync verifies exactly what real
// clients send — ahead of the measurement, plus a small keep-alive HTTP client for setup calls.
import { Agent, request as httpRequest } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { WireRequest } from './types.ts';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type ServiceName = 'cognito-sync' | 'cognito-identity';

export interface CallSpec {
  service: ServiceName;
  method: string;
  /** Path as it goes on the wire (labels already percent-encoded). */
  path: string;
  query?: Record<string, string>;
  /** `X-Amz-Target` operation for Cognito Identity (`AWSCognitoIdentityService.<operation>`). */
  operation?: string;
  body?: unknown;
}

/** How a request is authenticated: really signed, or (for the baselines, which verify nothing) dummy headers of the same size. */
export type Signing = { credentials: Credentials } | 'dummy' | 'none';

const REGION = 'us-east-1';
const signers = new Map<string, SignatureV4>();

function signerFor(credentials: Credentials, service: ServiceName): SignatureV4 {
  const cacheKey = `${credentials.accessKeyId}/${service}`;
  let signer = signers.get(cacheKey);
  if (!signer) {
    signer = new SignatureV4({ service, region: REGION, sha256: Hash.bind(null, 'sha256'), credentials });
    signers.set(cacheKey, signer);
  }
  return signer;
}

export const encodeLabel = (value: string) => encodeURIComponent(value);

export function syncPath(identityPoolId: string, identityId: string, datasetName?: string, suffix = ''): string {
  const base = `/identitypools/${encodeLabel(identityPoolId)}/identities/${encodeLabel(identityId)}`;
  return datasetName === undefined ? base : `${base}/datasets/${encodeLabel(datasetName)}${suffix}`;
}

function queryString(query: Record<string, string> | undefined): string {
  if (!query) return '';
  const pairs = Object.entries(query).map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  return pairs.length ? `?${pairs.join('&')}` : '';
}

const DUMMY_SIGNATURE_HEADERS = {
  authorization: `AWS4-HMAC-SHA256 Credential=ASIA0000000000000000/20250101/us-east-1/cognito-sync/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=${'0'.repeat(64)}`,
  'x-amz-content-sha256': '0'.repeat(64),
  'x-amz-date': '20250101T000000Z',
  'x-amz-security-token': `CS1${'0'.repeat(43)}`,
};

/** A ready-to-send request for `host` (the signed Host header must be the one the server sees). */
export async function buildRequest(host: string, spec: CallSpec, signing: Signing): Promise<WireRequest> {
  const body = spec.body === undefined ? undefined : typeof spec.body === 'string' ? spec.body : JSON.stringify(spec.body);
  const headers: Record<string, string> = { host };
  if (spec.service === 'cognito-identity') {
    headers['content-type'] = 'application/x-amz-json-1.1';
    headers['x-amz-target'] = `AWSCognitoIdentityService.${spec.operation}`;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
  }
  const path = `${spec.path}${queryString(spec.query)}`;
  if (signing === 'none') return { method: spec.method, path, headers, ...(body === undefined ? {} : { body }) };
  if (signing === 'dummy') return { method: spec.method, path, headers: { ...headers, ...DUMMY_SIGNATURE_HEADERS }, ...(body === undefined ? {} : { body }) };
  const [hostname, port] = host.split(':');
  const signed = await signerFor(signing.credentials, spec.service).sign(
    new HttpRequest({ method: spec.method, protocol: 'http:', hostname, port: Number(port), path: spec.path, ...(spec.query ? { query: spec.query } : {}), headers, ...(body === undefined ? {} : { body }) }),
  );
  return { method: spec.method, path, headers: signed.headers as Record<string, string>, ...(body === undefined ? {} : { body }) };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/**
 * Sends one request to `url`'s host (setup traffic; never used while a load runs). A kept-alive socket the server
 * closed just as it was reused (its 5 s idle timeout) fails with ECONNRESET before anything was processed; such a
 * request is sent again once, on a new socket, as Node's documentation advises.
 */
export function send(url: string, wire: WireRequest, retried = false): Promise<HttpResult> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ agent, hostname, port, method: wire.method, path: wire.path, headers: wire.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (!retried && req.reusedSocket && error.code === 'ECONNRESET') send(url, wire, true).then(resolve, reject);
      else reject(error);
    });
    req.end(wire.body);
  });
}

/** Builds, sends and checks one setup call; throws with the response when it is not a 2xx. */
export async function call(url: string, spec: CallSpec, signing: Signing): Promise<any> {
  const host = new URL(url).host;
  const result = await send(url, await buildRequest(host, spec, signing));
  if (result.status < 200 || result.status > 299) throw new Error(`${spec.method} ${spec.path} ${spec.operation ?? ''} → ${result.status} ${result.text.slice(0, 500)}`);
  return result.json;
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function destroyAgent(): void {
  agent.destroy();
}
