// Integrations on their real protocols: Cognito Streams into a real Kinesis API (kinesalite), SyncTrigger
// through a local Lambda Invoke API and as a signed webhook, BulkPublish, and delivery surviving kill -9.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateIdentityPoolCommand, DeleteIdentityPoolCommand } from '@aws-sdk/client-cognito-identity';
import {
  BulkPublishCommand, DeleteDatasetCommand, GetBulkPublishDetailsCommand, ListRecordsCommand, SetCognitoEventsCommand,
  SetIdentityPoolConfigurationCommand, UpdateRecordsCommand, type CognitoSyncClient, type RecordPatch,
} from '@aws-sdk/client-cognito-sync';
import { CreateStreamCommand, DeleteStreamCommand, DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import Database from 'better-sqlite3';
import { rawRequest } from '../support/signed-fetch.ts';
import { developerCredentials, identityClient, identityCredentials, newIdentityId, rejection, startServer, syncClient, type ServerProcess } from '../support/server-process.ts';

const require = createRequire(import.meta.url);
const kinesalite = require('kinesalite') as (options: object) => Server;

const awsEnv = { AWS_ACCESS_KEY_ID: 'AKIDKINESIS', AWS_SECRET_ACCESS_KEY: 'kinesis-secret', AWS_REGION: 'us-east-1' };

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

let kinesisServer: Server;
let kinesisEndpoint: string;
let kinesis: KinesisClient;

before(async () => {
  kinesisServer = kinesalite({ createStreamMs: 0, deleteStreamMs: 0 });
  kinesisEndpoint = await listen(kinesisServer);
  kinesis = new KinesisClient({ endpoint: kinesisEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestHandler: new NodeHttpHandler() });
});
after(async () => {
  kinesis.destroy();
  await new Promise<void>((resolve) => kinesisServer.close(() => resolve()));
});

let streamCount = 0;
async function createStream(): Promise<string> {
  const name = `changes-${++streamCount}`;
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
  for (let i = 0; i < 50; i++) {
    const described = await kinesis.send(new DescribeStreamCommand({ StreamName: name }));
    if (described.StreamDescription?.StreamStatus === 'ACTIVE') return name;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('stream did not become ACTIVE');
}

/** Reads the stream from the start until `count` records arrived (or the time runs out). */
async function readStream(streamName: string, count: number, timeoutMs = 15_000): Promise<any[]> {
  const described = await kinesis.send(new DescribeStreamCommand({ StreamName: streamName }));
  let iterator = (await kinesis.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: described.StreamDescription!.Shards![0]!.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const records: any[] = [];
  const deadline = Date.now() + timeoutMs;
  while (records.length < count && Date.now() < deadline) {
    const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator! }));
    for (const record of page.Records ?? []) records.push({ partitionKey: record.PartitionKey, ...JSON.parse(Buffer.from(record.Data!).toString('utf8')) });
    iterator = page.NextShardIterator;
    if (records.length < count) await new Promise((r) => setTimeout(r, 50));
  }
  return records;
}

async function newPool(server: ServerProcess, streamName?: string) {
  const { IdentityPoolId } = await identityClient(server.endpoint).send(new CreateIdentityPoolCommand({ IdentityPoolName: 'integrations', AllowUnauthenticatedIdentities: true }));
  if (streamName) {
    await syncClient(server.endpoint).send(
      new SetIdentityPoolConfigurationCommand({ IdentityPoolId: IdentityPoolId!, CognitoStreams: { StreamName: streamName, RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'ENABLED' } }),
    );
  }
  return IdentityPoolId!;
}

async function update(client: CognitoSyncClient, key: { IdentityPoolId: string; IdentityId: string; DatasetName: string }, patches: RecordPatch[]) {
  const { SyncSessionToken } = await client.send(new ListRecordsCommand(key));
  return client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: SyncSessionToken!, RecordPatches: patches }));
}

