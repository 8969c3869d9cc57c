// Cognito Identity end to end with the real SDK v3 and credential provider: identities, developer and OIDC
// logins, OpenID tokens (verified against our JWKS), temporary credentials, merges and secrets at rest.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateIdentityPoolCommand, DeleteIdentitiesCommand, DescribeIdentityCommand, GetCredentialsForIdentityCommand, GetIdCommand,
  GetIdentityPoolRolesCommand, GetOpenIdTokenCommand, GetOpenIdTokenForDeveloperIdentityCommand, ListIdentitiesCommand,
  LookupDeveloperIdentityCommand, MergeDeveloperIdentitiesCommand, SetIdentityPoolRolesCommand, UnlinkDeveloperIdentityCommand,
  UnlinkIdentityCommand, UpdateIdentityPoolCommand,
} from '@aws-sdk/client-cognito-identity';
import { ListDatasetsCommand, ListRecordsCommand, UpdateRecordsCommand, type CognitoSyncClient } from '@aws-sdk/client-cognito-sync';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import pg from 'pg';
import { identityClient, identityCredentials, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

let server: ServerProcess;
const identity = () => identityClient(server.endpoint);
let developerSync: CognitoSyncClient;

before(async () => {
  server = await startServer();
  developerSync = syncClient(server.endpoint);
});
after(async () => {
  await server.stop();
});

async function createPool(extra: Record<string, unknown> = {}) {
  const pool = await identity().send(new CreateIdentityPoolCommand({ IdentityPoolName: 'ids', AllowUnauthenticatedIdentities: true, ...extra }));
  return pool.IdentityPoolId!;
}

async function writeRecord(client: CognitoSyncClient, IdentityPoolId: string, IdentityId: string, DatasetName: string, Key: string, Value: string) {
  const key = { IdentityPoolId, IdentityId, DatasetName };
  const listed = await client.send(new ListRecordsCommand(key));
  const current = listed.Records!.find((r) => r.Key === Key)?.SyncCount ?? 0;
  return client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key, Value, SyncCount: current }] }));
}

describe('unauthenticated identities', () => {
  test('fromCognitoIdentityPool (unmodified v3 provider) gets credentials that sync the identity’s own dataset', async () => {
    const poolId = await createPool();
    const provider = fromCognitoIdentityPool({ identityPoolId: poolId, clientConfig: { endpoint: server.endpoint, region: 'us-east-1' } });
    const credentials = await provider();
    assert.match(credentials.accessKeyId, /^ASIA/);
    assert.ok(credentials.sessionToken);
    assert.ok(credentials.expiration!.getTime() > Date.now() + 50 * 60_000, 'about an hour');
    const identityId = (credentials as { identityId?: string }).identityId!;
    assert.match(identityId, /^us-east-1:[0-9a-f-]{36}$/);

    const sync = syncClient(server.endpoint, credentials);
    const written = await writeRecord(sync, poolId, identityId, 'prefs', 'theme', 'dark');
    assert.equal(written.Records![0]!.LastModifiedBy, identityId);
    const datasets = await sync.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: identityId }));
    assert.deepEqual(datasets.Datasets!.map((d) => d.DatasetName), ['prefs']);

    const other = await rejection(() => sync.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'prefs' })));
    assert.equal(other.name, 'NotAuthorizedException');
    assert.equal(other.$metadata?.httpStatusCode, 403);
  });

  test('GetId on a pool without unauthenticated access → NotAuthorizedException (400); unknown pool → ResourceNotFoundException', async () => {
    const poolId = await createPool({ AllowUnauthenticatedIdentities: false });
    const denied = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId })));
    assert.equal(denied.name, 'NotAuthorizedException');
    assert.equal(denied.$metadata?.httpStatusCode, 400);
    const unknown = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: 'us-east-1:00000000-0000-0000-0000-000000000000' })));
    assert.equal(unknown.name, 'ResourceNotFoundException');
    const noIdentity = await rejection(() => identity().send(new GetCredentialsForIdentityCommand({ IdentityId: newIdentityId() })));
    assert.equal(noIdentity.name, 'ResourceNotFoundException');
  });

  test('a deleted identity’s credentials stop working (UnrecognizedClientException)', async () => {
    const poolId = await createPool();
    const user = await identityCredentials(server.endpoint, poolId);
    const sync = syncClient(server.endpoint, user.credentials);
    await writeRecord(sync, poolId, user.identityId, 'd', 'k', 'v');
    const deleted = await identity().send(new DeleteIdentitiesCommand({ IdentityIdsToDelete: [user.identityId] }));
    assert.deepEqual(deleted.UnprocessedIdentityIds, []);
    const error = await rejection(() => sync.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'd' })));
    assert.equal(error.name, 'UnrecognizedClientException');
    assert.equal(error.$metadata?.httpStatusCode, 403);
    const gone = await developerSync.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'd' }));
    assert.equal(gone.DatasetExists, false, 'the identity’s data went with it');
  });

  test('a session token that does not belong to the access key is refused', async () => {
    const poolId = await createPool();
    const a = await identityCredentials(server.endpoint, poolId);
    const b = await identityCredentials(server.endpoint, poolId);
    const mixed = syncClient(server.endpoint, { ...a.credentials, sessionToken: b.credentials.sessionToken });
    const error = await rejection(() => mixed.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: a.identityId })));
    assert.equal(error.name, 'UnrecognizedClientException');
  });

  test('once the pool forbids unauthenticated identities, an unauthenticated identity\'s own token does not stand in for a login', async () => {
    const poolId = await createPool();
    const { IdentityId } = await identity().send(new GetIdCommand({ IdentityPoolId: poolId }));
    const { Token } = await identity().send(new GetOpenIdTokenCommand({ IdentityId }));
    await identity().send(new UpdateIdentityPoolCommand({ IdentityPoolId: poolId, IdentityPoolName: 'ids', AllowUnauthenticatedIdentities: false }));
    const Logins = { 'cognito-identity.amazonaws.com': Token! };
    for (const call of [
      () => identity().send(new GetCredentialsForIdentityCommand({ IdentityId, Logins })),
      () => identity().send(new GetOpenIdTokenCommand({ IdentityId, Logins })),
      () => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins })),
    ]) {
      const error = await rejection(call);
      assert.equal(error.name, 'NotAuthorizedException');
      assert.match(error.message, /Unauthenticated access is not supported/);
    }
  });

  test("GetId with the token of an identity deleted since is refused, and moves nothing", async () => {
    const poolId = await createPool();
    const { IdentityId: gone } = await identity().send(new GetIdCommand({ IdentityPoolId: poolId }));
    const { Token } = await identity().send(new GetOpenIdTokenCommand({ IdentityId: gone }));
    await identity().send(new DeleteIdentitiesCommand({ IdentityIdsToDelete: [gone!] }));
    const error = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { 'cognito-identity.amazonaws.com': Token! } })));
    assert.equal(error.name, 'NotAuthorizedException');
    assert.match(error.message, /no longer exists/);
    assert.deepEqual((await identity().send(new ListIdentitiesCommand({ IdentityPoolId: poolId, MaxResults: 10 }))).Identities, []);
  });
});

