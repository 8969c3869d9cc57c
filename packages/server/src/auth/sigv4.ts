// SigV4 verification of incoming requests: parse the Authorization header, enforce scope, clock skew and
// payload hash, recompute the signature with @smithy/signature-v4 and compare in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  ExpiredTokenException, IncompleteSignatureException, InvalidSignatureException, MissingAuthenticationTokenException, UnrecognizedClientException,
} from '../errors.js';
import type { CredentialLookup, Principal } from './principal.js';

export interface SignedRequest {
  method: string;
  /** The request path exactly as received (still percent-encoded). */
  rawPath: string;
  /** Decoded query parameters, in order of appearance. */
  query: ReadonlyArray<readonly [string, string]>;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}

interface ParsedAuthorization {
  accessKeyId: string;
  scopeDate: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const sha256 = Hash.bind(null, 'sha256');

function parseAuthorization(value: string): ParsedAuthorization {
  if (!value.startsWith(`${ALGORITHM} `)) {
    throw new IncompleteSignatureException(`Authorization header requires the ${ALGORITHM} algorithm`);
  }
  const fields = new Map<string, string>();
  for (const part of value.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  for (const name of ['Credential', 'SignedHeaders', 'Signature']) {
    if (!fields.get(name)) throw new IncompleteSignatureException(`Authorization header requires '${name}' parameter. Authorization=${value.split(' ')[0]}`);
  }
  const credential = fields.get('Credential')!.split('/');
  if (credential.length !== 5 || credential[4] !== 'aws4_request' || credential.some((c) => c === '')) {
    throw new IncompleteSignatureException(`Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request, got '${fields.get('Credential')}'`);
  }
  const [accessKeyId, scopeDate, region, service] = credential as [string, string, string, string];
  return { accessKeyId, scopeDate, region, service, signedHeaders: fields.get('SignedHeaders')!.split(';'), signature: fields.get('Signature')! };
}

function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** X-Amz-Date (basic ISO-8601, `YYYYMMDDTHHMMSSZ`) to a Date. */
function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Verifies a request signed for `service` and returns its principal, or throws the AWS front-door error
 * (MissingAuthenticationToken, IncompleteSignature, InvalidSignature, UnrecognizedClient).
 */
export async function verifySignature(
  request: SignedRequest,
  service: string,
  lookup: CredentialLookup,
  now: Date,
  skewSeconds: number,
): Promise<Principal> {
  const authorization = headerValue(request.headers, 'authorization');
  if (!authorization) throw new MissingAuthenticationTokenException('Missing Authentication Token');
  const auth = parseAuthorization(authorization);
  if (auth.service !== service) throw new InvalidSignatureException(`Credential should be scoped to correct service: '${service}'.`);

  const amzDate = headerValue(request.headers, 'x-amz-date');
  if (!amzDate) throw new IncompleteSignatureException("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate) throw new IncompleteSignatureException(`X-Amz-Date '${amzDate}' is not in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'`);
  if (auth.scopeDate !== amzDate.slice(0, 8)) {
    throw new InvalidSignatureException(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.scopeDate}' != '${amzDate.slice(0, 8)}'`);
  }
  const skewMs = skewSeconds * 1000;
  if (signingDate.getTime() < now.getTime() - skewMs) {
    throw new InvalidSignatureException(`Signature expired: ${amzDate} is now earlier than ${formatAmzDate(new Date(now.getTime() - skewMs))} (${formatAmzDate(now)} - ${skewSeconds / 60} min.)`);
  }
  if (signingDate.getTime() > now.getTime() + skewMs) {
    throw new InvalidSignatureException(`Signature not yet current: ${amzDate} is still later than ${formatAmzDate(new Date(now.getTime() + skewMs))} (${formatAmzDate(now)} + ${skewSeconds / 60} min.)`);
  }
  if (!auth.signedHeaders.includes('host')) throw new InvalidSignatureException("'Host' must be a 'SignedHeader' in the AWS Authorization.");

  const credentials = await lookup(auth.accessKeyId);
  if (!credentials) throw new UnrecognizedClientException('The security token included in the request is invalid.');
  if (credentials.sessionToken !== undefined && headerValue(request.headers, 'x-amz-security-token') !== credentials.sessionToken) {
    throw new UnrecognizedClientException('The security token included in the request is invalid.');
  }
  if (credentials.expiration !== undefined && credentials.expiration <= now.getTime()) {
    throw new ExpiredTokenException('The security token included in the request is expired');
  }

  // The payload hash header, when sent, must describe the body we actually received.
  const bodyHash = createHash('sha256').update(request.body).digest('hex');
  const declaredHash = headerValue(request.headers, 'x-amz-content-sha256');
  if (declaredHash !== undefined && declaredHash !== 'UNSIGNED-PAYLOAD' && declaredHash !== bodyHash) {
    throw new InvalidSignatureException("The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = headerValue(request.headers, name);
    if (value === undefined) throw new InvalidSignatureException(`Signed header '${name}' is missing from the request.`);
    headers[name] = value;
  }
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of request.query) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  const signer = new SignatureV4({
    service,
    region: auth.region,
    sha256,
    applyChecksum: false,
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: credentials.secretAccessKey },
  });
  const signed = await signer.sign(
    new HttpRequest({ method: request.method, path: request.rawPath, query, headers, body: request.body, hostname: headers.host ?? '' }),
    { signingDate, signableHeaders: new Set(auth.signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]+)/.exec(String(signed.headers.authorization))?.[1] ?? '';
  const given = Buffer.from(auth.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) {
    throw new InvalidSignatureException(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
  return credentials.principal;
}

function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}