describe('Cognito Streams', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: kinesisEndpoint } });
  });
  after(async () => {
    await server.stop();
  });

  test('every committed change reaches the stream in AWS’s record format, in order per dataset', async () => {
    const streamName = await createStream();
    const poolId = await newPool(server, streamName);
    const sync = syncClient(server.endpoint);
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'profile' };
    const first = await update(sync, key, [
      { Op: 'replace', Key: 'name', Value: 'Ada', SyncCount: 0, DeviceLastModifiedDate: new Date(1700000000123) },
      { Op: 'replace', Key: 'city', Value: 'London', SyncCount: 0 },
    ]);
    await update(sync, key, [{ Op: 'remove', Key: 'city', SyncCount: 1 }]);
    await sync.send(new DeleteDatasetCommand(key));

    const records = await readStream(streamName, 3);
    assert.equal(records.length, 3);
    const [one, two, three] = records;
    assert.deepEqual(
      { ...one, kinesisSyncRecords: undefined },
      { partitionKey: `${poolId}:${key.IdentityId}:profile`, identityPoolId: poolId, identityId: key.IdentityId, dataSetName: 'profile', operation: 'replace', lastModifiedDate: one.lastModifiedDate, kinesisSyncRecordsURL: null, payloadType: 'Inline', syncCount: 1, kinesisSyncRecords: undefined },
    );
    assert.deepEqual(one.kinesisSyncRecords, [
      { key: 'name', value: 'Ada', syncCount: 1, lastModifiedDate: first.Records![0]!.LastModifiedDate!.getTime(), deviceLastModifiedDate: 1700000000123, op: 'replace' },
      { key: 'city', value: 'London', syncCount: 1, lastModifiedDate: first.Records![1]!.LastModifiedDate!.getTime(), deviceLastModifiedDate: first.Records![1]!.DeviceLastModifiedDate!.getTime(), op: 'replace' },
    ]);
    assert.equal(two.syncCount, 2);
    assert.deepEqual(two.kinesisSyncRecords.map((r: any) => [r.key, r.value, r.op, r.syncCount]), [['city', null, 'remove', 2]]);
    assert.equal(three.operation, 'remove');
    assert.deepEqual(three.kinesisSyncRecords, []);
    assert.equal(typeof one.lastModifiedDate, 'number');
    assert.ok(one.lastModifiedDate > 1.6e12, 'epoch milliseconds');
  });

  test('a change too large for a Kinesis record goes as AWS\'s S3Url form, its records served at its URL; the dataset\'s next change follows', async () => {
    const streamName = await createStream();
    const poolId = await newPool(server, streamName);
    const sync = syncClient(server.endpoint);
    const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'quotes' };
    // Within the dataset's 1 MB, but twice that once JSON escapes every quote.
    const quotes = '"'.repeat(1_000_000);
    await update(sync, key, [{ Op: 'replace', Key: 'q', Value: quotes, SyncCount: 0 }]);
    await update(sync, key, [{ Op: 'replace', Key: 'after', Value: 'small', SyncCount: 0 }]);
    const [large, next] = await readStream(streamName, 2, 30_000);
    assert.equal(large.payloadType, 'S3Url');
    assert.equal(large.syncCount, 1);
    assert.deepEqual(large.kinesisSyncRecords, []);
    assert.match(large.kinesisSyncRecordsURL, new RegExp(`^${server.endpoint}/streams/payloads/[A-Za-z0-9_-]{43}$`));
    const answer = await fetch(large.kinesisSyncRecordsURL);
    assert.equal(answer.status, 200);
    const records = (await answer.json()) as Array<{ key: string; value: string; syncCount: number; op: string }>;
    assert.deepEqual(records.map((r) => [r.key, r.value.length, r.value === quotes, r.syncCount, r.op]), [['q', 1_000_000, true, 1, 'replace']]);
    // HEAD, as on a pre-signed S3 URL: the GET's status and headers, no body.
    const head = await fetch(large.kinesisSyncRecordsURL, { method: 'HEAD' });
    assert.deepEqual([head.status, head.headers.get('content-type'), Number(head.headers.get('content-length')) > 1_000_000, await head.text()], [200, 'application/json', true, '']);
    assert.deepEqual([next.payloadType, next.kinesisSyncRecordsURL, next.syncCount, next.kinesisSyncRecords.map((r: any) => r.key)], ['Inline', null, 2, ['after']]);
    // Another id is nobody's payload.
    const unknown = await fetch(large.kinesisSyncRecordsURL.replace(/.{4}$/, 'AAAA'));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
  });

  test('BulkPublish streams every dataset of the pool; status goes NOT_STARTED → IN_PROGRESS → SUCCEEDED', async () => {
    const streamName = await createStream();
    const poolId = await newPool(server, streamName);
    const sync = syncClient(server.endpoint);
    // Written before streaming is switched on for this pool's stream reader: the bulk publish must carry them.
    const expected = new Map<string, string>();
    for (let i = 0; i < 6; i++) {
      const identityId = newIdentityId();
      for (const datasetName of ['a', 'b']) {
        await update(sync, { IdentityPoolId: poolId, IdentityId: identityId, DatasetName: datasetName }, [{ Op: 'replace', Key: 'k', Value: `${i}${datasetName}`, SyncCount: 0 }]);
        expected.set(`${identityId}/${datasetName}`, `${i}${datasetName}`);
      }
    }
    const live = await readStream(streamName, 12);
    assert.equal(live.length, 12, 'live changes streamed');
    assert.equal((await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }))).BulkPublishStatus, 'NOT_STARTED');
    await sync.send(new BulkPublishCommand({ IdentityPoolId: poolId }));
    const statuses = new Set<string>();
    let details;
    for (let i = 0; i < 200; i++) {
      details = await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }));
      statuses.add(details.BulkPublishStatus!);
      if (details.BulkPublishStatus === 'SUCCEEDED') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(details!.BulkPublishStatus, 'SUCCEEDED');
    assert.ok(details!.BulkPublishCompleteTime! >= details!.BulkPublishStartTime!);
    const all = await readStream(streamName, 24);
    const published = all.slice(12);
    assert.equal(published.length, 12);
    const seen = new Map(published.map((r) => [`${r.identityId}/${r.dataSetName}`, r.kinesisSyncRecords[0].value]));
    assert.deepEqual(seen, expected);
    const again = await rejection(() => sync.send(new BulkPublishCommand({ IdentityPoolId: poolId })));
    assert.equal(again.name, 'AlreadyStreamedException');
    assert.equal(again.$metadata?.httpStatusCode, 400);
  });

  test('enabling a stream Kinesis does not know → InvalidParameterException', async () => {
    const poolId = await newPool(server);
    const error = await rejection(() =>
      syncClient(server.endpoint).send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: { StreamName: 'no-such-stream', StreamingStatus: 'ENABLED' } })),
    );
    assert.equal(error.name, 'InvalidParameterException');
    assert.match(error.message, /no-such-stream/);
  });

  test('BulkPublish without an enabled stream → InvalidConfigurationException', async () => {
    const poolId = await newPool(server);
    const error = await rejection(() => syncClient(server.endpoint).send(new BulkPublishCommand({ IdentityPoolId: poolId })));
    assert.equal(error.name, 'InvalidConfigurationException');
  });
});