describe('developer-authenticated identities', () => {
  test('GetOpenIdTokenForDeveloperIdentity registers a user once; its token is a JWT our JWKS verifies and logs back in', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example', AllowUnauthenticatedIdentities: false });
    const first = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'alice' }, TokenDuration: 120 }));
    const second = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'alice' } }));
    assert.equal(second.IdentityId, first.IdentityId);

    const jwks = (await (await fetch(`${server.endpoint}/.well-known/jwks.json`)).json()) as { keys: object[] };
    const discovery = (await (await fetch(`${server.endpoint}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    assert.equal(discovery.jwks_uri, `${discovery.issuer}/.well-known/jwks.json`);
    const { payload } = await jwtVerify(first.Token!, createLocalJWKSet(jwks as never), { issuer: discovery.issuer, audience: poolId });
    assert.equal(payload.sub, first.IdentityId);
    assert.ok(payload.exp! - payload.iat! === 120);
    assert.deepEqual(payload.amr, ['authenticated', 'login.example']);

    // The token is the login for the identity's unsigned calls (as the SDKs' developer-auth flow does).
    const logins = { 'cognito-identity.amazonaws.com': first.Token! };
    const { Credentials } = await identity().send(new GetCredentialsForIdentityCommand({ IdentityId: first.IdentityId!, Logins: logins }));
    const sync = syncClient(server.endpoint, { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretKey!, sessionToken: Credentials!.SessionToken! });
    await writeRecord(sync, poolId, first.IdentityId!, 'notes', 'n1', 'hello');
    const refreshed = await identity().send(new GetOpenIdTokenCommand({ IdentityId: first.IdentityId!, Logins: logins }));
    assert.equal(refreshed.IdentityId, first.IdentityId);

    const withoutLogins = await rejection(() => identity().send(new GetCredentialsForIdentityCommand({ IdentityId: first.IdentityId! })));
    assert.equal(withoutLogins.name, 'NotAuthorizedException');
    const forged = await rejection(() => identity().send(new GetCredentialsForIdentityCommand({ IdentityId: first.IdentityId!, Logins: { 'cognito-identity.amazonaws.com': `${first.Token!}x` } })));
    assert.equal(forged.name, 'NotAuthorizedException');
    const directDeveloperLogin = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'alice' } })));
    assert.equal(directDeveloperLogin.name, 'NotAuthorizedException');
  });

  test('Lookup, link, DeveloperUserAlreadyRegistered, Describe/ListIdentities and UnlinkDeveloperIdentity', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example' });
    const bob = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'bob' } }));
    const linked = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: bob.IdentityId, Logins: { 'login.example': 'bob-work' } }));
    assert.equal(linked.IdentityId, bob.IdentityId);
    const byUser = await identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, DeveloperUserIdentifier: 'bob-work', MaxResults: 10 }));
    assert.equal(byUser.IdentityId, bob.IdentityId);
    assert.deepEqual(byUser.DeveloperUserIdentifierList, ['bob', 'bob-work']);
    const byId = await identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: bob.IdentityId, MaxResults: 1 }));
    assert.deepEqual(byId.DeveloperUserIdentifierList, ['bob']);
    assert.ok(byId.NextToken);
    const carol = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'carol' } }));
    const taken = await rejection(() => identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: carol.IdentityId, Logins: { 'login.example': 'bob' } })));
    assert.equal(taken.name, 'DeveloperUserAlreadyRegisteredException');
    assert.equal(taken.$metadata?.httpStatusCode, 400);
    // A user identifier the other operations could never name (over the model's 1,024) is refused, not linked.
    const longUsers = await createPool({ DeveloperProviderName: 'login.example' });
    const atLimit = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: longUsers, Logins: { 'login.example': 'd'.repeat(1024) } }));
    assert.equal((await identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: longUsers, DeveloperUserIdentifier: 'd'.repeat(1024) }))).IdentityId, atLimit.IdentityId);
    const tooLong = await rejection(() => identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: longUsers, Logins: { 'login.example': 'e'.repeat(1025) } })));
    assert.equal(tooLong.name, 'InvalidParameterException');
    assert.equal(tooLong.message, "1 validation error detected: Value at 'logins.login.example.value' failed to satisfy constraint: Member must have length less than or equal to 1024");

    const described = await identity().send(new DescribeIdentityCommand({ IdentityId: bob.IdentityId! }));
    assert.deepEqual(described.Logins, ['login.example']);
    assert.ok(described.CreationDate instanceof Date);
    const listed = await identity().send(new ListIdentitiesCommand({ IdentityPoolId: poolId, MaxResults: 60 }));
    assert.deepEqual(new Set(listed.Identities!.map((i) => i.IdentityId)), new Set([bob.IdentityId, carol.IdentityId]));

    await identity().send(new UnlinkDeveloperIdentityCommand({ IdentityId: bob.IdentityId!, IdentityPoolId: poolId, DeveloperProviderName: 'login.example', DeveloperUserIdentifier: 'bob-work' }));
    const afterUnlink = await rejection(() => identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, DeveloperUserIdentifier: 'bob-work' })));
    assert.equal(afterUnlink.name, 'ResourceNotFoundException');
    const notLinked = await rejection(() =>
      identity().send(new UnlinkDeveloperIdentityCommand({ IdentityId: bob.IdentityId!, IdentityPoolId: poolId, DeveloperProviderName: 'login.example', DeveloperUserIdentifier: 'bob-work' })),
    );
    assert.equal(notLinked.name, 'ResourceNotFoundException');
    const identityCreds = await identityCredentials(server.endpoint, poolId);
    const notDeveloper = await rejection(() => identityClient(server.endpoint, identityCreds.credentials).send(new ListIdentitiesCommand({ IdentityPoolId: poolId, MaxResults: 1 })));
    assert.equal(notDeveloper.name, 'NotAuthorizedException', 'developer operations refuse identity credentials');
  });

  test('unlinking an identity\'s last login makes it inaccessible: its id or an old token no longer opens it, until the developer links a login again', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example' });
    const zed = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'zed' } }));
    const cognitoLogin = { 'cognito-identity.amazonaws.com': zed.Token! };
    const { Credentials } = await identity().send(new GetCredentialsForIdentityCommand({ IdentityId: zed.IdentityId!, Logins: cognitoLogin }));
    const zedCredentials = { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretKey!, sessionToken: Credentials!.SessionToken! };
    await writeRecord(syncClient(server.endpoint, zedCredentials), poolId, zed.IdentityId!, 'private', 'k', 'zed-secret');

    await identity().send(new UnlinkDeveloperIdentityCommand({ IdentityId: zed.IdentityId!, IdentityPoolId: poolId, DeveloperProviderName: 'login.example', DeveloperUserIdentifier: 'zed' }));
    // ListIdentities' HideDisabled leaves it out.
    const listed = async (HideDisabled?: boolean) => (await identity().send(new ListIdentitiesCommand({ IdentityPoolId: poolId, MaxResults: 60, HideDisabled }))).Identities!.map((i) => i.IdentityId);
    assert.deepEqual(await listed(), [zed.IdentityId]);
    assert.deepEqual(await listed(true), []);
    // The pool allows unauthenticated identities, yet the id alone (which is no secret) opens nothing.
    for (const Logins of [undefined, cognitoLogin]) {
      const refused = await rejection(() => identity().send(new GetCredentialsForIdentityCommand({ IdentityId: zed.IdentityId!, Logins })));
      assert.equal(refused.name, 'NotAuthorizedException');
      assert.match(refused.message, /inaccessible/);
      assert.equal((await rejection(() => identity().send(new GetOpenIdTokenCommand({ IdentityId: zed.IdentityId!, Logins })))).name, 'NotAuthorizedException');
    }
    assert.equal((await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: cognitoLogin })))).name, 'NotAuthorizedException');
    // Credentials issued before the unlink are revoked with it.
    const revoked = await rejection(() => syncClient(server.endpoint, zedCredentials).send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: zed.IdentityId!, DatasetName: 'private' })));
    assert.equal(revoked.name, 'UnrecognizedClientException');
    // The same user logging in again gets a new identity; the developer can link a login back to the old one.
    const again = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'zed' } }));
    assert.notEqual(again.IdentityId, zed.IdentityId);
    const relinked = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: zed.IdentityId!, Logins: { 'login.example': 'zed-restored' } }));
    const restored = await identity().send(new GetCredentialsForIdentityCommand({ IdentityId: zed.IdentityId!, Logins: { 'cognito-identity.amazonaws.com': relinked.Token! } }));
    assert.ok(restored.Credentials?.AccessKeyId);
    // The unlinked user's old token stays void for the identity now linked to someone else.
    const oldToken = await rejection(() => identity().send(new GetCredentialsForIdentityCommand({ IdentityId: zed.IdentityId!, Logins: cognitoLogin })));
    assert.equal(oldToken.name, 'NotAuthorizedException');
    const oldTokenGetId = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: cognitoLogin })));
    assert.equal(oldTokenGetId.name, 'NotAuthorizedException');
    assert.match(oldTokenGetId.message, /issued before the identity's last login was unlinked/);
  });

  test('an identity deleted while a developer user is being linked to it leaves the user free to sign in again', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example' });
    for (let round = 0; round < 10; round++) {
      const { IdentityId } = await identity().send(new GetIdCommand({ IdentityPoolId: poolId }));
      const user = `late-user-${round}`;
      const [linked, , credentials] = await Promise.allSettled([
        identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId, Logins: { 'login.example': user } })),
        identity().send(new DeleteIdentitiesCommand({ IdentityIdsToDelete: [IdentityId!] })),
        identity().send(new GetCredentialsForIdentityCommand({ IdentityId })),
      ]);
      // Whatever the order, the user is either gone with the identity or has it: never a login of a deleted identity.
      const again = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': user } }));
      if (linked.status === 'fulfilled' && again.IdentityId === IdentityId) assert.ok(await identity().send(new DescribeIdentityCommand({ IdentityId })));
      assert.ok(await identity().send(new DescribeIdentityCommand({ IdentityId: again.IdentityId })), `round ${round}: the user's identity exists`);
      if (credentials.status === 'fulfilled') {
        const { AccessKeyId, SecretKey, SessionToken } = credentials.value.Credentials!;
        const read = syncClient(server.endpoint, { accessKeyId: AccessKeyId!, secretAccessKey: SecretKey!, sessionToken: SessionToken! })
          .send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: IdentityId! }));
        const gone = await rejection(() => read);
        assert.equal(gone.name, 'UnrecognizedClientException', `round ${round}: credentials of a deleted identity`);
      }
    }
  });

  test('a developer user unlinked while signing in is never linked back to the identity it was unlinked from', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example' });
    const anomalies: number[] = [];
    for (let round = 0; round < 24; round++) {
      const user = `leaving-${round}`;
      const first = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': user } }));
      const [signIn] = await Promise.all([
        identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': user } })),
        identity().send(new UnlinkDeveloperIdentityCommand({ IdentityId: first.IdentityId!, IdentityPoolId: poolId, DeveloperProviderName: 'login.example', DeveloperUserIdentifier: user })),
      ]);
      // Either the sign-in came first (its identity is the old one, and the unlink then took the user off it) or the
      // unlink did (the sign-in registered the user anew). Never both: the old identity, and the user still on it.
      const owner = await identity()
        .send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, DeveloperUserIdentifier: user }))
        .then((found) => found.IdentityId, (error: Error) => (error.name === 'ResourceNotFoundException' ? undefined : Promise.reject(error)));
      if (signIn.IdentityId === first.IdentityId) {
        if (owner !== undefined) anomalies.push(round);
      } else {
        assert.equal(owner, signIn.IdentityId, `round ${round}: the user is on the identity its sign-in answered`);
      }
    }
    assert.deepEqual(anomalies, [], 'rounds where the user was linked back to the identity it was unlinked from');
  });

  test('LookupDeveloperIdentity with an IdentityId and a DeveloperUserIdentifier of another identity → ResourceConflictException', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example' });
    const a = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'user-a' } }));
    await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'user-b' } }));
    const conflict = await rejection(() => identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: a.IdentityId, DeveloperUserIdentifier: 'user-b' })));
    assert.equal(conflict.name, 'ResourceConflictException');
    const both = await identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: a.IdentityId, DeveloperUserIdentifier: 'user-a' }));
    assert.deepEqual(both.DeveloperUserIdentifierList, ['user-a']);
  });

  test('MergeDeveloperIdentities keeps the source’s data as MergedDatasetNames of the destination', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example' });
    const source = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'phone-user' } }));
    const destination = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'web-user' } }));
    await writeRecord(developerSync, poolId, source.IdentityId!, 'settings', 'color', 'blue');
    await writeRecord(developerSync, poolId, destination.IdentityId!, 'settings', 'size', 'L');

    const merged = await identity().send(new MergeDeveloperIdentitiesCommand({ IdentityPoolId: poolId, DeveloperProviderName: 'login.example', SourceUserIdentifier: 'phone-user', DestinationUserIdentifier: 'web-user' }));
    assert.equal(merged.IdentityId, destination.IdentityId);

    const listed = await developerSync.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: destination.IdentityId!, DatasetName: 'settings' }));
    const mergedName = `settings.${source.IdentityId}`;
    assert.deepEqual(listed.MergedDatasetNames, [mergedName]);
    assert.deepEqual(listed.Records!.map((r) => r.Key), ['size']);
    const carried = await developerSync.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: destination.IdentityId!, DatasetName: mergedName }));
    assert.deepEqual(carried.Records!.map((r) => [r.Key, r.Value]), [['color', 'blue']], 'no data is lost');
    const lookup = await identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, DeveloperUserIdentifier: 'phone-user' }));
    assert.equal(lookup.IdentityId, destination.IdentityId, 'the source user now logs in to the destination');
    const gone = await rejection(() => identity().send(new DescribeIdentityCommand({ IdentityId: source.IdentityId! })));
    assert.equal(gone.name, 'ResourceNotFoundException');
  });
});

