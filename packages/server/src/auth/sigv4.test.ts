// SigV4 verification against the signer the AWS SDKs use: every request @smithy/signature-v4 signs (odd paths,
// repeated and escaped query parameters, messy header values, payload-hash variants, session tokens) verifies,
// a signature smithy computes for unusual signed-header lists verifies exactly as before, and any change to
// what was signed is refused with AWS's message.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { CredentialLookup } from './principal.js';
import { verifySignature, type SignedRequest } from './sigv4.js';

const NOW = new Date('2025-03-04T05:06:07Z');
const credentials = { accessKeyId: 'ASIATESTTESTTESTTEST', secretAccessKey: 'secret/with+odd=chars', sessionToken: 'CS1session-token' };
const lookup: CredentialLookup = async (accessKeyId) =>
  accessKeyId === credentials.accessKeyId
    ? { secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken, principal: { kind: 'developer', accessKeyId } }
    : undefined;
const mismatch = {
  name: 'InvalidSignatureException',
  message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
};

interface Case {
  method: string;
  /** As on the wire (already percent-encoded). */
  path: string;
  query?: Array<[string, string]>;
  headers?: Record<string, string>;
  body?: string;
}

/** Signs `c` as an AWS SDK client does, and returns it as the server receives it. */
async function signed(c: Case, options: { applyChecksum?: boolean; service?: string; region?: string } = {}): Promise<SignedRequest> {
  const signer = new SignatureV4({ service: options.service ?? 'cognito-sync', region: options.region ?? 'eu-west-1', sha256: Hash.bind(null, 'sha256'), credentials, applyChecksum: options.applyChecksum ?? true });
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of c.query ?? []) {
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  const request = await signer.sign(
    new HttpRequest({ method: c.method, hostname: '127.0.0.1', port: 8080, path: c.path, query, headers: { host: '127.0.0.1:8080', ...c.headers }, ...(c.body === undefined ? {} : { body: c.body }) }),
    { signingDate: NOW },
  );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  return { method: c.method, rawPath: c.path, query: c.query ?? [], headers, body: Buffer.from(c.body ?? '') };
}

const verify = (request: SignedRequest, service = 'cognito-sync') => verifySignature(request, service, lookup, NOW, 900);

const cases: Record<string, Case> = {
  'UpdateRecords with a JSON body': {
    method: 'POST',
    path: '/identitypools/us-east-1%3A0000/identities/us-east-1%3A1111/datasets/settings',
    headers: { 'content-type': 'application/json', 'x-amz-user-agent': 'aws-sdk-js/3' },
    body: '{"SyncSessionToken":"t","RecordPatches":[{"Op":"replace","Key":"k","Value":"ü €","SyncCount":0}]}',
  },
  'ListRecords with query parameters': {
    method: 'GET',
    path: '/identitypools/us-east-1%3A0000/identities/us-east-1%3A1111/datasets/a.b_c-d%3Ae/records',
    query: [['maxResults', '10'], ['lastSyncCount', '3'], ['nextToken', 'eyJjIjoxfQ=='], ['syncSessionToken', 'a b+c/d*e(f)!\'~']],
  },
  'repeated and empty query parameters, odd names': {
    method: 'GET',
    path: '/identitypools/p/identities/i/datasets',
    query: [['b', '2'], ['a', 'z'], ['a', 'y'], ['a', ''], ['x y', '1'], ['Ä', 'ö']],
  },
  'one query parameter to escape': { method: 'GET', path: '/identitypools/p/identities/i/datasets', query: [['nextToken', 'a b+c/d*e(f)!\'~=']] },
  'one query parameter, nothing to escape': { method: 'GET', path: '/identitypools/p/identities/i/datasets', query: [['maxResults', '10']] },
  'dot segments, double slashes and a trailing slash': { method: 'GET', path: '/identitypools/p/./identities//i/../i/datasets/', query: [['q', '1']] },
  'messy header values and unsignable headers in the signed list': {
    method: 'POST',
    path: '/',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.GetId', 'x-custom': '  a \t b  \t  c ', 'user-agent': 'agent/1.0' },
    body: '{}',
  },
  'an empty body': { method: 'DELETE', path: '/identitypools/p/identities/i/datasets/d', body: '' },
  // Paths beside the plain-path shortcut (canonicalPath): dots that are not dot segments, a lone trailing dot
  // segment, an escaped slash, and characters the SDKs would have escaped.
  'dots inside segments': { method: 'GET', path: '/identitypools/p/identities/i/datasets/.a/..b/.../c./records' },
  'a trailing dot segment': { method: 'GET', path: '/identitypools/p/identities/i/datasets/d/..' },
  'an escaped slash and unescaped reserved characters': { method: 'GET', path: "/identitypools/p%2Fq/identities/i:j/datasets/a!b'c(d)e*f@g+h,i;j=k" },
};

