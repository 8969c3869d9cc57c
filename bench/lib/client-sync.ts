// Client figures over loopback, against an otherwise idle server: a device's first sync of a full 1 MB dataset
// (1,024 records of ~1 KB) and its incremental syncs afterwards (one local change pushed; one remote change
// pulled). Measured through @cognisync/client (SyncManager + MemoryStore) and, for comparison, through a
// minimal ListRecords-pages + UpdateRecords loop with the AWS SDK v3 (what the wire and server cost alone);
// when @cognisync/client cannot be loaded, the library row says so and falls back to the SDK loop.
import { ListRecordsCommand, UpdateRecordsCommand, CognitoSyncClient, type _Record } from '@aws-sdk/client-cognito-sync';
import type { Target } from './targets.ts';
import { Fixture, recordKey, value, type BenchIdentity } from './workload.ts';

export interface Distribution {
  median: number;
  min: number;
  max: number;
}

export interface ClientSyncResult {
  target: string;
  store: Target['store'];
  synchronous: Target['synchronous'];
  client: string;
  repetitions: number;
  datasetRecords: number;
  datasetBytes: number;
  firstSyncMs: Distribution;
  /** One record changed locally: synchronize() = ListRecords(lastSyncCount) + UpdateRecords(1 record). */
  incrementalPushMs: Distribution;
  /** One record changed by another device: synchronize() = ListRecords(lastSyncCount) returning it. */
  incrementalPullMs: Distribution;
  /** Every timed round's figures, in order (results.json only). */
  samples: { firstSyncMs: number[]; incrementalPushMs: number[]; incrementalPullMs: number[] };
}

const DATASET = 'client1mb';
const RECORDS = 1024;