describe('developer provider names and Logins keys', () => {
  test('a provider named like an Object.prototype member is an ordinary name (no 500), and a Cognito token in Logins is not stored as a login', async () => {
    for (const provider of ['constructor', '__proto__']) {
      const poolId = await createPool({ DeveloperProviderName: provider });
      const missing = await rejection(() => identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: {} })));
      assert.equal(missing.name, 'InvalidParameterException', provider);
      const Logins = JSON.parse(`{"${provider}": "user-1"}`) as Record<string, string>;
      const first = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins }));
      const again = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins }));
      assert.equal(again.IdentityId, first.IdentityId, `${provider}: the same user, the same identity`);
    }
    const poolId = await createPool({ DeveloperProviderName: 'login.example' });
    const other = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'other' } }));
    const user = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'user', 'cognito-identity.amazonaws.com': other.Token! } }));
    const described = await identity().send(new DescribeIdentityCommand({ IdentityId: user.IdentityId }));
    assert.deepEqual(described.Logins, ['login.example']);
    // A Logins key named like an Object.prototype member is a provider the pool does not have, not a social one.
    const proto = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: JSON.parse('{"__proto__": "t", "constructor": "t"}') as Record<string, string> })));
    assert.match(proto.message, /is not configured for identity pool/);
  });
});