describe('verifySignature (header-signed requests)', () => {
  for (const [name, c] of Object.entries(cases)) {
    test(`accepts what @smithy/signature-v4 signs: ${name}`, async () => {
      const service = c.path === '/' ? 'cognito-identity' : 'cognito-sync';
      for (const applyChecksum of [true, false]) {
        const principal = await verify(await signed(c, { applyChecksum, service }), service);
        assert.deepEqual(principal, { kind: 'developer', accessKeyId: credentials.accessKeyId });
      }
    });
  }

  test('UNSIGNED-PAYLOAD: accepted without a body, refused with one (the body could be swapped)', async () => {
    const get = await signed({ ...cases['ListRecords with query parameters']!, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    await verify(get);
    const post = await signed({ ...cases['UpdateRecords with a JSON body']!, headers: { 'content-type': 'application/json', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    for (const body of [post.body, Buffer.from('{"something":"else"}')]) {
      await assert.rejects(verify({ ...post, body }), { name: 'InvalidSignatureException', message: /UNSIGNED-PAYLOAD.*body must be signed/ });
    }
  });

  test("a signed header named like an Object.prototype member is missing, not read from the prototype", async () => {
    const request = await signed(cases['ListRecords with query parameters']!);
    for (const name of ['constructor', '__proto__', 'hasOwnProperty']) {
      const authorization = (request.headers.authorization as string).replace('SignedHeaders=', `SignedHeaders=${name};`);
      await assert.rejects(verify({ ...request, headers: { ...request.headers, authorization } }), { name: 'InvalidSignatureException', message: `Signed header '${name}' is missing from the request.` });
    }
  });

  test('one secret signing for more scopes than its derived keys are kept for: each verifies, a wrong one still fails', async () => {
    const list = cases['ListRecords with query parameters']!;
    const scopes = ['eu-west-1', 'us-east-1', 'ap-south-1'].flatMap((region) => ['cognito-sync', 'cognito-identity'].map((service) => ({ region, service })));
    for (let round = 0; round < 2; round++) {
      for (const { region, service } of scopes) {
        const request = await signed(list, { region, service });
        await verify(request, service);
        await assert.rejects(verify(request, service === 'cognito-sync' ? 'cognito-identity' : 'cognito-sync'), { name: 'InvalidSignatureException' });
        const signature = /Signature=([0-9a-f]+)/.exec(request.headers.authorization as string)![1]!;
        const other = signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
        await assert.rejects(verify({ ...request, headers: { ...request.headers, authorization: (request.headers.authorization as string).replace(signature, other) } }, service), mismatch);
      }
    }
  });

  test('refuses a changed path, query, signed header, body or secret', async () => {
    const update = await signed(cases['UpdateRecords with a JSON body']!, { applyChecksum: false });
    const list = await signed(cases['ListRecords with query parameters']!);
    await assert.rejects(verify({ ...update, rawPath: update.rawPath.replace('settings', 'other') }), mismatch);
    await assert.rejects(verify({ ...update, body: Buffer.from(update.body.toString().replace('"k"', '"j"')) }), mismatch);
    await assert.rejects(verify({ ...update, headers: { ...update.headers, 'content-type': 'text/plain' } }), mismatch);
    await assert.rejects(verify({ ...list, query: list.query.map(([k, v]) => [k, k === 'maxResults' ? '11' : v] as [string, string]) }), mismatch);
    await assert.rejects(verify({ ...list, query: [...list.query, ['extra', '1']] }), mismatch);
    const otherSecret = await verifySignature(list, 'cognito-sync', async () => ({ secretAccessKey: 'another', sessionToken: credentials.sessionToken, principal: { kind: 'developer', accessKeyId: 'x' } }), NOW, 900).then(
      () => 'accepted',
      (error: Error) => error.name,
    );
    assert.equal(otherSecret, 'InvalidSignatureException');
  });

  test('a payload hash header that does not describe the body is refused', async () => {
    const request = await signed(cases['UpdateRecords with a JSON body']!);
    await assert.rejects(verify({ ...request, body: Buffer.from('{}') }), {
      name: 'InvalidSignatureException',
      message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
    });
  });

  test('a signed header missing from the request is named', async () => {
    const request = await signed(cases['ListRecords with query parameters']!);
    const authorization = request.headers.authorization as string;
    const headers = { ...request.headers, authorization: authorization.replace('SignedHeaders=', 'SignedHeaders=x-missing;') };
    await assert.rejects(verify({ ...request, headers }), { name: 'InvalidSignatureException', message: "Signed header 'x-missing' is missing from the request." });
  });

  test('unusual signed-header lists verify exactly when the SDK signer computes the same signature', async () => {
    // A client that lists headers out of order, repeats one, or signs the date/authorization headers: the signature
    // expected is the one @smithy/signature-v4 computes for that list (as the verifier did before it was rewritten).
    const base = await signed(cases['ListRecords with query parameters']!);
    const signer = new SignatureV4({ service: 'cognito-sync', region: 'eu-west-1', sha256: Hash.bind(null, 'sha256'), credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey }, applyChecksum: false });
    for (const list of ['x-amz-date;host;x-amz-security-token', 'host;host;x-amz-date', 'date;host;x-amz-date', 'host', 'host;x-amz-content-sha256;x-amz-date']) {
      const names = list.split(';');
      const requestHeaders: Record<string, string> = { ...(base.headers as Record<string, string>), date: 'Tue, 04 Mar 2025 05:06:07 GMT' };
      const headers: Record<string, string> = {};
      for (const name of names) headers[name] = requestHeaders[name]!;
      const query: Record<string, string> = Object.fromEntries(base.query);
      const expected = await signer.sign(new HttpRequest({ method: base.method, path: base.rawPath, query, headers, body: base.body, hostname: '127.0.0.1' }), { signingDate: NOW, signableHeaders: new Set(names) });
      const signature = /Signature=([0-9a-f]+)/.exec(String(expected.headers.authorization))![1];
      const authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/20250304/eu-west-1/cognito-sync/aws4_request, SignedHeaders=${list}, Signature=${signature}`;
      await verify({ ...base, headers: { ...requestHeaders, authorization } });
    }
  });

  test('derived signing keys are cached per secret, date, region and service, not shared across them', async () => {
    const c = cases['ListRecords with query parameters']!;
    await verify(await signed(c));
    await verify(await signed(c));
    const otherRegion = await signed(c);
    const authorization = (otherRegion.headers.authorization as string).replace('/eu-west-1/', '/us-east-1/');
    await assert.rejects(verify({ ...otherRegion, headers: { ...otherRegion.headers, authorization } }), mismatch);
  });
});
