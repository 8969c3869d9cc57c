// An attacker who sees a signed request cannot change it or reuse it elsewhere: every part SigV4 covers
// (body, signed headers, query, path, date, scope) is checked, each refusal is AWS's error, and a refused
// write leaves no trace. Identity credentials reach only their own identity.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CreateIdentityPoolCommand, DescribeIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { developerCredentials, identityClient, identityCredentials, rejection, startServer, syncClient, type ClientCredentials, type ServerProcess } from '../support/server-process.ts';
import { assertAwsError, encodeQuery, send, signRequest, type WireRequest } from '../support/raw-http.ts';

let server: ServerProcess;
let poolId: string;
let alice: Awaited<ReturnType<typeof identityCredentials>>;
let bob: Awaited<ReturnType<typeof identityCredentials>>;

const datasetPath = (identityId: string, dataset = 'settings') => `/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identityId)}/datasets/${dataset}`;
const livePath = (identityId: string) => `/live/identitypools/${encodeURIComponent(poolId)}/identities/${encodeURIComponent(identityId)}`;

before(async () => {
  server = await startServer();
  poolId = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'signatures', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  alice = await identityCredentials(server.endpoint, poolId);
  bob = await identityCredentials(server.endpoint, poolId);
});
after(async () => {
  await server.stop();
});

/** A signed UpdateRecords of Alice's dataset, with a fresh SyncSessionToken. */
async function signedWrite(credentials: ClientCredentials = alice.credentials, identityId = alice.identityId, value = 'dark', dataset = 'settings'): Promise<WireRequest> {
  const listed = await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: `${datasetPath(identityId, dataset)}/records`, credentials }));
  assert.equal(listed.status, 200, listed.text);
  const body = JSON.stringify({ SyncSessionToken: listed.json.SyncSessionToken, RecordPatches: [{ Op: 'replace', Key: 'theme', Value: value, SyncCount: 0 }] });
  return signRequest(server.endpoint, { method: 'POST', path: datasetPath(identityId, dataset), headers: { 'content-type': 'application/json' }, body, credentials });
}

async function assertNothingWritten(identityId = alice.identityId, dataset = 'settings') {
  const listed = await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path: `${datasetPath(identityId, dataset)}/records` }));
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.json.DatasetExists, false, 'a refused request wrote nothing');
}

const MISMATCH = /signature we calculated does not match/;