describe('OpenID Connect provider logins', () => {
  let provider: Server;
  let providerName: string;
  let sign: (sub: string) => Promise<string>;
  let secondProvider: string;
  let signFor: (issuerName: string, sub: string) => Promise<string>;
  const bothProviders = () => [`arn:aws:iam::123456789012:oidc-provider/${providerName}`, `arn:aws:iam::123456789012:oidc-provider/${secondProvider}`];

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    // One server, two providers: `host:port` and `host:port/second` (each issuer its own discovery document).
    provider = createServer((req, res) => {
      const prefix = /^(\/second)?\/(\.well-known\/openid-configuration|jwks)$/.exec(req.url ?? '');
      const base = `http://${req.headers.host}${prefix?.[1] ?? ''}`;
      if (prefix?.[2] === 'jwks') res.end(JSON.stringify({ keys: [jwk] }));
      else if (prefix) res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    providerName = `127.0.0.1:${(provider.address() as AddressInfo).port}`;
    secondProvider = `${providerName}/second`;
    signFor = (issuerName, sub) =>
      new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(`http://${issuerName}`).setSubject(sub).setAudience('my-client').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    sign = (sub) => signFor(providerName, sub);
  });
  after(() => new Promise<void>((resolve) => provider.close(() => resolve())));

  test('a Cognito token from an identity\'s unauthenticated days does not open it once a login is linked', async () => {
    const poolId = await createPool({ OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${providerName}`] });
    const { IdentityId } = await identity().send(new GetIdCommand({ IdentityPoolId: poolId }));
    const unauthenticated = await identity().send(new GetOpenIdTokenCommand({ IdentityId }));
    const oidcLogin = { [providerName]: await sign('signed-in-user') };
    await identity().send(new GetCredentialsForIdentityCommand({ IdentityId, Logins: oidcLogin }));
    const oldLogin = { 'cognito-identity.amazonaws.com': unauthenticated.Token! };
    for (const send of [() => identity().send(new GetCredentialsForIdentityCommand({ IdentityId, Logins: oldLogin })), () => identity().send(new GetOpenIdTokenCommand({ IdentityId, Logins: oldLogin }))]) {
      const refused = await rejection(send);
      assert.equal(refused.name, 'NotAuthorizedException');
      assert.match(refused.message, /Logins don't match/);
    }
    // Nor in GetId, where it would link another login to the identity or merge it into another one's.
    for (const Logins of [{ ...oldLogin, [providerName]: await sign('mallory') }, { [providerName]: await sign('mallory'), ...oldLogin }]) {
      const refused = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins })));
      assert.equal(refused.name, 'NotAuthorizedException');
    }
    assert.deepEqual((await identity().send(new DescribeIdentityCommand({ IdentityId }))).Logins, [providerName], 'the identity keeps its one login');
    // A token issued to it as authenticated does.
    const authenticated = await identity().send(new GetOpenIdTokenCommand({ IdentityId, Logins: oidcLogin }));
    const opened = await identity().send(new GetCredentialsForIdentityCommand({ IdentityId, Logins: { 'cognito-identity.amazonaws.com': authenticated.Token! } }));
    assert.equal(opened.IdentityId, IdentityId);
  });

  test('with COGNISYNC_OIDC_CLIENT_IDS, a provider\'s token must be issued to one of its client ids (the token\'s aud)', async () => {
    const arns = [`arn:aws:iam::123456789012:oidc-provider/${providerName}`];
    for (const [clientIds, accepted] of [[`${providerName}=another-app`, false], [`${providerName}=another-app,${providerName}=my-client`, true]] as const) {
      const checking = await startServer({ env: { COGNISYNC_OIDC_CLIENT_IDS: clientIds } });
      try {
        const client = identityClient(checking.endpoint);
        const pool = await client.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'aud', AllowUnauthenticatedIdentities: false, OpenIdConnectProviderARNs: arns }));
        const getId = client.send(new GetIdCommand({ IdentityPoolId: pool.IdentityPoolId, Logins: { [providerName]: await sign('audience-user') } }));
        if (accepted) assert.ok((await getId).IdentityId);
        else assert.match((await rejection(() => getId)).message, /Invalid login token.*aud/);
      } finally {
        await checking.stop();
      }
    }
  });

  test('two users signing in on one guest identity at once: one is linked, the other refused', async () => {
    const poolId = await createPool({ OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${providerName}`] });
    for (let round = 0; round < 10; round++) {
      const { IdentityId } = await identity().send(new GetIdCommand({ IdentityPoolId: poolId }));
      const outcomes = await Promise.allSettled(
        ['user-a', 'user-b'].map(async (user) => identity().send(new GetCredentialsForIdentityCommand({ IdentityId, Logins: { [providerName]: await sign(`${user}-${round}`) } }))),
      );
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, `round ${round}`);
      const refused = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')!.reason as Error;
      assert.match(refused.name, /^(ResourceConflictException|NotAuthorizedException)$/);
      assert.equal((await identity().send(new DescribeIdentityCommand({ IdentityId }))).Logins!.length, 1, `round ${round}: one user`);
    }
  });

  test('two users of two providers signing in on one guest identity at once: one is linked, the other refused', async () => {
    const poolId = await createPool({ OpenIdConnectProviderARNs: bothProviders() });
    for (let round = 0; round < 10; round++) {
      const { IdentityId } = await identity().send(new GetIdCommand({ IdentityPoolId: poolId }));
      const unauthenticated = await identity().send(new GetOpenIdTokenCommand({ IdentityId }));
      const outcomes = await Promise.allSettled([
        (async () => identity().send(new GetCredentialsForIdentityCommand({ IdentityId, Logins: { [providerName]: await sign(`alice-${round}`) } })))(),
        // The other through GetId, with the guest's token: the same race by the other door.
        (async () => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { 'cognito-identity.amazonaws.com': unauthenticated.Token!, [secondProvider]: await signFor(secondProvider, `mallory-${round}`) } })))(),
      ]);
      const logins = (await identity().send(new DescribeIdentityCommand({ IdentityId }))).Logins!;
      assert.equal(logins.length, 1, `round ${round}: ${logins.join(', ')} (${outcomes.map((o) => o.status).join(', ')})`);
    }
  });

  test('a GetId that would put two users of one provider on one identity changes nothing, merges included', async () => {
    const poolId = await createPool({ OpenIdConnectProviderARNs: bothProviders() });
    const alice = { [providerName]: await sign('alice') };
    const bob = { [secondProvider]: await signFor(secondProvider, 'bob') };
    const x = (await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: alice }))).IdentityId!;
    const y = (await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: bob }))).IdentityId!;
    await writeRecord(developerSync, poolId, y, 'bobdata', 'k', 'v');
    const yToken = (await identity().send(new GetOpenIdTokenCommand({ IdentityId: y, Logins: bob }))).Token!;
    // Y would be merged into X (fine on its own), then dave linked: a second user of bob's provider.
    const dave = await signFor(secondProvider, 'dave');
    const refused = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { ...alice, 'cognito-identity.amazonaws.com': yToken, [secondProvider]: dave } })));
    assert.equal(refused.name, 'ResourceConflictException');
    assert.deepEqual((await identity().send(new DescribeIdentityCommand({ IdentityId: y }))).Logins, [secondProvider], 'Y is still there');
    assert.deepEqual((await identity().send(new DescribeIdentityCommand({ IdentityId: x }))).Logins, [providerName], 'X is as it was');
    const listed = await developerSync.send(new ListDatasetsCommand({ IdentityPoolId: poolId, IdentityId: y }));
    assert.deepEqual(listed.Datasets!.map((d) => d.DatasetName), ['bobdata']);
  });

  test('concurrent first sign-ins of one user get one identity: GetId and GetOpenIdTokenForDeveloperIdentity', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example', AllowUnauthenticatedIdentities: false, OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${providerName}`] });
    const Logins = { [providerName]: await sign('first-timer') };
    const viaGetId = new Set(await Promise.all(Array.from({ length: 8 }, async () => (await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins }))).IdentityId!)));
    assert.equal(viaGetId.size, 1, [...viaGetId].join(' '));
    const viaDeveloper = new Set(
      await Promise.all(Array.from({ length: 8 }, async () => (await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'new-user' } }))).IdentityId!)),
    );
    assert.equal(viaDeveloper.size, 1, [...viaDeveloper].join(' '));
    const listed = await identity().send(new ListIdentitiesCommand({ IdentityPoolId: poolId, MaxResults: 60 }));
    assert.deepEqual(listed.Identities!.map((i) => i.IdentityId).sort(), [...viaGetId, ...viaDeveloper].sort(), 'no identity left behind by the losers');
  });

  test('two users of one provider never end up on one identity (merge, GetId, developer linking); a refused call creates nothing', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example', OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${providerName}`] });
    const alice = { [providerName]: await sign('alice') };
    const bob = { [providerName]: await sign('bob') };
    const x = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'dx', ...alice } }));
    const y = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'dy', ...bob } }));
    const merge = await rejection(() => identity().send(new MergeDeveloperIdentitiesCommand({ IdentityPoolId: poolId, DeveloperProviderName: 'login.example', SourceUserIdentifier: 'dx', DestinationUserIdentifier: 'dy' })));
    assert.equal(merge.name, 'ResourceConflictException');
    const getId = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { ...alice, 'cognito-identity.amazonaws.com': y.Token! } })));
    assert.equal(getId.name, 'ResourceConflictException');
    assert.notEqual((await identity().send(new DescribeIdentityCommand({ IdentityId: x.IdentityId }))).IdentityId, undefined, 'both identities are still there');
    assert.notEqual((await identity().send(new DescribeIdentityCommand({ IdentityId: y.IdentityId }))).IdentityId, undefined);
    // A new developer user given with a login someone else holds: refused, and nothing is created for it.
    const before = (await identity().send(new ListIdentitiesCommand({ IdentityPoolId: poolId, MaxResults: 60 }))).Identities!.length;
    const taken = await rejection(() => identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'gina', ...alice } })));
    assert.equal(taken.name, 'DeveloperUserAlreadyRegisteredException');
    assert.equal((await identity().send(new ListIdentitiesCommand({ IdentityPoolId: poolId, MaxResults: 60 }))).Identities!.length, before);
    const gina = await rejection(() => identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, DeveloperUserIdentifier: 'gina' })));
    assert.equal(gina.name, 'ResourceNotFoundException');
    // Several developer users on one identity are fine.
    const linked = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, IdentityId: x.IdentityId, Logins: { 'login.example': 'dx2' } }));
    assert.equal(linked.IdentityId, x.IdentityId);
  });

  test('a GetId whose logins belong to two identities merges them; the other’s datasets become MergedDatasetNames', async () => {
    const poolId = await createPool({ DeveloperProviderName: 'login.example', OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${providerName}`] });
    const oidcLogins = { [providerName]: await sign('merge-me') };
    const oidcIdentity = (await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: oidcLogins }))).IdentityId!;
    const developer = await identity().send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: poolId, Logins: { 'login.example': 'dana' } }));
    await writeRecord(developerSync, poolId, developer.IdentityId!, 'settings', 'volume', '11');
    await writeRecord(developerSync, poolId, oidcIdentity, 'settings', 'volume', '3');

    const linked = await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { ...oidcLogins, 'cognito-identity.amazonaws.com': developer.Token! } }));
    assert.equal(linked.IdentityId, oidcIdentity);
    const listed = await developerSync.send(new ListRecordsCommand({ IdentityPoolId: poolId, IdentityId: oidcIdentity, DatasetName: 'settings' }));
    assert.deepEqual(listed.MergedDatasetNames, [`settings.${developer.IdentityId}`]);
    const lookup = await identity().send(new LookupDeveloperIdentityCommand({ IdentityPoolId: poolId, DeveloperUserIdentifier: 'dana' }));
    assert.equal(lookup.IdentityId, oidcIdentity, 'the developer user now belongs to the surviving identity');
    const described = await identity().send(new DescribeIdentityCommand({ IdentityId: oidcIdentity }));
    assert.deepEqual(new Set(described.Logins), new Set([providerName, 'login.example']));
  });

  test('GetId and the v3 credential provider accept a token the provider’s JWKS verifies; the same subject keeps its identity', async () => {
    const poolId = await createPool({ AllowUnauthenticatedIdentities: false, OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${providerName}`] });
    const logins = { [providerName]: await sign('user-42') };
    const first = await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: logins }));
    const again = await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { [providerName]: await sign('user-42') } }));
    assert.equal(again.IdentityId, first.IdentityId);
    const other = await identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { [providerName]: await sign('user-43') } }));
    assert.notEqual(other.IdentityId, first.IdentityId);

    const credentials = await fromCognitoIdentityPool({ identityPoolId: poolId, logins, clientConfig: { endpoint: server.endpoint, region: 'us-east-1' } })();
    const sync = syncClient(server.endpoint, credentials);
    await writeRecord(sync, poolId, first.IdentityId!, 'game', 'level', '7');

    const tampered = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { [providerName]: `${logins[providerName]!.slice(0, -4)}AAAA` } })));
    assert.equal(tampered.name, 'NotAuthorizedException');
    const unconfigured = await rejection(() => identity().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { 'accounts.google.com': 'token' } })));
    assert.equal(unconfigured.name, 'NotAuthorizedException');

    // UnlinkIdentity: the identity proves itself with its login, then drops the provider.
    await identity().send(new UnlinkIdentityCommand({ IdentityId: first.IdentityId!, Logins: logins, LoginsToRemove: [providerName] }));
    assert.deepEqual((await identity().send(new DescribeIdentityCommand({ IdentityId: first.IdentityId! }))).Logins, []);
  });
});