describe('BulkPublish 24-hour rule with a short interval', () => {
  test('a second run is refused until the interval has passed since the success', async () => {
    const server = await startServer({ env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: kinesisEndpoint, COGNISYNC_BULK_PUBLISH_INTERVAL_SECONDS: '2' } });
    try {
      const poolId = await newPool(server, await createStream());
      const sync = syncClient(server.endpoint);
      await sync.send(new BulkPublishCommand({ IdentityPoolId: poolId }));
      let status;
      for (let i = 0; i < 100 && status !== 'SUCCEEDED'; i++) {
        status = (await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }))).BulkPublishStatus;
        if (status !== 'SUCCEEDED') await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(status, 'SUCCEEDED');
      assert.equal((await rejection(() => sync.send(new BulkPublishCommand({ IdentityPoolId: poolId })))).name, 'AlreadyStreamedException');
      await new Promise((r) => setTimeout(r, 2100));
      await sync.send(new BulkPublishCommand({ IdentityPoolId: poolId }));
    } finally {
      await server.stop();
    }
  });
});

describe('BulkPublish against a Kinesis that refuses every record', () => {
  test('FAILED, never SUCCEEDED: the job\'s own entries, or a change queued before them, failing 6 times fail it; a new run may start', async () => {
    // Knows every stream (so streaming can be switched on) and refuses every PutRecords.
    const refusing = createServer((req, res) => {
      void readBody(req).then(() => {
        const target = String(req.headers['x-amz-target'] ?? '');
        if (target.endsWith('DescribeStreamSummary')) {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ StreamDescriptionSummary: { StreamName: 's', StreamStatus: 'ACTIVE' } }));
        } else {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ __type: 'AccessDeniedException', message: 'refused' }));
        }
      });
    });
    const server = await startServer({ env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: await listen(refusing) } });
    try {
      const sync = syncClient(server.endpoint);
      // One pool whose only entries are the job's (its record written before streaming was switched on); one with a
      // change queued (and failing) before the job's entries.
      const quiet = await newPool(server);
      const write = (poolId: string) => update(sync, { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'd' }, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]);
      await write(quiet);
      await sync.send(new SetIdentityPoolConfigurationCommand({ IdentityPoolId: quiet, CognitoStreams: { StreamName: 'refused', RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'ENABLED' } }));
      const busy = await newPool(server, 'refused');
      await write(busy);
      for (const poolId of [quiet, busy]) await sync.send(new BulkPublishCommand({ IdentityPoolId: poolId }));
      const outcome = async (poolId: string) => {
        for (let i = 0; i < 300; i++) {
          const details = await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }));
          if (details.BulkPublishStatus !== 'IN_PROGRESS') return details;
          await new Promise((r) => setTimeout(r, 100));
        }
        return sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }));
      };
      for (const poolId of [quiet, busy]) {
        const details = await outcome(poolId);
        assert.equal(details.BulkPublishStatus, 'FAILED', poolId);
        assert.match(details.FailureMessage ?? '', /Delivery to the stream failed 6 times/);
      }
      // What a finishing step still in flight could have overwritten it with: nothing, a while later.
      await new Promise((r) => setTimeout(r, 500));
      for (const poolId of [quiet, busy]) assert.equal((await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: poolId }))).BulkPublishStatus, 'FAILED');
      // A failed run does not count as a publish: another may start at once.
      await sync.send(new BulkPublishCommand({ IdentityPoolId: quiet }));
      assert.equal((await sync.send(new GetBulkPublishDetailsCommand({ IdentityPoolId: quiet }))).BulkPublishStatus, 'IN_PROGRESS');
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });
});

