// Client-side validation: bad names, keys, values and full datasets fail locally, before any write or request.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../src/errors.ts';
import { utf8Length } from '../src/limits.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { SyncManager } from '../src/sync-manager.ts';

const noNetwork: typeof fetch = async () => assert.fail('no request may be sent');
const manager = (limits = {}) =>
  new SyncManager({ identityPoolId: 'us-east-1:00000000-0000-0000-0000-000000000000', identityId: 'us-east-1:11111111-1111-1111-1111-111111111111', endpoint: 'http://127.0.0.1:9', store: new MemoryStore(), fetch: noNetwork, limits });
const code = (expected: string) => (error: unknown) => error instanceof ValidationError && error.code === expected;

describe('client-side validation', () => {
  test('dataset names follow [a-zA-Z0-9_.:-]{1,128}', async () => {
    const m = manager();
    for (const bad of ['', 'a b', 'ü', 'x'.repeat(129), 'a/b', '.', '..']) await assert.rejects(m.openOrCreateDataset(bad), code('InvalidDatasetName'), bad);
    const ds = await m.openOrCreateDataset('values');
    for (const bad of [['a', 'b'], null, 'k=v']) await assert.rejects(ds.putAll(bad as never), code('InvalidValues'), String(bad));
    assert.equal(await ds.size(), 0);
    for (const good of ['a', 'A_z-0.9:x', 'x'.repeat(128)]) assert.equal((await m.openOrCreateDataset(good)).name, good);
  });

  test('keys are 1-1024 characters without NUL or lone surrogates; values are strings up to 1 MiB − 1 bytes', async () => {
    const ds = await manager().openOrCreateDataset('d');
    await assert.rejects(ds.put('', 'v'), code('InvalidKey'));
    await assert.rejects(ds.put('k'.repeat(1025), 'v'), code('InvalidKey'));
    await assert.rejects(ds.put('a\u0000b', 'v'), code('InvalidKey'));
    await assert.rejects(ds.put('\ud800', 'v'), code('InvalidKey'));
    await assert.rejects(ds.put('k', 42 as unknown as string), code('InvalidValue'));
    await assert.rejects(ds.put('k', null as unknown as string), code('InvalidValue'));
    await assert.rejects(ds.put('k', 'x\u0000'), code('InvalidValue'));
    await assert.rejects(ds.put('k', 'é'.repeat(524_288)), code('InvalidValue'), '1 MiB of UTF-8 is one byte too many');
    await ds.put('k'.repeat(1024), 'ok');
    assert.equal(await ds.sizeInBytes(), 1026);
    await ds.remove('k'.repeat(1024));
    await ds.put('k', 'x'.repeat(1024 * 1024 - 1));
    assert.equal(await ds.sizeInBytes(), 1024 * 1024, 'a one-byte key and the largest value fill the dataset exactly');
  });

  test('a dataset holds at most 1 MiB (UTF-8 key + value) and 1,024 live records; a failed putAll writes nothing', async () => {
    const ds = await manager().openOrCreateDataset('d');
    await ds.put('a', 'x'.repeat(1024 * 1024 - 10));
    await assert.rejects(ds.put('b', 'y'.repeat(10)), code('DatasetTooLarge'));
    await ds.put('b', 'y'.repeat(8));
    await ds.remove('a');
    const values = Object.fromEntries(Array.from({ length: 1023 }, (_, i) => [`k${i}`, 'v']));
    await ds.putAll(values);
    assert.equal(await ds.size(), 1024);
    await assert.rejects(ds.putAll({ extra: 'v', k0: 'changed' }), code('TooManyRecords'));
    assert.equal(await ds.get('k0'), 'v', 'the failed batch left nothing behind');
    await ds.remove('k1');
    await ds.put('extra', 'v');
  });

  test('an identity holds at most 20 datasets; limits are configurable', async () => {
    const m = manager();
    for (let i = 0; i < 20; i++) await m.openOrCreateDataset(`d${i}`);
    await assert.rejects(m.openOrCreateDataset('d20'), code('TooManyDatasets'));
    await m.openOrCreateDataset('d3');
    const roomy = manager({ maxDatasetsPerIdentity: 25, maxKeyLength: 2000 });
    for (let i = 0; i < 25; i++) await roomy.openOrCreateDataset(`d${i}`);
    await (await roomy.openOrCreateDataset('d0')).put('k'.repeat(2000), 'v');
  });

  test('utf8Length counts like Buffer.byteLength (lone surrogates as 3 bytes, pairs as 4)', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a😀b', '\ud800', '\udc00x', 'x'.repeat(1000) + '中文']) assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
  });

  test('the pool id must look like REGION:GUID and a store is required', () => {
    assert.throws(() => new SyncManager({ identityPoolId: 'nope', store: new MemoryStore() }), code('InvalidIdentityPoolId'));
    assert.throws(() => new SyncManager({ identityPoolId: 'us-east-1:0000', store: undefined as never }), code('MissingStore'));
  });
});