describe('tampering after signing', () => {
  test('a changed body → 403 InvalidSignatureException, nothing written', async () => {
    const request = await signedWrite();
    const body = Buffer.from(request.body.toString().replace('"dark"', '"evil"'));
    assertAwsError(await send(server.endpoint, { ...request, body }), 403, 'InvalidSignatureException', /x-amz-content-sha256/);
    // Also changing the declared payload hash does not help: that header is signed.
    const rehashed = { ...request, body, headers: { ...request.headers, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex') } };
    assertAwsError(await send(server.endpoint, rehashed), 403, 'InvalidSignatureException', MISMATCH);
    // Without the payload-hash header the body still counts: its hash is part of the canonical request.
    const noHashHeader = await signRequest(server.endpoint, { method: 'POST', path: request.path, headers: { 'content-type': 'application/json' }, body: request.body, credentials: alice.credentials, payloadHashHeader: false });
    assert.equal(noHashHeader.headers['x-amz-content-sha256'], undefined);
    assertAwsError(await send(server.endpoint, { ...noHashHeader, body }), 403, 'InvalidSignatureException', MISMATCH);
    await assertNothingWritten();
  });

  test('a changed or missing signed header → InvalidSignatureException', async () => {
    const request = await signRequest(server.endpoint, { method: 'GET', path: datasetPath(alice.identityId), headers: { 'x-amz-client-context': 'e30=' }, credentials: alice.credentials });
    assert.match(request.headers.authorization!, /SignedHeaders=[^,]*x-amz-client-context/);
    assertAwsError(await send(server.endpoint, { ...request, headers: { ...request.headers, 'x-amz-client-context': 'e319' } }), 403, 'InvalidSignatureException', MISMATCH);
    const { 'x-amz-client-context': _, ...missing } = request.headers;
    assertAwsError(await send(server.endpoint, { ...request, headers: missing }), 403, 'InvalidSignatureException', /x-amz-client-context/);

    // On the Identity API the operation itself is a signed header: DescribeIdentityPool cannot become DeleteIdentityPool.
    const describe = await signRequest(server.endpoint, {
      method: 'POST', path: '/', service: 'cognito-identity', body: JSON.stringify({ IdentityPoolId: poolId }),
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.DescribeIdentityPool' },
    });
    const retargeted = { ...describe, headers: { ...describe.headers, 'x-amz-target': 'AWSCognitoIdentityService.DeleteIdentityPool' } };
    assertAwsError(await send(server.endpoint, retargeted), 400, 'InvalidSignatureException', MISMATCH);
    assert.equal((await identityClient(server.endpoint).send(new DescribeIdentityPoolCommand({ IdentityPoolId: poolId }))).IdentityPoolId, poolId, 'the pool survives');
  });

  test('a changed, added or removed query parameter → InvalidSignatureException', async () => {
    const request = await signRequest(server.endpoint, { method: 'GET', path: `${datasetPath(alice.identityId)}/records`, query: { lastSyncCount: '0' }, credentials: alice.credentials });
    assert.equal((await send(server.endpoint, request)).status, 200);
    assertAwsError(await send(server.endpoint, { ...request, query: 'lastSyncCount=5' }), 403, 'InvalidSignatureException', MISMATCH);
    assertAwsError(await send(server.endpoint, { ...request, query: 'lastSyncCount=0&maxResults=1' }), 403, 'InvalidSignatureException', MISMATCH);
    assertAwsError(await send(server.endpoint, { ...request, query: '' }), 403, 'InvalidSignatureException', MISMATCH);
  });

  test('a changed method → InvalidSignatureException', async () => {
    const describe = await signRequest(server.endpoint, { method: 'GET', path: datasetPath(alice.identityId), credentials: alice.credentials });
    assertAwsError(await send(server.endpoint, { ...describe, method: 'DELETE' }), 403, 'InvalidSignatureException', MISMATCH);
  });
});

describe('dates and scope', () => {
  test('X-Amz-Date more than 15 minutes off → "Signature expired" / "not yet current"; 14 minutes is fine', async () => {
    const path = `${datasetPath(alice.identityId)}/records`;
    const at = (minutes: number) => signRequest(server.endpoint, { method: 'GET', path, credentials: alice.credentials, signingDate: new Date(Date.now() + minutes * 60_000) });
    assertAwsError(await send(server.endpoint, await at(-16)), 403, 'InvalidSignatureException', /Signature expired/);
    assertAwsError(await send(server.endpoint, await at(16)), 403, 'InvalidSignatureException', /Signature not yet current/);
    assertAwsError(await send(server.endpoint, await at(-24 * 60)), 403, 'InvalidSignatureException', /Signature expired/);
    assert.equal((await send(server.endpoint, await at(-14))).status, 200);
    assert.equal((await send(server.endpoint, await at(14))).status, 200);
    // An expired write is refused before anything happens.
    const write = await signedWrite();
    const old = await signRequest(server.endpoint, { method: 'POST', path: write.path, headers: { 'content-type': 'application/json' }, body: write.body, credentials: alice.credentials, signingDate: new Date(Date.now() - 20 * 60_000) });
    assertAwsError(await send(server.endpoint, old), 403, 'InvalidSignatureException', /Signature expired/);
    await assertNothingWritten();
  });

  test('X-Amz-Date moved after signing → InvalidSignatureException', async () => {
    const request = await signRequest(server.endpoint, { method: 'GET', path: `${datasetPath(alice.identityId)}/records`, credentials: alice.credentials });
    const later = request.headers['x-amz-date']!.replace(/(\d{2})Z$/, (_, s: string) => `${String((Number(s) + 1) % 60).padStart(2, '0')}Z`);
    assertAwsError(await send(server.endpoint, { ...request, headers: { ...request.headers, 'x-amz-date': later } }), 403, 'InvalidSignatureException', MISMATCH);
  });

  test('no X-Amz-Date (a Date header instead) → IncompleteSignatureException asking for X-Amz-Date', async () => {
    const request = await signRequest(server.endpoint, { method: 'GET', path: `${datasetPath(alice.identityId)}/records`, credentials: alice.credentials });
    const { 'x-amz-date': _dropped, ...headers } = request.headers;
    const answer = await send(server.endpoint, { ...request, headers: { ...headers, date: new Date().toUTCString() } });
    assertAwsError(answer, 403, 'IncompleteSignatureException', /^Authorization header requires existence of a 'X-Amz-Date' header\.$/);
  });

  test('a credential scoped to another service → InvalidSignatureException naming the right one', async () => {
    const path = `${datasetPath(alice.identityId)}/records`;
    const asIdentity = await signRequest(server.endpoint, { method: 'GET', path, service: 'cognito-identity', credentials: alice.credentials });
    assertAwsError(await send(server.endpoint, asIdentity), 403, 'InvalidSignatureException', /scoped to correct service: 'cognito-sync'/);
    const asSync = await signRequest(server.endpoint, {
      method: 'POST', path: '/', service: 'cognito-sync', body: JSON.stringify({ IdentityPoolId: poolId }),
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSCognitoIdentityService.DescribeIdentityPool' },
    });
    assertAwsError(await send(server.endpoint, asSync), 400, 'InvalidSignatureException', /scoped to correct service: 'cognito-identity'/);
    // Rewriting the scope in the header after signing breaks the signature instead.
    const rescoped = await signRequest(server.endpoint, { method: 'GET', path, service: 'cognito-identity', credentials: alice.credentials });
    rescoped.headers.authorization = rescoped.headers.authorization!.replace('/cognito-identity/', '/cognito-sync/');
    assertAwsError(await send(server.endpoint, rescoped), 403, 'InvalidSignatureException', MISMATCH);
  });
});

describe('reuse elsewhere', () => {
  test('a signature reused on another path → InvalidSignatureException, nothing written there', async () => {
    const write = await signedWrite();
    assertAwsError(await send(server.endpoint, { ...write, path: datasetPath(alice.identityId, 'other') }), 403, 'InvalidSignatureException', MISMATCH);
    await assertNothingWritten(alice.identityId, 'other');
    const describe = await signRequest(server.endpoint, { method: 'GET', path: datasetPath(alice.identityId), credentials: alice.credentials });
    assertAwsError(await send(server.endpoint, { ...describe, path: `${datasetPath(alice.identityId)}/records` }), 403, 'InvalidSignatureException', MISMATCH);
    await assertNothingWritten();
  });

  test('dot segments cannot re-target a signature (SigV4 signs the path without them)', async () => {
    // `.../datasets/settings/subscriptions/..` signs exactly like `.../datasets/settings`, but would route to
    // SubscribeToDataset: the server must not act on a path other than the one that was signed.
    const write = await signedWrite();
    for (const path of [`${write.path}/subscriptions/..`, `${write.path}/./`, `${datasetPath(alice.identityId, 'x')}/../settings`]) {
      const response = await send(server.endpoint, { ...write, path });
      assert.ok(response.status === 400 || response.status === 403 || response.status === 404, `${path}: ${response.status} ${response.text}`);
      assert.notEqual(response.headers['x-amzn-errortype'], 'ResourceNotFoundException', `${path} reached an operation: ${response.text}`);
      assert.notEqual(response.headers['x-amzn-errortype'], 'NotAuthorizedException', `${path} reached an operation: ${response.text}`);
    }
    await assertNothingWritten();
    // A dataset really named '..' stays reachable, percent-encoded (the signature then covers %2E%2E itself).
    const dots = await signedWrite(alice.credentials, alice.identityId, 'x', '%2E%2E');
    assert.equal((await send(server.endpoint, dots)).status, 200);
  });

  test('a pre-signed URL reused on another path or with another query → InvalidSignatureException', async () => {
    const url = new URL(server.endpoint);
    const signer = new SignatureV4({ service: 'cognito-sync', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials: alice.credentials });
    const presign = async (path: string) =>
      (await signer.presign(new HttpRequest({ method: 'GET', hostname: url.hostname, port: Number(url.port), path, headers: { host: url.host } }), { expiresIn: 300 })).query as Record<string, string>;
    const get = (path: string, query: string) => send(server.endpoint, { method: 'GET', path, query, headers: { host: url.host }, body: Buffer.alloc(0) });

    const listQuery = encodeQuery(await presign(`${datasetPath(alice.identityId)}/records`));
    assert.equal((await get(`${datasetPath(alice.identityId)}/records`, listQuery)).status, 200, 'the URL works where it was signed for');
    assertAwsError(await get(`${datasetPath(alice.identityId, 'other')}/records`, listQuery), 403, 'InvalidSignatureException', MISMATCH);
    assertAwsError(await get(`${datasetPath(alice.identityId)}/records`, `${listQuery}&lastSyncCount=3`), 403, 'InvalidSignatureException', MISMATCH);

    // A live-stream URL of Alice's cannot open Bob's stream (nor any API path).
    const liveQuery = encodeQuery(await presign(livePath(alice.identityId)));
    assertAwsError(await get(livePath(bob.identityId), liveQuery), 403, 'InvalidSignatureException', MISMATCH);
    assertAwsError(await get(`${datasetPath(alice.identityId)}/records`, liveQuery), 403, 'InvalidSignatureException', MISMATCH);
    // A signed-header list naming an Object.prototype member is a missing header, not a 500.
    for (const name of ['constructor', '__proto__']) {
      const odd = { ...(await presign(`${datasetPath(alice.identityId)}/records`)), 'X-Amz-SignedHeaders': `${name};host` };
      assertAwsError(await get(`${datasetPath(alice.identityId)}/records`, encodeQuery(odd)), 403, 'InvalidSignatureException', new RegExp(`Signed header '${name}' is missing`));
    }
    // A pre-signed URL signs no body: it is refused on POST (here Cognito Identity's, where it would also let the
    // holder pick any X-Amz-Target), whatever the body.
    const developer = new SignatureV4({ service: 'cognito-identity', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials: developerCredentials });
    const postQuery = encodeQuery((await developer.presign(new HttpRequest({ method: 'POST', hostname: url.hostname, port: Number(url.port), path: '/', headers: { host: url.host } }), { expiresIn: 300 })).query as Record<string, string>);
    const body = Buffer.from(JSON.stringify({ IdentityPoolName: 'presigned', AllowUnauthenticatedIdentities: true }));
    const created = await send(server.endpoint, {
      method: 'POST', path: '/', query: postQuery,
      headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'content-length': String(body.length), 'x-amz-target': 'AWSCognitoIdentityService.CreateIdentityPool' },
      body,
    });
    assertAwsError(created, 400, 'InvalidSignatureException', /only on GET requests/);
    // X-Amz-Expires is the URL's whole life: no clock-skew allowance on top of it.
    const expired = (await signer.presign(new HttpRequest({ method: 'GET', hostname: url.hostname, port: Number(url.port), path: `${datasetPath(alice.identityId)}/records`, headers: { host: url.host } }), { expiresIn: 30, signingDate: new Date(Date.now() - 60_000) })).query as Record<string, string>;
    assertAwsError(await get(`${datasetPath(alice.identityId)}/records`, encodeQuery(expired)), 403, 'InvalidSignatureException', /Signature expired/);
    // Pre-signed URLs carry their own expiry, bounded at 7 days.
    const tooLong = { ...(await presign(livePath(alice.identityId))), 'X-Amz-Expires': String(8 * 24 * 3600) };
    assertAwsError(await get(livePath(alice.identityId), encodeQuery(tooLong)), 403, 'IncompleteSignatureException', /X-Amz-Expires/);
  });
});

describe('identity credentials', () => {
  test("Alice's credentials, correctly signed, against Bob's identity → 403 NotAuthorizedException, Bob untouched", async () => {
    const aliceClient = syncClient(server.endpoint, alice.credentials);
    const read = await rejection(() => aliceClient.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: bob.identityId, DatasetName: 'settings' })));
    assert.equal(read.name, 'NotAuthorizedException');
    assert.equal(read.$metadata?.httpStatusCode, 403);
    assert.match(read.message, new RegExp(`Access to Identity '${bob.identityId}' is forbidden`));

    // Even with a SyncSessionToken Bob's own client obtained (a token names its identity too).
    const bobToken = (await syncClient(server.endpoint, bob.credentials).send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: bob.identityId, DatasetName: 'settings' }))).SyncSessionToken!;
    const write = await rejection(() =>
      aliceClient.send(new UpdateRecordsCommand({ IdentityPoolId: poolId, IdentityId: bob.identityId, DatasetName: 'settings', SyncSessionToken: bobToken, RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }] })),
    );
    assert.equal(write.name, 'NotAuthorizedException');
    await assertNothingWritten(bob.identityId);

    // A request Alice signed for her own path, replayed on Bob's path: the signature no longer matches.
    const replay = await signedWrite();
    assertAwsError(await send(server.endpoint, { ...replay, path: datasetPath(bob.identityId) }), 403, 'InvalidSignatureException', MISMATCH);
    await assertNothingWritten(bob.identityId);
  });

  test('Alice cannot reach another pool, nor developer-only operations', async () => {
    const otherPool = (await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'other', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
    const request = await signRequest(server.endpoint, { method: 'GET', path: `/identitypools/${encodeURIComponent(otherPool)}/identities/${encodeURIComponent(alice.identityId)}/datasets`, credentials: alice.credentials });
    assertAwsError(await send(server.endpoint, request), 403, 'NotAuthorizedException', /forbidden/);
    const config = await signRequest(server.endpoint, { method: 'GET', path: `/identitypools/${encodeURIComponent(poolId)}/configuration`, credentials: alice.credentials });
    assertAwsError(await send(server.endpoint, config), 403, 'NotAuthorizedException', /cannot be called with Cognito identity credentials/);
  });

  test('the session token is bound to its key: a missing or foreign token → UnrecognizedClientException', async () => {
    const path = `${datasetPath(alice.identityId)}/records`;
    const { sessionToken: _, ...noToken } = alice.credentials;
    assertAwsError(await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path, credentials: noToken })), 403, 'UnrecognizedClientException');
    const foreign = { ...alice.credentials, sessionToken: bob.credentials.sessionToken };
    assertAwsError(await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path, credentials: foreign })), 403, 'UnrecognizedClientException');
    // Bob's secret with Alice's key id signs nothing valid.
    const mixed = { ...alice.credentials, secretAccessKey: bob.credentials.secretAccessKey };
    assertAwsError(await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path, credentials: mixed })), 403, 'InvalidSignatureException', MISMATCH);
  });

  test('the developer secret does not sign for an identity key, nor an identity secret for the developer key', async () => {
    const path = `${datasetPath(alice.identityId)}/records`;
    const aliceKeyDeveloperSecret = { accessKeyId: alice.credentials.accessKeyId, secretAccessKey: developerCredentials.secretAccessKey, sessionToken: alice.credentials.sessionToken! };
    assertAwsError(await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path, credentials: aliceKeyDeveloperSecret })), 403, 'InvalidSignatureException', MISMATCH);
    const developerKeyAliceSecret = { accessKeyId: developerCredentials.accessKeyId, secretAccessKey: alice.credentials.secretAccessKey };
    assertAwsError(await send(server.endpoint, await signRequest(server.endpoint, { method: 'GET', path, credentials: developerKeyAliceSecret })), 403, 'InvalidSignatureException', MISMATCH);
  });
});