/** Everything the store holds, as text: the SQLite files' bytes, or every PostgreSQL row. */
async function storedText(running: ServerProcess): Promise<string> {
  if (running.databaseUrl) {
    const client = new pg.Client({ connectionString: running.databaseUrl });
    await client.connect();
    try {
      const tables = (await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows;
      let text = '';
      for (const { tablename } of tables) text += (await client.query(`SELECT coalesce(string_agg(t::text, E'\\n'), '') AS rows FROM ${tablename} t`)).rows[0].rows;
      return text;
    } finally {
      await client.end();
    }
  }
  const files = ['cognisync.db', 'cognisync.db-wal'].map((name) => join(server.dataDir, name));
  return files.map((file) => { try { return readFileSync(file).toString('latin1'); } catch { return ''; } }).join('');
}

describe('pool roles and secrets at rest', () => {
  test('Set/GetIdentityPoolRoles store the roles', async () => {
    const poolId = await createPool();
    assert.deepEqual((await identity().send(new GetIdentityPoolRolesCommand({ IdentityPoolId: poolId }))).Roles, {});
    const roles = { authenticated: 'arn:aws:iam::123456789012:role/auth', unauthenticated: 'arn:aws:iam::123456789012:role/unauth' };
    await identity().send(new SetIdentityPoolRolesCommand({ IdentityPoolId: poolId, Roles: roles }));
    assert.deepEqual((await identity().send(new GetIdentityPoolRolesCommand({ IdentityPoolId: poolId }))).Roles, roles);
    const bad = await rejection(() => identity().send(new SetIdentityPoolRolesCommand({ IdentityPoolId: poolId, Roles: { admin: 'arn:aws:iam::1:role/x' } })));
    assert.equal(bad.name, 'InvalidParameterException');
    // A mapping the model accepts but that could never be evaluated.
    for (const mapping of [{ Type: 'Rules', AmbiguousRoleResolution: 'Deny' }, { Type: 'Token' }] as const) {
      const refused = await rejection(() => identity().send(new SetIdentityPoolRolesCommand({ IdentityPoolId: poolId, Roles: roles, RoleMappings: { 'oidc.example.com': mapping } })));
      assert.equal(refused.name, 'InvalidParameterException', JSON.stringify(mapping));
    }
    const RoleMappings = { 'oidc.example.com': { Type: 'Rules' as const, AmbiguousRoleResolution: 'Deny' as const, RulesConfiguration: { Rules: [{ Claim: 'paid', MatchType: 'Equals' as const, Value: 'yes', RoleARN: roles.authenticated }] } } };
    await identity().send(new SetIdentityPoolRolesCommand({ IdentityPoolId: poolId, Roles: roles, RoleMappings }));
    assert.deepEqual((await identity().send(new GetIdentityPoolRolesCommand({ IdentityPoolId: poolId }))).RoleMappings, RoleMappings);
  });

  test('the database holds neither issued secret keys, session tokens nor the private signing key', async () => {
    const poolId = await createPool();
    const user = await identityCredentials(server.endpoint, poolId);
    const bytes = await storedText(server);
    assert.ok(bytes.includes(user.credentials.accessKeyId), 'the access key id is stored (sanity check of the search)');
    assert.ok(!bytes.includes(user.credentials.secretAccessKey), 'secret key not stored');
    assert.ok(!bytes.includes(user.credentials.sessionToken), 'session token not stored');
    assert.ok(!bytes.includes('"d":"'), 'no private JWK in clear');
    assert.equal(statSync(join(server.dataDir, 'master.key')).mode & 0o777, 0o600);
  });
});
