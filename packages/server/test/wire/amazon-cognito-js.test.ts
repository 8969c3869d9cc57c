// The browser-era client stack, unmodified, against the real server: aws-sdk v2's CognitoIdentityCredentials
// (GetId + GetCredentialsForIdentity) and amazon-cognito-js 1.1.0's CognitoSyncManager pushing, pulling and
// resolving conflicts with the temporary credentials; the developer checks and changes the data with SDK v3.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import AWS from 'aws-sdk';
import { CreateIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand, type _Record } from '@aws-sdk/client-cognito-sync';
import { call, windowStorage as localStorage, withTimeout } from '../support/amazon-cognito-js.ts';
import { identityClient, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

const region = 'us-east-1';
const datasetName = 'settings';

// amazon-cognito-js ships no type declarations; its objects are used as `any`.
type AcjsRecord = any;
type AcjsDataset = any;
type AcjsConflict = any;

/** One request aws-sdk v2 sent, as seen on its global `send` event. */
interface SentRequest {
  service: string;
  operation: string;
  href: string;
  authorization: string | undefined;
  securityToken: string | undefined;
  params: any;
}

/** The slice of aws-sdk v2's request object the recorder reads (its typings do not expose these members). */
interface V2Request {
  service: { serviceIdentifier: string };
  operation: string;
  params: any;
  httpRequest: { endpoint: { href: string }; headers: Record<string, string | undefined> };
}
/** aws-sdk v2's process-wide event emitter: every request of every client emits its events here too. */
const awsEvents = (AWS as unknown as { events: { on(event: 'send', listener: (response: { request: V2Request }) => void): void; removeListener(event: 'send', listener: (response: { request: V2Request }) => void): void } }).events;

const sent: SentRequest[] = [];
function recordSend({ request }: { request: V2Request }) {
  const http = request.httpRequest;
  sent.push({
    service: request.service.serviceIdentifier,
    operation: request.operation,
    href: http.endpoint.href,
    authorization: http.headers['Authorization'],
    securityToken: http.headers['x-amz-security-token'],
    params: request.params,
  });
}

interface SyncResult {
  /** Every synchronize callback that fired, in order. */
  events: string[];
  conflicts: AcjsConflict[][];
}

/**
 * Runs `dataset.synchronize` and settles on onSuccess (resolve) or onFailure (reject). onConflict goes to
 * `resolveConflicts` (or cancels the sync when none is given); onDatasetDeleted and onDatasetsMerged, which no
 * scenario here should reach, answer `false` so the sync fails loudly.
 */
function synchronize(dataset: AcjsDataset, resolveConflicts?: (conflicts: AcjsConflict[]) => AcjsRecord[]): Promise<SyncResult> {
  const result: SyncResult = { events: [], conflicts: [] };
  return withTimeout<SyncResult>('synchronize', (resolve, reject) => {
    let settled = false;
    const once = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    dataset.synchronize({
      onSuccess(_dataset: AcjsDataset, _updates: AcjsRecord[]) {
        result.events.push('onSuccess');
        once(() => resolve(result));
      },
      onFailure(error: Error) {
        result.events.push('onFailure');
        once(() => reject(Object.assign(new Error(`synchronize failed after ${result.events.join(' → ')}: ${error?.message}`), { cause: error })));
      },
      onConflict(conflictDataset: AcjsDataset, conflicts: AcjsConflict[], done: (isContinue: boolean) => void) {
        result.events.push('onConflict');
        result.conflicts.push(conflicts);
        if (!resolveConflicts) return done(false);
        conflictDataset.resolve(resolveConflicts(conflicts), () => done(true));
      },
      onDatasetDeleted(_dataset: AcjsDataset, name: string, done: (isContinue: boolean) => void) {
        result.events.push(`onDatasetDeleted(${name})`);
        return done(false);
      },
      onDatasetsMerged(_dataset: AcjsDataset, names: string[], done: (isContinue: boolean) => void) {
        result.events.push(`onDatasetsMerged(${names.join(',')})`);
        return done(false);
      },
    });
  });
}

const byKey = (records: _Record[]) => [...records].sort((a, b) => (a.Key! < b.Key! ? -1 : a.Key! > b.Key! ? 1 : 0));

let server: ServerProcess;
let identityPoolId: string;
let credentials: AWS.CognitoIdentityCredentials;
let dataset: AcjsDataset;

before(async () => {
  server = await startServer();
  awsEvents.on('send', recordSend);
  const pool = await identityClient(server.endpoint).send(
    new CreateIdentityPoolCommand({ IdentityPoolName: 'amazon-cognito-js', AllowUnauthenticatedIdentities: true }),
  );
  identityPoolId = pool.IdentityPoolId!;
});
after(async () => {
  awsEvents.removeListener('send', recordSend);
  AWS.config.credentials = null;
  assert.equal(await server.stop(), 0);
});

/** The developer's view of the dataset, through SDK v3. */
async function serverRecords() {
  const listed = await syncClient(server.endpoint).send(
    new ListRecordsCommand({ IdentityPoolId: identityPoolId, IdentityId: credentials.identityId, DatasetName: datasetName }),
  );
  return { ...listed, Records: byKey(listed.Records ?? []) };
}

/** The developer changes one record on the server, as another device would. */
async function developerSets(key: string, value: string) {
  const listed = await serverRecords();
  const record = listed.Records.find((r) => r.Key === key);
  assert.ok(record, `the server has no record ${key}`);
  const updated = await syncClient(server.endpoint).send(
    new UpdateRecordsCommand({
      IdentityPoolId: identityPoolId,
      IdentityId: credentials.identityId,
      DatasetName: datasetName,
      SyncSessionToken: listed.SyncSessionToken!,
      RecordPatches: [{ Op: 'replace', Key: key, Value: value, SyncCount: record.SyncCount! }],
    }),
  );
  return updated.Records![0]!;
}

async function localRecord(key: string) {
  const records: AcjsRecord[] = await call('getAllRecords', (cb) => dataset.getAllRecords(cb));
  return records.find((r: AcjsRecord) => r.getKey() === key);
}

async function localLastSyncCount(): Promise<number> {
  const metadata: any = await call('getDatasetMetadata', (cb) => dataset.getDatasetMetadata(cb));
  return metadata.getLastSyncCount();
}

describe('aws-sdk v2 CognitoIdentityCredentials + amazon-cognito-js 1.1.0', () => {
  test('CognitoIdentityCredentials gets an unauthenticated identity with GetId + GetCredentialsForIdentity', async () => {
    // The second argument is the clientConfig of the internal CognitoIdentity (and STS) clients. Without a
    // RoleArn the provider takes the "enhanced" flow: GetId then GetCredentialsForIdentity, never STS.
    const clientConfig: AWS.CognitoIdentity.ClientConfiguration = { endpoint: server.endpoint, region, maxRetries: 0 };
    credentials = new AWS.CognitoIdentityCredentials({ IdentityPoolId: identityPoolId }, clientConfig);
    sent.length = 0;
    await withTimeout('credentials.getPromise', (resolve, reject) => credentials.getPromise().then(resolve, reject));

    assert.match(credentials.identityId, /^us-east-1:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // ASIA marks temporary (session) credentials on AWS.
    assert.match(credentials.accessKeyId, /^ASIA[A-Z0-9]+$/);
    assert.ok(credentials.secretAccessKey.length > 0);
    assert.ok(credentials.sessionToken.length > 0);
    assert.ok(credentials.expireTime instanceof Date && credentials.expireTime.getTime() > Date.now(), 'an expiry in the future');
    assert.equal(credentials.expired, false);

    assert.deepEqual(sent.map((r) => `${r.service}.${r.operation}`), ['cognitoidentity.getId', 'cognitoidentity.getCredentialsForIdentity']);
    for (const request of sent) {
      assert.equal(new URL(request.href).origin, server.endpoint, `${request.operation} went to ${request.href}`);
      // Both operations are unsigned in the model; the v2 client sends them without an Authorization header.
      assert.equal(request.authorization, undefined);
    }
  });

  test('a new dataset with two local records is pushed with the identity\'s temporary credentials', async () => {
    AWS.config.region = region;
    AWS.config.credentials = credentials;
    // CognitoSyncManager's RemoteStorage does `new AWS.CognitoSync()` with no options, so the endpoint has to
    // come from the global config's service-specific section.
    AWS.config.update({ cognitosync: { endpoint: server.endpoint, maxRetries: 0 } });

    const manager = new (AWS as any).CognitoSyncManager();
    assert.equal(manager.getIdentityId(), credentials.identityId);
    dataset = await call('openOrCreateDataset', (cb) => manager.openOrCreateDataset(datasetName, cb));
    await call('put theme', (cb) => dataset.put('theme', 'dark', cb));
    await call('put lang', (cb) => dataset.put('lang', 'fr', cb));

    sent.length = 0;
    const result = await synchronize(dataset);
    assert.deepEqual(result.events, ['onSuccess']);

    // ListRecords (nothing remote yet), then one UpdateRecords with both patches.
    assert.deepEqual(sent.map((r) => `${r.service}.${r.operation}`), ['cognitosync.listRecords', 'cognitosync.updateRecords']);
    for (const request of sent) {
      assert.equal(new URL(request.href).origin, server.endpoint);
      assert.match(request.authorization!, new RegExp(`^AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/`));
      assert.equal(request.securityToken, credentials.sessionToken);
    }

    const listed = await serverRecords();
    assert.equal(listed.DatasetExists, true);
    assert.equal(listed.DatasetSyncCount, 1);
    assert.deepEqual(listed.Records.map((r) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'dark', 1]]);

    // The push result is written back locally: no longer modified, SyncCount from the server.
    const theme = await localRecord('theme');
    assert.equal(theme.isModified(), false);
    assert.equal(theme.getSyncCount(), 1);
    assert.equal(await localLastSyncCount(), 1);
    // The library keeps its cache in (our stand-in for) window.localStorage, one item per dataset.
    assert.ok(localStorage.getItem(`${credentials.identityId}.${datasetName}`), 'the dataset is cached in localStorage');
  });

  test('a change another device made on the server is pulled into the local dataset', async () => {
    const changed = await developerSets('theme', 'light');
    assert.equal(changed.SyncCount, 2);

    const result = await synchronize(dataset);
    assert.deepEqual(result.events, ['onSuccess']);

    const value = await call('get theme', (cb) => dataset.get('theme', cb));
    assert.equal(value, 'light');
    const theme = await localRecord('theme');
    assert.equal(theme.isModified(), false);
    assert.equal(theme.getSyncCount(), 2);
    assert.equal(await localLastSyncCount(), 2);
    assert.deepEqual(await call('getAll', (cb) => dataset.getAll(cb)), { theme: 'light', lang: 'fr' });
  });

  test('a key changed locally and remotely reaches onConflict; resolving with the remote record completes', async () => {
    await call('put theme', (cb) => dataset.put('theme', 'local-blue', cb));
    const remote = await developerSets('theme', 'remote-green');
    assert.equal(remote.SyncCount, 3);

    const result = await synchronize(dataset, (conflicts) => conflicts.map((conflict) => conflict.resolveWithRemoteRecord()));
    assert.deepEqual(result.events, ['onConflict', 'onSuccess']);
    assert.equal(result.conflicts.length, 1);
    const [conflict] = result.conflicts[0]!;
    assert.equal(result.conflicts[0]!.length, 1);
    assert.equal(conflict.getKey(), 'theme');
    assert.equal(conflict.getLocalRecord().getValue(), 'local-blue');
    assert.equal(conflict.getRemoteRecord().getValue(), 'remote-green');
    assert.equal(conflict.getRemoteRecord().getSyncCount(), 3);

    assert.equal(await call('get theme', (cb) => dataset.get('theme', cb)), 'remote-green');
    assert.equal((await localRecord('theme')).isModified(), false);
    assert.equal(await localLastSyncCount(), 3);

    const listed = await serverRecords();
    assert.equal(listed.DatasetSyncCount, 3);
    assert.deepEqual(listed.Records.map((r) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'remote-green', 3]]);
  });

  test('resolving a conflict with the local record pushes it over the remote change', async () => {
    await call('put lang', (cb) => dataset.put('lang', 'de', cb));
    await developerSets('lang', 'es');

    // resolveWithLocalRecord copies the remote SyncCount (4) into the local record, so the push that follows is
    // accepted with the session token of the ListRecords that found the conflict.
    const result = await synchronize(dataset, (conflicts) => conflicts.map((conflict) => conflict.resolveWithLocalRecord()));
    assert.deepEqual(result.events, ['onConflict', 'onSuccess']);
    assert.deepEqual(result.conflicts[0]!.map((c: AcjsConflict) => c.getKey()), ['lang']);

    const listed = await serverRecords();
    assert.equal(listed.DatasetSyncCount, 5);
    assert.deepEqual(listed.Records.map((r) => [r.Key, r.Value, r.SyncCount]), [['lang', 'de', 5], ['theme', 'remote-green', 3]]);
    const lang = await localRecord('lang');
    assert.equal(lang.getValue(), 'de');
    assert.equal(lang.isModified(), false);
    assert.equal(lang.getSyncCount(), 5);
    assert.equal(await localLastSyncCount(), 5);
  });

  test('a removed key and a key set to the empty string both reach the server as Op remove (tombstones)', async () => {
    await call('remove lang', (cb) => dataset.remove('lang', cb));
    // Library quirk: putRecords sends `Op: record.getValue() ? 'replace' : 'remove'`, so an empty string is a
    // delete on the wire. That is amazon-cognito-js's doing, not the server's.
    await call('put theme', (cb) => dataset.put('theme', '', cb));

    sent.length = 0;
    const result = await synchronize(dataset);
    assert.deepEqual(result.events, ['onSuccess']);
    const update = sent.find((r) => r.operation === 'updateRecords');
    assert.ok(update, 'an UpdateRecords request was sent');
    const patches = [...update.params.RecordPatches].sort((a: any, b: any) => (a.Key < b.Key ? -1 : 1));
    assert.deepEqual(patches.map((p: any) => [p.Key, p.Op, p.SyncCount]), [['lang', 'remove', 5], ['theme', 'remove', 3]]);

    const listed = await serverRecords();
    assert.equal(listed.DatasetSyncCount, 6);
    // Removed records stay listed as tombstones without a Value, so other devices learn of the delete.
    assert.deepEqual(listed.Records.map((r) => [r.Key, r.Value, r.SyncCount]), [['lang', undefined, 6], ['theme', undefined, 6]]);
    assert.equal(await localLastSyncCount(), 6);
    // Library quirk: a Record built from the server's tombstone does `this.value = data.Value || ''`, so the
    // local copy holds '' rather than the null its own remove() writes; either way the value is gone.
    assert.ok(!(await call('get lang', (cb) => dataset.get('lang', cb))));
    assert.ok(!(await call('get theme', (cb) => dataset.get('theme', cb))));

    // Nothing is left to push or pull: the next sync is one ListRecords and no UpdateRecords.
    sent.length = 0;
    assert.deepEqual((await synchronize(dataset)).events, ['onSuccess']);
    assert.deepEqual(sent.map((r) => r.operation), ['listRecords']);
  });
});
