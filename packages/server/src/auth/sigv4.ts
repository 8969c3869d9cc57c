// SigV4 verification of incoming requests: parse the Authorization header, enforce scope, clock skew and
// payload hash, recompute the signature and compare in constant time. Header-signed requests (every API call)
// are recomputed with node:crypto and a cache of derived signing keys, reproducing @smithy/signature-v4's
// canonical form exactly (sigv4.test.ts checks the two agree); pre-signed URLs (one per live-stream
// connection) still go through @smithy/signature-v4.
import * as crypto from 'node:crypto';
import { createHmac, createSecretKey, timingSafeEqual, type BinaryLike, type KeyObject } from 'node:crypto';
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

const ALGORITHM = 'AWS4-HMAC-SHA256';
const sha256 = Hash.bind(null, 'sha256');

/** Hex SHA-256: node:crypto's one-shot hash() where it exists (Node 20.12+; half the cost of a Hash object). */
const sha256Hex: (data: BinaryLike) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'hex') : (data) => crypto.createHash('sha256').update(data).digest('hex');

/** The payload hash of every GET and DELETE. */
const EMPTY_BODY_SHA256 = sha256Hex('');

/** `keyid/date/region/service/aws4_request`, from the Authorization header or X-Amz-Credential. */
function parseCredential(value: string): Credential {
  const credential = value.split('/');
  if (credential.length !== 5 || credential[4] !== 'aws4_request' || credential.some((c) => c === '')) {
    throw new IncompleteSignatureException(`Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request, got '${value}'`);
  }
  return credential as unknown as Credential;
}

type Credential = readonly [accessKeyId: string, scopeDate: string, region: string, service: string, terminator: string];

/**
 * The parts of a signature. Built as one literal with every field, never by spreading: a spread followed by more
 * fields takes V8's slow path (a new hidden class each time), which cost several µs per request.
 */
function signatureParts(credential: Credential, signedHeaders: string, signature: string, amzDate: string | undefined, sessionToken: string | undefined): SignatureParts {
  return { accessKeyId: credential[0], scopeDate: credential[1], region: credential[2], service: credential[3], signedHeaders: signedHeaders.split(';'), signature, amzDate, sessionToken };
}

/** The header exactly as the SDKs write it; anything else takes the general parse below. */
const CANONICAL_AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([^,\s]+), ?Signature=([^,\s]+)$/;

/** The Authorization header's Credential, SignedHeaders and Signature. */
function parseAuthorization(value: string): [credential: string, signedHeaders: string, signature: string] {
  const m = CANONICAL_AUTHORIZATION.exec(value);
  if (m) return [m[1]!, m[2]!, m[3]!];
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
  return [fields.get('Credential')!, fields.get('SignedHeaders')!, fields.get('Signature')!];
}

/** A header's value; undefined for anything else, such as a name the caller chose that is an Object.prototype member (`constructor`, `__proto__`). */
function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : undefined;
}

/** X-Amz-Date (basic ISO-8601, `YYYYMMDDTHHMMSSZ`) to a Date. */
function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

interface SignatureParts {
  accessKeyId: string;
  scopeDate: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string | undefined;
  sessionToken: string | undefined;
}

/** The checks both forms of SigV4 share: scope, date window, credentials, session token, expiry. */
async function checkSignatureParts(parts: SignatureParts, service: string, lookup: CredentialLookup, now: Date, skewSeconds: number) {
  if (parts.service !== service) throw new InvalidSignatureException(`Credential should be scoped to correct service: '${service}'.`);
  const { amzDate } = parts;
  // AWS's message names a 'Date' header too, which cognisync does not take as the signing date (no SDK or CLI signs
  // with one): said here, a client would add one and still be refused.
  if (!amzDate) throw new IncompleteSignatureException("Authorization header requires existence of a 'X-Amz-Date' header.");
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate) throw new IncompleteSignatureException(`X-Amz-Date '${amzDate}' is not in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'`);
  if (parts.scopeDate !== amzDate.slice(0, 8)) {
    throw new InvalidSignatureException(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${parts.scopeDate}' != '${amzDate.slice(0, 8)}'`);
  }
  const skewMs = skewSeconds * 1000;
  if (signingDate.getTime() > now.getTime() + skewMs) {
    throw new InvalidSignatureException(`Signature not yet current: ${amzDate} is still later than ${formatAmzDate(new Date(now.getTime() + skewMs))} (${formatAmzDate(now)} + ${skewSeconds / 60} min.)`);
  }
  if (!parts.signedHeaders.includes('host')) throw new InvalidSignatureException("'Host' must be a 'SignedHeader' in the AWS Authorization.");
  const credentials = await lookup(parts.accessKeyId);
  if (!credentials) throw new UnrecognizedClientException('The security token included in the request is invalid.');
  // Temporary credentials need their own token; long-term ones (the developer's) take none, as AWS refuses any.
  if (parts.sessionToken !== credentials.sessionToken) {
    throw new UnrecognizedClientException('The security token included in the request is invalid.');
  }
  if (credentials.expiration !== undefined && credentials.expiration <= now.getTime()) {
    throw new ExpiredTokenException('The security token included in the request is expired');
  }
  return { credentials, signingDate, skewMs };
}