function distribution(samples: number[]): Distribution {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** One device's view of the dataset and the three timed steps, for either client implementation. */
interface Device {
  firstSync(): Promise<number>;
  localChangeThenSync(key: string, newValue: string): Promise<void>;
  pullSync(): Promise<number>;
  syncCountOf(key: string): Promise<number>;
}

async function cognisyncClientDevice(target: Target, fixture: Fixture, identity: BenchIdentity): Promise<() => Promise<Device>> {
  const { SyncManager, MemoryStore } = (await import('@cognisync/client')) as typeof import('@cognisync/client');
  return async () => {
    const manager = new SyncManager({ identityPoolId: fixture.identityPoolId, endpoint: target.url, credentials: identity.credentials, identityId: identity.identityId, store: new MemoryStore() });
    const dataset = await manager.openOrCreateDataset(DATASET);
    return {
      async firstSync() {
        await dataset.synchronize();
        return dataset.size();
      },
      async localChangeThenSync(key, newValue) {
        await dataset.put(key, newValue);
        const summary = await dataset.synchronize();
        if (summary.pushed !== 1) throw new Error(`expected 1 record pushed, got ${summary.pushed}`);
      },
      async pullSync() {
        return (await dataset.synchronize()).pulled;
      },
      async syncCountOf(key) {
        return (await dataset.getRecord(key))!.syncCount;
      },
    };
  };
}

/** The stand-in: what a sync manager minimally does, with the AWS SDK v3 client. */
function sdkDevice(target: Target, fixture: Fixture, identity: BenchIdentity): () => Promise<Device> {
  return async () => {
    const client = new CognitoSyncClient({ endpoint: target.url, region: 'us-east-1', credentials: identity.credentials, maxAttempts: 1 });
    const key = { IdentityPoolId: fixture.identityPoolId, IdentityId: identity.identityId, DatasetName: DATASET };
    const local = new Map<string, _Record>();
    let lastSyncCount = 0;
    const pull = async () => {
      let nextToken: string | undefined;
      let pulled = 0;
      let token: string | undefined;
      do {
        const page = await client.send(new ListRecordsCommand({ ...key, LastSyncCount: lastSyncCount, MaxResults: 1024, ...(nextToken ? { NextToken: nextToken } : {}) }));
        for (const record of page.Records ?? []) {
          local.set(record.Key!, record);
          pulled++;
        }
        token = page.SyncSessionToken;
        nextToken = page.NextToken;
        if (!nextToken) lastSyncCount = page.DatasetSyncCount ?? lastSyncCount;
      } while (nextToken);
      return { pulled, token: token! };
    };
    return {
      async firstSync() {
        await pull();
        return local.size;
      },
      async localChangeThenSync(recordKey_, newValue) {
        const { token } = await pull();
        const current = local.get(recordKey_)!;
        const { Records } = await client.send(new UpdateRecordsCommand({ ...key, SyncSessionToken: token, RecordPatches: [{ Op: 'replace', Key: recordKey_, Value: newValue, SyncCount: current.SyncCount ?? 0 }] }));
        for (const record of Records ?? []) local.set(record.Key!, record);
        lastSyncCount = Records?.[0]?.SyncCount ?? lastSyncCount;
      },
      async pullSync() {
        return (await pull()).pulled;
      },
      async syncCountOf(recordKey_) {
        return local.get(recordKey_)?.SyncCount ?? 0;
      },
    };
  };
}

export async function measureClientSync(target: Target, repetitions: number, valueBytes: number, implementation: 'library' | 'sdk'): Promise<ClientSyncResult> {
  const fixture = new Fixture(target);
  await fixture.createPool('client');
  const [identity] = await fixture.createIdentities(1);
  await fixture.seedDataset(identity!, DATASET, RECORDS, valueBytes);
  let clientName = '@cognisync/client (SyncManager, MemoryStore)';
  let newDevice: () => Promise<Device>;
  if (implementation === 'sdk') {
    clientName = 'minimal loop on the AWS SDK v3 (ListRecords pages + UpdateRecords)';
    newDevice = sdkDevice(target, fixture, identity!);
  } else {
    try {
      newDevice = await cognisyncClientDevice(target, fixture, identity!);
      await (await newDevice()).firstSync();
    } catch (error) {
      clientName = `minimal AWS SDK v3 loop, because @cognisync/client was unusable: ${String(error).slice(0, 120)}`;
      newDevice = sdkDevice(target, fixture, identity!);
    }
  }
  // One untimed round first, so module loading and JIT warm-up are not in the figures.
  const rounds = repetitions + 1;
  const first: number[] = [];
  const push: number[] = [];
  const pull: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const device = await newDevice();
    let t = performance.now();
    const size = await device.firstSync();
    const firstMs = performance.now() - t;
    if (size !== RECORDS) throw new Error(`first sync got ${size} records, expected ${RECORDS}`);

    const pushKey = recordKey(1 + (round % (RECORDS - 1)));
    t = performance.now();
    await device.localChangeThenSync(pushKey, value(valueBytes, `push/${round}`));
    const pushMs = performance.now() - t;

    // Another device changes one record; this device pulls it.
    const pullKey = recordKey(RECORDS - 1 - (round % (RECORDS - 2)));
    await fixture.write(identity!, DATASET, [{ Op: 'replace', Key: pullKey, Value: value(valueBytes, `pull/${round}`), SyncCount: await device.syncCountOf(pullKey) }]);
    t = performance.now();
    const pulled = await device.pullSync();
    const pullMs = performance.now() - t;
    if (pulled !== 1) throw new Error(`incremental pull got ${pulled} records, expected 1`);
    if (round > 0) {
      first.push(firstMs);
      push.push(pushMs);
      pull.push(pullMs);
    }
  }
  return {
    target: target.name,
    store: target.store,
    synchronous: target.synchronous,
    client: clientName,
    repetitions,
    datasetRecords: RECORDS,
    datasetBytes: RECORDS * (5 + valueBytes),
    firstSyncMs: distribution(first),
    incrementalPushMs: distribution(push),
    incrementalPullMs: distribution(pull),
    samples: { firstSyncMs: first, incrementalPushMs: push, incrementalPullMs: pull },
  };
}