describe('a Kinesis endpoint that accepts and never answers', () => {
  test('the call times out (COGNISYNC_DELIVERY_TIMEOUT_MS) and is retried, instead of holding up the outbox', { timeout: 60_000 }, async () => {
    const streamName = await createStream();
    // Answers DescribeStreamSummary (enabling the stream) through kinesalite, swallows the first PutRecords, passes the rest on.
    let swallowed = 0;
    const upstream = new URL(kinesisEndpoint);
    const held = new Set<IncomingMessage>();
    const proxy = createServer((req, res) => {
      if (String(req.headers['x-amz-target']).endsWith('PutRecords') && swallowed++ === 0) return void held.add(req);
      const forwarded = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      req.pipe(forwarded);
    });
    const server = await startServer({ env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: await listen(proxy), COGNISYNC_DELIVERY_TIMEOUT_MS: '500' } });
    try {
      const poolId = await newPool(server, streamName);
      await update(syncClient(server.endpoint), { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'd' }, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]);
      const records = await readStream(streamName, 1, 20_000);
      assert.equal(swallowed, 2, 'the first PutRecords got no answer; the retry went through');
      assert.deepEqual(records.map((r) => r.kinesisSyncRecords[0].key), ['k']);
    } finally {
      await server.stop();
      for (const req of held) req.socket.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

/** kinesalite behind a proxy that answers a PutRecords call with a 500 whenever `refuse()` says so. */
function refusingKinesis(refuse: () => boolean): Server {
  const upstream = new URL(kinesisEndpoint);
  return createServer((req, res) => {
    if (String(req.headers['x-amz-target']).endsWith('PutRecords') && refuse()) {
      return void readBody(req).then(() => res.writeHead(500, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ __type: 'InternalFailure', message: 'down' })));
    }
    const forwarded = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(forwarded);
  });
}

describe('a change queued for a stream that is then deleted and replaced', () => {
  test('is dropped once the pool streams elsewhere, so the dataset\'s next changes reach the new stream', { timeout: 60_000 }, async () => {
    const [first, second] = [await createStream(), await createStream()];
    // PutRecords refused while `refusing`.
    let refusing = false;
    const proxy = refusingKinesis(() => refusing);
    const server = await startServer({ env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: await listen(proxy) } });
    try {
      const poolId = await newPool(server, first);
      const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'd' };
      refusing = true;
      await update(syncClient(server.endpoint), key, [{ Op: 'replace', Key: 'lost', Value: 'for the old stream', SyncCount: 0 }]);
      await kinesis.send(new DeleteStreamCommand({ StreamName: first }));
      await syncClient(server.endpoint).send(
        new SetIdentityPoolConfigurationCommand({ IdentityPoolId: poolId, CognitoStreams: { StreamName: second, RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'ENABLED' } }),
      );
      refusing = false;
      await update(syncClient(server.endpoint), key, [{ Op: 'replace', Key: 'next', Value: 'for the new stream', SyncCount: 0 }]);
      const records = await readStream(second, 1, 30_000);
      assert.deepEqual(records.map((r) => r.kinesisSyncRecords.map((k: { key: string }) => k.key)), [['next']]);
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

describe('a change too large for a Kinesis record, while Kinesis refuses it', () => {
  test('its records are stored once, however often its delivery is tried, and it arrives once Kinesis takes it', { timeout: 60_000 }, async () => {
    const streamName = await createStream();
    // The first four PutRecords calls are refused.
    let refusals = 0;
    const proxy = refusingKinesis(() => {
      if (refusals === 4) return false;
      refusals++;
      return true;
    });
    const server = await startServer({ env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: await listen(proxy) } });
    try {
      const poolId = await newPool(server, streamName);
      const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'quotes' };
      await update(syncClient(server.endpoint), key, [{ Op: 'replace', Key: 'q', Value: '"'.repeat(1_000_000), SyncCount: 0 }]);
      const [record] = await readStream(streamName, 1, 30_000);
      assert.equal(refusals, 4);
      assert.equal(record.payloadType, 'S3Url');
      assert.equal((await fetch(record.kinesisSyncRecordsURL)).status, 200);
      const db = new Database(join(server.dataDir, 'cognisync.db'), { readonly: true });
      try {
        assert.equal((db.prepare('SELECT count(*) AS n FROM stream_payloads').get() as { n: number }).n, 1);
      } finally {
        db.close();
      }
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

describe('a change of an identity pool that is then deleted', () => {
  test('is dropped at its next failed delivery instead of being retried for ever', { timeout: 60_000 }, async () => {
    // Kinesis unreachable (a closed port): every delivery fails, and not with ResourceNotFoundException.
    const server = await startServer({ env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: 'http://127.0.0.1:9' } });
    try {
      const backlog = async () => (await rawRequest(server.endpoint, { method: 'GET', path: '/admin/outbox' })).json.pending as number;
      const kept = await newPool(server, 'kept');
      const deleted = await newPool(server, 'deleted');
      for (const poolId of [kept, deleted]) {
        await update(syncClient(server.endpoint), { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'd' }, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]);
      }
      assert.equal(await backlog(), 2);
      await identityClient(server.endpoint).send(new DeleteIdentityPoolCommand({ IdentityPoolId: deleted }));
      const deadline = Date.now() + 30_000;
      while ((await backlog()) > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await backlog(), 1, "the deleted pool's change is gone; the other pool's is still retried");
    } finally {
      await server.stop();
    }
  });
});

describe('delivery survives kill -9', () => {
  test('changes committed while Kinesis is unreachable arrive after a crash and restart, exactly as committed', async () => {
    const streamName = await createStream();
    const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-crash-'));
    try {
      // First life: Kinesis unreachable (a closed port), so nothing can be delivered before the kill.
      const first = await startServer({ dataDir, env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: 'http://127.0.0.1:9', COGNISYNC_MASTER_KEY: 'crash-test' } });
      const poolId = await newPool(first, streamName);
      const backlog = async () => (await rawRequest(first.endpoint, { method: 'GET', path: '/admin/outbox' })).json;
      const key = { IdentityPoolId: poolId, IdentityId: newIdentityId(), DatasetName: 'journal' };
      const committed: number[] = [];
      for (let i = 0; i < 5; i++) {
        const result = await update(syncClient(first.endpoint), key, [{ Op: 'replace', Key: `entry${i}`, Value: `text ${i}`, SyncCount: 0 }]);
        committed.push(result.Records![0]!.SyncCount!);
      }
      const visible = await backlog();
      assert.equal(visible.pending, 5, 'the admin API shows the undelivered changes');
      assert.ok(visible.oldestAgeSeconds >= 0);
      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.once('exit', resolve));

      const second = await startServer({ dataDir, env: { ...awsEnv, COGNISYNC_KINESIS_ENDPOINT: kinesisEndpoint, COGNISYNC_MASTER_KEY: 'crash-test' } });
      try {
        const records = await readStream(streamName, 5, 30_000);
        assert.deepEqual(records.map((r) => r.syncCount), committed, 'every change, once, in commit order');
        assert.deepEqual(records.map((r) => r.kinesisSyncRecords[0].value), [0, 1, 2, 3, 4].map((i) => `text ${i}`));
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('SyncTrigger', () => {
  let lambda: Server;
  let lambdaEndpoint: string;
  const invocations: { functionName: string; event: any }[] = [];
  let server: ServerProcess;

  /** A function that upper-cases values, drops `drop`, adds `audit`, and misbehaves on request. */
  function handle(functionName: string, event: any): { status: number; headers?: Record<string, string>; body: string } {
    if (functionName === 'throttled') return { status: 429, headers: { 'x-amzn-errortype': 'TooManyRequestsException' }, body: JSON.stringify({ message: 'Rate exceeded', Type: 'User' }) };
    if (functionName === 'crashing') return { status: 200, headers: { 'x-amz-function-error': 'Unhandled' }, body: JSON.stringify({ errorMessage: 'boom' }) };
    if (functionName === 'garbage') return { status: 200, body: JSON.stringify({ datasetRecords: { k: { op: 'explode' } } }) };
    const records: Record<string, any> = {};
    for (const [key, record] of Object.entries<any>(event.datasetRecords)) {
      if (key === 'drop') continue;
      records[key] = record.op === 'replace' ? { ...record, newValue: String(record.newValue).toUpperCase() } : record;
    }
    records.audit = { newValue: `by ${event.identityId}`, op: 'replace' };
    return { status: 200, body: JSON.stringify({ ...event, datasetRecords: records }) };
  }

  before(async () => {
    lambda = createServer(async (req, res) => {
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url ?? '');
      const body = await readBody(req);
      if (req.method !== 'POST' || !match) return void res.writeHead(404).end();
      const functionName = decodeURIComponent(match[1]!);
      invocations.push({ functionName, event: JSON.parse(body) });
      const answer = handle(functionName, JSON.parse(body));
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body);
    });
    lambdaEndpoint = await listen(lambda);
    server = await startServer({ env: { ...awsEnv, COGNISYNC_LAMBDA_ENDPOINT: lambdaEndpoint } });
  });
  after(async () => {
    await server.stop();
    await new Promise<void>((resolve) => lambda.close(() => resolve()));
  });

  async function identityWithTrigger(functionRef: string) {
    const poolId = await newPool(server);
    await syncClient(server.endpoint).send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: functionRef } }));
    const user = await identityCredentials(server.endpoint, poolId);
    return { client: syncClient(server.endpoint, user.credentials), key: { IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'notes' } };
  }

  test('the Lambda function sees AWS’s SyncTrigger event and what it returns is what is stored', async () => {
    const { client, key } = await identityWithTrigger('arn:aws:lambda:us-east-1:123456789012:function:shout');
    await update(client, key, [{ Op: 'replace', Key: 'greeting', Value: 'hello', SyncCount: 0 }]);
    invocations.length = 0;
    const result = await update(client, key, [
      { Op: 'replace', Key: 'greeting', Value: 'hi there', SyncCount: 1 },
      { Op: 'replace', Key: 'drop', Value: 'never stored', SyncCount: 0 },
    ]);
    assert.equal(invocations.length, 1);
    assert.equal(invocations[0]!.functionName, 'arn:aws:lambda:us-east-1:123456789012:function:shout');
    assert.deepEqual(invocations[0]!.event, {
      version: 2, eventType: 'SyncTrigger', region: 'us-east-1', identityPoolId: key.IdentityPoolId, identityId: key.IdentityId, datasetName: 'notes',
      datasetRecords: { greeting: { oldValue: 'HELLO', newValue: 'hi there', op: 'replace' }, drop: { oldValue: null, newValue: 'never stored', op: 'replace' } },
    });
    // The dropped key is answered too, as it stays (never stored: absent, at the request's SyncCount), so clients mark it synced.
    assert.deepEqual(result.Records!.map((r) => [r.Key, r.Value, r.SyncCount]), [['greeting', 'HI THERE', 2], ['audit', `by ${key.IdentityId}`, 2], ['drop', undefined, 2]]);
    const listed = await client.send(new ListRecordsCommand(key));
    assert.deepEqual(new Map(listed.Records!.map((r) => [r.Key, r.Value])), new Map([['greeting', 'HI THERE'], ['audit', `by ${key.IdentityId}`]]));
    // A stored key the function drops is answered as stored.
    await update(syncClient(server.endpoint), key, [{ Op: 'replace', Key: 'drop', Value: 'by the developer', SyncCount: 0 }]);
    const kept = await update(client, key, [{ Op: 'replace', Key: 'drop', Value: 'refused', SyncCount: 3 }]);
    assert.deepEqual(kept.Records!.filter((r) => r.Key === 'drop').map((r) => [r.Value, r.SyncCount]), [['by the developer', 3]]);
  });

  test('a throttled function → LambdaThrottledException (429); a failing or malformed one → InvalidLambdaFunctionOutputException (400); nothing is written', async () => {
    for (const [functionName, errorName, status] of [['throttled', 'LambdaThrottledException', 429], ['crashing', 'InvalidLambdaFunctionOutputException', 400], ['garbage', 'InvalidLambdaFunctionOutputException', 400]] as const) {
      const { client, key } = await identityWithTrigger(functionName);
      const error = await rejection(() => update(client, key, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]));
      assert.equal(error.name, errorName, functionName);
      assert.equal(error.$metadata?.httpStatusCode, status);
      assert.equal((await client.send(new ListRecordsCommand(key))).DatasetExists, false, `${functionName}: nothing written`);
    }
  });

  test('the developer’s own writes do not run the trigger (as AWS documents)', async () => {
    const { key } = await identityWithTrigger('shout');
    invocations.length = 0;
    const result = await update(syncClient(server.endpoint), key, [{ Op: 'replace', Key: 'k', Value: 'quiet', SyncCount: 0 }]);
    assert.equal(result.Records![0]!.Value, 'quiet');
    assert.equal(invocations.length, 0);
  });

  test('an http(s) URL is called as a webhook with an HMAC signature the receiver can verify', async () => {
    let verified = false;
    const webhook = createServer(async (req, res) => {
      const body = await readBody(req);
      const expected = createHmac('sha256', developerCredentials.secretAccessKey).update(`${req.headers['x-cognisync-timestamp']}.${body}`).digest('hex');
      verified = req.headers['x-cognisync-signature'] === `sha256=${expected}`;
      const event = JSON.parse(body);
      for (const record of Object.values<any>(event.datasetRecords)) if (record.newValue) record.newValue = `[${record.newValue}]`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(event));
    });
    const url = await listen(webhook);
    try {
      const { client, key } = await identityWithTrigger(`${url}/hooks/sync`);
      const result = await update(client, key, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]);
      assert.equal(verified, true);
      assert.equal(result.Records![0]!.Value, '[v]');
    } finally {
      await new Promise<void>((resolve) => webhook.close(() => resolve()));
    }
  });

  test('a webhook that cannot be reached → InvalidLambdaFunctionOutputException that names neither its URL nor fetch\'s message; nothing written', async () => {
    // A port nothing listens on (fetch refuses to call port 9 at all).
    const closed = createServer();
    const url = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { client, key } = await identityWithTrigger(`${url}/hooks/secret-path`);
    const error = await rejection(() => update(client, key, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]));
    assert.equal(error.name, 'InvalidLambdaFunctionOutputException');
    assert.equal(error.message, 'The SyncTrigger webhook could not be reached (ECONNREFUSED)');
    assert.equal((await syncClient(server.endpoint).send(new ListRecordsCommand(key))).Records?.length ?? 0, 0);
  });

  test('a webhook answering more than 6 MB (Lambda\'s limit), or a redirect, is InvalidLambdaFunctionOutputException; nothing written', async () => {
    const webhook = createServer(async (req, res) => {
      await readBody(req);
      if (req.url === '/redirect') return void res.writeHead(302, { location: '/elsewhere' }).end();
      if (req.url === '/declared') return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(7 * 1024 * 1024) }).end();
      // Streamed without a length, 64 KB at a time, until the server stops reading.
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('error', () => undefined);
      pump();
    });
    const url = await listen(webhook);
    try {
      for (const path of ['/endless', '/declared', '/redirect']) {
        const { client, key } = await identityWithTrigger(`${url}${path}`);
        const refused = await rejection(() => update(client, key, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]));
        assert.equal(refused.name, 'InvalidLambdaFunctionOutputException', `${path}: ${refused.message}`);
        assert.match(refused.message, path === '/redirect' ? /answered 302/ : /more than 6291456 bytes/);
        assert.deepEqual((await client.send(new ListRecordsCommand(key))).Records, []);
      }
    } finally {
      webhook.closeAllConnections();
      await new Promise<void>((resolve) => webhook.close(() => resolve()));
    }
  });

  test('a function that does not answer in time, or stalls mid-answer → LambdaThrottledException at the timeout, nothing written (webhook and Lambda)', async () => {
    // Webhooks: /hang never answers, /stall sends its headers and the start of a body, then nothing.
    const hanging = createServer((req, res) => {
      if (req.url === '/stall') res.writeHead(200, { 'content-type': 'application/json' }).write('{"ver');
    });
    const url = await listen(hanging);
    // A Lambda Invoke API whose function `slow` answers a correct echo after 1 s and `stalling` stalls mid-answer.
    const slowLambda = createServer(async (req, res) => {
      const body = await readBody(req);
      if (/stalling/.test(req.url ?? '')) return void res.writeHead(200, { 'content-type': 'application/json' }).write('{"ver');
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(body), 1000);
    });
    const slow = await startServer({ env: { ...awsEnv, COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS: '300', COGNISYNC_LAMBDA_ENDPOINT: await listen(slowLambda) } });
    try {
      for (const functionRef of [`${url}/hang`, `${url}/stall`, 'arn:aws:lambda:us-east-1:123456789012:function:slow', 'arn:aws:lambda:us-east-1:123456789012:function:stalling']) {
        const poolId = await newPool(slow);
        await syncClient(slow.endpoint).send(new SetCognitoEventsCommand({ IdentityPoolId: poolId, Events: { SyncTrigger: functionRef } }));
        const user = await identityCredentials(slow.endpoint, poolId);
        const client = syncClient(slow.endpoint, user.credentials);
        const key = { IdentityPoolId: poolId, IdentityId: user.identityId, DatasetName: 'd' };
        const started = Date.now();
        const error = await rejection(() => update(client, key, [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }]));
        assert.equal(error.name, 'LambdaThrottledException', functionRef);
        assert.ok(Date.now() - started < 900, `${functionRef}: refused after ${Date.now() - started} ms`);
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal((await client.send(new ListRecordsCommand(key))).DatasetExists, false, functionRef);
      }
      assert.doesNotMatch(slow.stderr(), /unexpected error/);
    } finally {
      for (const fake of [hanging, slowLambda]) {
        fake.closeAllConnections();
        await new Promise<void>((resolve) => fake.close(() => resolve()));
      }
      await slow.stop();
    }
  });
});