function signedHeaderValues(request: SignedRequest, names: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of names) {
    const value = headerValue(request.headers, name);
    if (value === undefined) throw new InvalidSignatureException(`Signed header '${name}' is missing from the request.`);
    headers[name] = value;
  }
  return headers;
}

function queryObject(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of pairs) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return query;
}

/** RFC 3986's unreserved characters: what SigV4 leaves unescaped. */
const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;

/** encodeURIComponent plus the characters RFC 3986 reserves that it leaves alone, as SigV4 (and smithy's escapeUri) encode them. */
function escapeUri(value: string): string {
  // Most names and values need no escape (encodeURIComponent is a C++ builtin, dear on every query parameter).
  if (UNRESERVED.test(value)) return value;
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * A path with nothing to normalize (no empty, `.` or `..` segment, no trailing slash) made of unreserved
 * characters and percent-escapes, as the SDKs send every Cognito Sync path: encoding it once more only turns
 * each `%` into `%25`.
 */
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9\-._~%]+)+$/;

/** The canonical URI: dot segments and empty segments removed, then the (already encoded) path encoded once more. */
function canonicalPath(path: string): string {
  if (PLAIN_PATH.test(path)) return path.includes('%') ? path.replaceAll('%', '%25') : path;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return escapeUri(normalized).replace(/%2F/g, '/');
}

/** The canonical query string: encoded names sorted; repeated names list their encoded pairs sorted. */
function canonicalQuery(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length === 0) return '';
  if (pairs.length === 1) {
    const [key, value] = pairs[0]!;
    return key.toLowerCase() === 'x-amz-signature' ? '' : `${escapeUri(key)}=${escapeUri(value)}`;
  }
  const byName = new Map<string, string[]>();
  for (const [key, value] of pairs) {
    if (key.toLowerCase() === 'x-amz-signature') continue;
    const encodedKey = escapeUri(key);
    const encoded = `${encodedKey}=${escapeUri(value)}`;
    const existing = byName.get(encodedKey);
    if (existing) existing.push(encoded);
    else byName.set(encodedKey, [encoded]);
  }
  return [...byName.keys()]
    .sort()
    .map((key) => {
      const encoded = byName.get(key)!;
      return encoded.length === 1 ? encoded[0]! : encoded.sort().join('&');
    })
    .join('&');
}

/** Line breaks, tabs and runs of spaces become one space, and the value is trimmed; most values have none. */
const canonicalHeaderValue = (value: string) =>
  /[\r\n\t]| {2}|^ | $/.test(value) ? value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '') : value;

interface SigningKey {
  shortDate: string;
  region: string;
  service: string;
  key: KeyObject;
}

/**
 * Derived signing keys by secret, then date, region and service: four HMACs saved on every request after the first
 * of the day. Kept as KeyObjects, which an HMAC takes without preparing the key again (about 30 % cheaper). Keyed by
 * the secret alone, the same string on each request, whose hash V8 keeps: a key joined from all four parts was a
 * new string to hash every time. A secret keeps a few scopes (both services, a day's change), newest first.
 */
const signingKeys = new Map<string, SigningKey[]>();
const MAX_SIGNING_SECRETS = 4096;
const MAX_SCOPES_PER_SECRET = 4;

function signingKey(secretAccessKey: string, shortDate: string, region: string, service: string): KeyObject {
  let scopes = signingKeys.get(secretAccessKey);
  if (scopes) {
    for (const scope of scopes) if (scope.shortDate === shortDate && scope.region === region && scope.service === service) return scope.key;
  } else {
    // Oldest first out: a Map iterates in insertion order.
    if (signingKeys.size >= MAX_SIGNING_SECRETS) signingKeys.delete(signingKeys.keys().next().value!);
    scopes = [];
    signingKeys.set(secretAccessKey, scopes);
  }
  let derived = createHmac('sha256', `AWS4${secretAccessKey}`).update(shortDate).digest();
  for (const part of [region, service, 'aws4_request']) derived = createHmac('sha256', derived).update(part).digest();
  const key = createSecretKey(derived);
  scopes.unshift({ shortDate, region, service, key });
  if (scopes.length > MAX_SCOPES_PER_SECRET) scopes.pop();
  return key;
}

/**
 * Whether a SignedHeaders list is exactly what the signer's own would be: sorted, each name once, x-amz-date in it,
 * and neither of the headers the signer generates and leaves out (authorization, date). The SDKs' always is.
 */
function isSignerList(names: readonly string[]): boolean {
  let hasDate = false;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if ((i > 0 && !(names[i - 1]! < name)) || name === 'authorization' || name === 'date') return false;
    if (name === 'x-amz-date') hasDate = true;
  }
  return hasDate;
}

/**
 * The signature of a header-signed request, computed as @smithy/signature-v4's `sign` does for it: the
 * generated headers (authorization, date) leave the signed set, x-amz-date joins it, and a signed
 * x-amz-content-sha256 stands in for the payload hash.
 */
let lastAmzDate: string | undefined;
let lastLongDate = '';

function headerSignature(request: SignedRequest, parts: SignatureParts, service: string, secretAccessKey: string, signingDate: Date, bodyHash: string): string {
  // The date as the signer re-formats it (the same text, unless a field overflowed and Date normalized it);
  // requests of the same second share it.
  if (parts.amzDate !== lastAmzDate) {
    lastAmzDate = parts.amzDate;
    lastLongDate = formatAmzDate(signingDate);
  }
  const longDate = lastLongDate;
  const shortDate = longDate.slice(0, 8);
  let names: readonly string[] = parts.signedHeaders;
  let payloadHash = bodyHash;
  let canonicalHeaders = '';
  if (isSignerList(names)) {
    // As the SDKs send it, the list is already the signer's: each value is read straight from the request.
    for (const name of names) {
      const value = name === 'x-amz-date' ? longDate : headerValue(request.headers, name);
      if (value === undefined) throw new InvalidSignatureException(`Signed header '${name}' is missing from the request.`);
      if (name === 'x-amz-content-sha256') payloadHash = value;
      canonicalHeaders += `${name}:${canonicalHeaderValue(value)}\n`;
    }
  } else {
    const headers = signedHeaderValues(request, names);
    delete headers.authorization;
    delete headers.date;
    headers['x-amz-date'] = longDate;
    names = Object.keys(headers).sort();
    payloadHash = headers['x-amz-content-sha256'] ?? bodyHash;
    for (const name of names) canonicalHeaders += `${name}:${canonicalHeaderValue(headers[name]!)}\n`;
  }
  const canonicalRequest = `${request.method}\n${canonicalPath(request.rawPath)}\n${canonicalQuery(request.query)}\n${canonicalHeaders}\n${names.join(';')}\n${payloadHash}`;
  const scope = `${shortDate}/${parts.region}/${service}/aws4_request`;
  const stringToSign = `${ALGORITHM}\n${longDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  return createHmac('sha256', signingKey(secretAccessKey, shortDate, parts.region, service)).update(stringToSign).digest('hex');
}

function signerFor(service: string, parts: SignatureParts, secretAccessKey: string): SignatureV4 {
  return new SignatureV4({ service, region: parts.region, sha256, applyChecksum: false, credentials: { accessKeyId: parts.accessKeyId, secretAccessKey } });
}

function compareSignatures(given: string, expected: string): void {
  const givenBytes = Buffer.from(given);
  if (givenBytes.length !== expected.length || !timingSafeEqual(givenBytes, Buffer.from(expected))) {
    throw new InvalidSignatureException(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
}

/** Whether a request carries query-string (pre-signed URL) authentication. */
export function isPresigned(request: SignedRequest): boolean {
  return request.query.some(([key]) => key === 'X-Amz-Signature');
}

/**
 * Verifies a request signed for `service` — with an Authorization header, or as a pre-signed URL — and
 * returns its principal, or throws the AWS front-door error (MissingAuthenticationToken, IncompleteSignature,
 * InvalidSignature, UnrecognizedClient, ExpiredToken).
 */
export async function verifySignature(
  request: SignedRequest,
  service: string,
  lookup: CredentialLookup,
  now: Date,
  skewSeconds: number,
): Promise<Principal> {
  if (isPresigned(request) && !headerValue(request.headers, 'authorization')) return verifyPresigned(request, service, lookup, now, skewSeconds);
  const authorization = headerValue(request.headers, 'authorization');
  if (!authorization) throw new MissingAuthenticationTokenException('Missing Authentication Token');
  const [credential, signedHeaders, signature] = parseAuthorization(authorization);
  const parts = signatureParts(parseCredential(credential), signedHeaders, signature, headerValue(request.headers, 'x-amz-date'), headerValue(request.headers, 'x-amz-security-token'));
  const { credentials, signingDate, skewMs } = await checkSignatureParts(parts, service, lookup, now, skewSeconds);
  if (signingDate.getTime() < now.getTime() - skewMs) {
    throw new InvalidSignatureException(`Signature expired: ${parts.amzDate} is now earlier than ${formatAmzDate(new Date(now.getTime() - skewMs))} (${formatAmzDate(now)} - ${skewSeconds / 60} min.)`);
  }

  // The payload hash header, when sent, must describe the body we actually received. UNSIGNED-PAYLOAD (S3's way
  // of leaving a body out of the signature) is taken only without a body: a signed request's body cannot be
  // swapped by whoever captured it. No AWS SDK or CLI sends it to Cognito.
  const bodyHash = request.body.length === 0 ? EMPTY_BODY_SHA256 : sha256Hex(request.body);
  const declaredHash = headerValue(request.headers, 'x-amz-content-sha256');
  if (declaredHash === 'UNSIGNED-PAYLOAD' ? request.body.length > 0 : declaredHash !== undefined && declaredHash !== bodyHash) {
    throw new InvalidSignatureException(
      declaredHash === 'UNSIGNED-PAYLOAD' ? "'x-amz-content-sha256: UNSIGNED-PAYLOAD' is not accepted with a body: the body must be signed." : "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }

  compareSignatures(parts.signature, headerSignature(request, parts, service, credentials.secretAccessKey, signingDate, bodyHash));
  return credentials.principal;
}

/** The query parameters a pre-signed URL adds (all but the session token are recomputed by the signer). */
const PRESIGN_PARAMETERS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];
const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;

/**
 * Query-string SigV4 (a pre-signed URL, as browsers' EventSource/WebSocket need): the same checks, with
 * X-Amz-Expires bounding the URL's life instead of the ±15 min window, and an empty payload.
 */
async function verifyPresigned(request: SignedRequest, service: string, lookup: CredentialLookup, now: Date, skewSeconds: number): Promise<Principal> {
  // A pre-signed URL signs no body (its payload hash is the empty one) and only the headers it names, so it is
  // accepted only where there is nothing else to sign: a GET without a body. Elsewhere it would let whoever holds
  // the URL send any body (or, on Cognito Identity's POST /, any X-Amz-Target) for as long as it is valid.
  if (request.method !== 'GET' || request.body.length > 0) {
    throw new InvalidSignatureException('Query-string (pre-signed URL) authentication is accepted only on GET requests without a body; sign this request with an Authorization header.');
  }
  const param = (name: string) => request.query.find(([key]) => key === name)?.[1];
  for (const name of PRESIGN_PARAMETERS) {
    if (!param(name)) throw new IncompleteSignatureException(`AWS query-string parameters must include '${name}'.`);
  }
  if (param('X-Amz-Algorithm') !== ALGORITHM) throw new IncompleteSignatureException(`X-Amz-Algorithm only supports '${ALGORITHM}'.`);
  const expires = Number(param('X-Amz-Expires'));
  if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGNED_SECONDS) {
    throw new IncompleteSignatureException(`X-Amz-Expires must be a whole number of seconds from 1 to ${MAX_PRESIGNED_SECONDS}.`);
  }
  const parts = signatureParts(parseCredential(param('X-Amz-Credential')!), param('X-Amz-SignedHeaders')!, param('X-Amz-Signature')!, param('X-Amz-Date'), param('X-Amz-Security-Token'));
  const { credentials, signingDate } = await checkSignatureParts(parts, service, lookup, now, skewSeconds);
  // X-Amz-Expires is the URL's whole life: the clock-skew allowance applies to its start only (a signer whose
  // clock runs ahead), not on top of its end.
  if (signingDate.getTime() + expires * 1000 < now.getTime()) {
    throw new InvalidSignatureException(`Signature expired: the pre-signed URL from ${parts.amzDate} was valid for ${expires} seconds.`);
  }
  const headers = signedHeaderValues(request, parts.signedHeaders);
  const query = queryObject(request.query.filter(([key]) => !PRESIGN_PARAMETERS.includes(key)));
  const presigned = await signerFor(service, parts, credentials.secretAccessKey).presign(
    new HttpRequest({ method: request.method, path: request.rawPath, query, headers, hostname: headers.host ?? '' }),
    { signingDate, expiresIn: expires, signableHeaders: new Set(parts.signedHeaders) },
  );
  compareSignatures(parts.signature, String(presigned.query?.['X-Amz-Signature'] ?? ''));
  return credentials.principal;
}

function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}
