// A synchronize() cut off at any point — response lost, aborted, or the process killed with SIGKILL — loses
// nothing: the next sync (in a fresh process on the same SQLite file) converges without false conflicts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { DeleteDatasetCommand, ListRecordsCommand, UpdateRecordsCommand, type RecordPatch } from '@aws-sdk/client-cognito-sync';
import { NetworkError } from '../src/errors.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.ts';
import type { SynchronizeOptions } from '../src/sync-loop.ts';
import { createPool, developerCredentials, developerWrite, device, operationOf, serverValues, spyFetch, startServer, syncClient, type ServerProcess } from './support.ts';

let server: ServerProcess;
let poolId: string;
const dir = mkdtempSync(join(tmpdir(), 'cognisync-client-interrupted-'));

before(async () => {
  server = await startServer();
  poolId = await createPool(server);
});
after(async () => {
  assert.equal(await server.stop(), 0);
  rmSync(dir, { recursive: true, force: true });
});

/** Conflicts would mean the client mistook its own lost write for someone else's. */
const noConflicts: SynchronizeOptions = { onConflict: (conflicts) => assert.fail(`unexpected conflict on ${conflicts.map((c) => c.key).join(', ')}`) };

/** A device of a new identity whose next UpdateRecords answer is lost after the server committed it (at once, or once `loseNext()` is called). */
async function deviceLosingAnAnswer(armed = true) {
  const identityId = await device(server, poolId).identityId();
  let lose = armed;
  const { fetch, calls } = spyFetch({
    after(operation, _n, response) {
      if (operation === 'UpdateRecords' && lose) {
        lose = false;
        throw new TypeError('fetch failed: connection reset');
      }
      return response;
    },
  });
  return { identityId, manager: device(server, poolId, { identityId, fetch }), calls, loseNext: () => (lose = true) };
}

/** A device of a new identity whose next `holdNext(n)` UpdateRecords time out on it and reach the server when the test sends them (`late`). */
async function deviceWithLatePushes(datasetName: string) {
  const identityId = await device(server, poolId).identityId();
  const late: Array<() => Promise<Response>> = [];
  let held = 0;
  const fetchImpl: typeof fetch = async (input, init) => {
    if (held > 0 && operationOf(input as string, init) === 'UpdateRecords') {
      held--;
      late.push(() => fetch(input, init));
      throw new TypeError('fetch failed: timed out');
    }
    return fetch(input, init);
  };
  const ds = await device(server, poolId, { identityId, fetch: fetchImpl }).openOrCreateDataset(datasetName);
  return { identityId, ds, late, holdNext: (n: number) => (held = n) };
}

describe('a response lost or aborted after the server committed the push', () => {
  test('the next sync recognises its own write: no conflict, nothing pushed twice', async () => {
    const { identityId, manager } = await deviceLosingAnAnswer();
    const ds = await manager.openOrCreateDataset('lost');
    await ds.putAll({ a: '1', b: '2' });
    await assert.rejects(ds.synchronize(), NetworkError);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'lost'), { a: '1', b: '2' }, 'the server did commit');
    assert.equal((await ds.getRecord('a'))?.modified, true, 'locally still unacknowledged');

    const again = await ds.synchronize(noConflicts);
    assert.deepEqual([again.pushed, again.pulled, again.conflicts], [0, 0, 0]);
    assert.equal(await ds.hasPendingChanges(), false);
  });

  test('a local edit made after the lost response is pushed over the echo, not treated as a conflict', async () => {
    const { identityId, manager } = await deviceLosingAnAnswer();
    const ds = await manager.openOrCreateDataset('lost');
    await ds.put('k', 'first');
    await assert.rejects(ds.synchronize(), NetworkError);
    await ds.put('k', 'second');
    await ds.remove('gone-never-existed');
    const summary = await ds.synchronize(noConflicts);
    assert.equal(summary.pushed, 1);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'lost'), { k: 'second' });
    // Another device sees the final value.
    const other = await device(server, poolId, { identityId }).openOrCreateDataset('lost');
    await other.synchronize();
    assert.deepEqual(await other.getAll(), { k: 'second' });
  });

  test('the same for a key the server already had, when the next sync could push first: the lost write is pulled first, not overwritten in the journal', async () => {
    const { identityId, manager, calls, loseNext } = await deviceLosingAnAnswer(false);
    const ds = await manager.openOrCreateDataset('lost-synced');
    await ds.put('k', 'zero');
    await ds.synchronize(noConflicts);
    await ds.put('k', 'first');
    loseNext();
    await assert.rejects(ds.synchronize(), NetworkError);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'lost-synced'), { k: 'first' }, 'the server did commit');
    await ds.put('k', 'second');
    calls.length = 0;
    const summary = await ds.synchronize(noConflicts);
    assert.deepEqual([summary.pushed, summary.conflicts], [1, 0]);
    assert.deepEqual(calls, ['ListRecords', 'UpdateRecords'], 'an unacknowledged push is settled by a pull before anything is pushed');
    assert.deepEqual(await serverValues(server, poolId, identityId, 'lost-synced'), { k: 'second' });
  });

  test('a push given up on that lands after a later push of the record was sent: its echo is ours, and the later edit goes over it', async () => {
    const { identityId, ds, late, holdNext } = await deviceWithLatePushes('late');
    await ds.put('k', 'first');
    holdNext(2);
    await assert.rejects(ds.synchronize(), NetworkError);
    await ds.put('k', 'second');
    await assert.rejects(ds.synchronize(), NetworkError, 'pulls (nothing has landed), then pushes "second", which times out too');
    assert.equal((await late[0]!()).status, 200, 'the first push lands');
    assert.equal((await late[1]!()).status, 409, 'the second is refused: both were based on SyncCount 0');
    assert.deepEqual(await serverValues(server, poolId, identityId, 'late'), { k: 'first' });

    // The default resolution (remote wins) would have dropped "second" had the pull been taken for another device's write.
    const summary = await ds.synchronize(noConflicts);
    assert.deepEqual([summary.conflicts, summary.pushed], [0, 1]);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'late'), { k: 'second' });
    assert.equal(await ds.hasPendingChanges(), false);
  });

  // The server answers the removal of a key it never held without storing it, so the key's count stays 0 and a put
  // of it based on 0 that is still in flight is taken afterwards (QA, 2026-12-07).
  /** A dataset holding other=x: k=`value` pushed and given up on (still in flight: `late[0]`), then k removed and synced. */
  async function removedWhileItsPutIsLate(datasetName: string, value: string) {
    const device = await deviceWithLatePushes(datasetName);
    const { ds, holdNext } = device;
    await ds.put('other', 'x');
    await ds.synchronize();
    await ds.put('k', value);
    holdNext(1);
    await assert.rejects(ds.synchronize(), NetworkError);
    await ds.remove('k');
    await ds.synchronize(noConflicts);
    return device;
  }

  test('a new key pushed (given up on), then removed, the removal answered first, then the put lands: the key stays removed', async () => {
    const { identityId, ds, late } = await removedWhileItsPutIsLate('late-removed', 'secret');
    assert.equal(await ds.hasPendingChanges(), false);
    assert.equal((await late[0]!()).status, 200, 'the put lands after the removal');
    assert.deepEqual(await serverValues(server, poolId, identityId, 'late-removed'), { k: 'secret', other: 'x' });

    const summary = await ds.synchronize(noConflicts);
    assert.deepEqual([summary.conflicts, summary.changedKeys], [0, []], 'our own late put: not taken as a remote change');
    assert.deepEqual(await ds.getAll(), { other: 'x' });
    assert.deepEqual(await serverValues(server, poolId, identityId, 'late-removed'), { other: 'x' }, 'the removal is pushed again');
    assert.equal(await ds.hasPendingChanges(), false);
  });

  test('the same after the key was written and removed again in 4 more syncs: the late put is still recognised', async () => {
    const { identityId, ds, late } = await removedWhileItsPutIsLate('late-churned', 'secret');
    for (let i = 0; i < 4; i++) {
      await ds.put('k', `draft ${i}`);
      await ds.remove('k');
      await ds.synchronize(noConflicts);
    }
    assert.equal((await late[0]!()).status, 200);
    await ds.synchronize(noConflicts);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'late-churned'), { other: 'x' }, 'removals based on count 0 take no place in the journal');
  });

  test('the same, with the key written again before the late put lands: the new value goes over it, no conflict', async () => {
    const { identityId, ds, late } = await removedWhileItsPutIsLate('late-rewritten', 'old');
    await ds.put('k', 'new');
    assert.equal((await late[0]!()).status, 200);
    await ds.synchronize(noConflicts);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'late-rewritten'), { k: 'new', other: 'x' });
  });

  test('a new key whose push answer was lost, then removed, when the next sync could push first: the removal reaches the server', async () => {
    const { identityId, manager, loseNext } = await deviceLosingAnAnswer(false);
    const ds = await manager.openOrCreateDataset('lost-then-removed');
    await ds.put('keep', '1');
    await ds.synchronize(noConflicts);
    await ds.put('secret', 'my password');
    loseNext();
    await assert.rejects(ds.synchronize(), NetworkError);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'lost-then-removed'), { keep: '1', secret: 'my password' }, 'the server did commit');
    // Removed before any answer told this device the server has it: not a key that never reached the server.
    await ds.remove('secret');
    const summary = await ds.synchronize(noConflicts);
    assert.equal(summary.pushed, 1);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'lost-then-removed'), { keep: '1' });
    assert.deepEqual(await ds.getAll(), { keep: '1' });
    assert.equal(await ds.hasPendingChanges(), false);
  });

  test('an AbortSignal fired after the push was sent rejects with its reason; the next sync converges', async () => {
    const first = device(server, poolId);
    const identityId = await first.identityId();
    const controller = new AbortController();
    const { fetch } = spyFetch({
      after(operation, _n, response) {
        if (operation === 'UpdateRecords' && !controller.signal.aborted) {
          controller.abort(new Error('user navigated away'));
          throw controller.signal.reason;
        }
        return response;
      },
    });
    const m = device(server, poolId, { identityId, fetch });
    const ds = await m.openOrCreateDataset('aborted');
    await ds.put('k', 'v');
    await assert.rejects(ds.synchronize({ signal: controller.signal }), /user navigated away/);
    await developerWrite(server, poolId, identityId, 'aborted', 'other', 'x');
    const summary = await ds.synchronize(noConflicts);
    assert.deepEqual(summary.changedKeys, ['other']);
    assert.deepEqual(await ds.getAll(), { k: 'v', other: 'x' });
    assert.equal(await ds.hasPendingChanges(), false);
  });

  test('an AbortSignal ends a sync waiting for the lock another sync of the dataset holds (an onConflict dialog open)', async () => {
    const m = device(server, poolId);
    const identityId = await m.identityId();
    const ds = await m.openOrCreateDataset('waiting');
    await ds.put('k', 'base');
    await ds.synchronize(noConflicts);
    await developerWrite(server, poolId, identityId, 'waiting', 'k', 'remote');
    await ds.put('k', 'local');
    let dialogOpen!: () => void;
    const opened = new Promise<void>((resolve) => (dialogOpen = resolve));
    let closeDialog!: () => void;
    const holder = ds.synchronize({
      onConflict: async (conflicts) => {
        dialogOpen();
        await new Promise<void>((resolve) => (closeDialog = resolve));
        return conflicts.map((c) => c.resolveWithLocal());
      },
    });
    await opened;
    const controller = new AbortController();
    const waiting = ds.synchronize({ signal: controller.signal });
    await new Promise((r) => setTimeout(r, 100));
    const abortedAt = Date.now();
    controller.abort(new Error('user navigated away'));
    // The dialog stays open until the aborted sync has answered, or 2 s have passed (then the test fails).
    const late = setTimeout(() => closeDialog(), 2000);
    await assert.rejects(waiting, /user navigated away/);
    clearTimeout(late);
    assert.ok(Date.now() - abortedAt < 500, `rejected ${Date.now() - abortedAt} ms after the abort, with the lock still held`);
    closeDialog();
    await holder;
    assert.deepEqual(await serverValues(server, poolId, identityId, 'waiting'), { k: 'local' });
  });

  test('an AbortSignal already fired stops before any request', async () => {
    const m = device(server, poolId);
    await m.identityId();
    const ds = await m.openOrCreateDataset('aborted');
    await ds.put('k', 'v');
    await assert.rejects(ds.synchronize({ signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal((await ds.getRecord('k'))?.modified, true);
  });
});

/** A device on a MemoryStore (to set its records by hand) that synced `datasetName`, which holds `a`. */
async function syncedDataset(datasetName: string, value: string) {
  const identityId = await device(server, poolId).identityId();
  await developerWrite(server, poolId, identityId, datasetName, 'a', value);
  const store = new MemoryStore();
  const ds = await device(server, poolId, { identityId, credentials: developerCredentials, store }).openOrCreateDataset(datasetName);
  await ds.synchronize();
  return { identityId, store, ds };
}

describe('a remote deletion that a pull from 0 is not told about', () => {
  const deleteOnServer = (identityId: string, DatasetName: string) =>
    syncClient(server.endpoint).send(new DeleteDatasetCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName }));

  test('a sync cut between its push and the pull after it, then a deletion elsewhere: the next sync reports the deletion instead of failing for good', async () => {
    const identityId = await device(server, poolId).identityId();
    // The dataset's counter is past 0, so this device's first push is not acknowledged as count + 1 and pulls again.
    await developerWrite(server, poolId, identityId, 'n', 'other', '1');
    await deleteOnServer(identityId, 'n');
    let cutPull = false;
    const { fetch } = spyFetch({
      before(operation, n) {
        if (operation === 'ListRecords' && n === 2 && cutPull) throw new TypeError('fetch failed: connection reset');
      },
    });
    const a = device(server, poolId, { identityId, credentials: developerCredentials, fetch });
    const ds = await a.openOrCreateDataset('n');
    await ds.put('a', '1');
    cutPull = true;
    await assert.rejects(ds.synchronize(), NetworkError);
    assert.equal((await ds.getRecord('a'))?.modified, false, 'acknowledged');
    assert.equal((await ds.metadata())?.lastSyncCount, 0, 'but the count was never stored');
    await deleteOnServer(identityId, 'n');
    await ds.put('a', '2');
    const kept: string[] = [];
    const summary = await ds.synchronize({ onDatasetDeleted: (name) => (kept.push(name), false) });
    assert.deepEqual(kept, ['n']);
    assert.equal(summary.pushed, 1);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'n'), { a: '2' }, 'the edit reached the server');
  });

  test('synchronize({ force: true }) after a deletion elsewhere reports it and drops the deleted records', async () => {
    const identityId = await device(server, poolId).identityId();
    await developerWrite(server, poolId, identityId, 'forced', 'x', '1');
    const b = device(server, poolId, { identityId, credentials: developerCredentials });
    const ds = await b.openOrCreateDataset('forced');
    await ds.synchronize();
    assert.deepEqual(await ds.getAll(), { x: '1' });
    await deleteOnServer(identityId, 'forced');
    const summary = await ds.synchronize({ force: true });
    assert.equal(summary.datasetDeleted, true);
    assert.deepEqual(await ds.getAll(), {});
    await developerWrite(server, poolId, identityId, 'forced', 'z', '3');
    await (await b.openOrCreateDataset('forced')).synchronize();
    assert.deepEqual(await (await b.openOrCreateDataset('forced')).getAll(), { z: '3' }, 'only what the dataset created again holds');
  });

  test('a forced pull finding a record at a lower count than this device\'s (history the server lost, as after a restore) goes through onDatasetDeleted', async () => {
    const { identityId, store, ds } = await syncedDataset('rewound', 'server value');
    // This device holds `a` from a later time the server no longer has (its count is past the server's).
    const held = (await ds.getRecord('a'))!;
    await store.commit({ datasets: [{ identityId, datasetName: 'rewound', expect: [{ key: 'a', record: held }], put: [{ ...held, value: 'lost value', syncCount: held.syncCount + 5 }] }] });
    const asked: string[] = [];
    await ds.synchronize({ force: true, onDatasetDeleted: (name) => (asked.push(name), true) });
    assert.deepEqual(asked, ['rewound']);
    assert.deepEqual(await ds.getAll(), { a: 'server value' }, 'the device follows the server');
  });

  test('a removal held as synced for a key the server never had (left by an earlier client) goes without a question; an offline edit is pushed', async () => {
    const { identityId, store, ds } = await syncedDataset('marked', '1');
    const marker = { key: 'dropped', value: null, syncCount: 2, modified: false, deviceLastModifiedDate: 1, lastModifiedDate: 1, lastModifiedBy: identityId, pushing: null };
    await store.commit({ datasets: [{ identityId, datasetName: 'marked', expect: [{ key: 'dropped', record: undefined }], put: [marker] }] });
    await ds.put('a', 'offline edit');
    const asked: string[] = [];
    await ds.synchronize({ force: true, onDatasetDeleted: (name) => (asked.push(name), true) });
    assert.deepEqual(asked, []);
    assert.equal(await ds.getRecord('dropped'), undefined);
    assert.deepEqual(await serverValues(server, poolId, identityId, 'marked'), { a: 'offline edit' });
  });

  test('a forced pull of a copy holding only removals, of a dataset deleted elsewhere: the deletion is reported', async () => {
    const { identityId, ds } = await syncedDataset('removed-only', 'v');
    await ds.remove('a');
    await ds.synchronize();
    await syncClient(server.endpoint).send(new DeleteDatasetCommand({ IdentityPoolId: poolId, IdentityId: identityId, DatasetName: 'removed-only' }));
    const asked: string[] = [];
    const summary = await ds.synchronize({ force: true, onDatasetDeleted: (name) => (asked.push(name), true) });
    assert.deepEqual(asked, ['removed-only']);
    assert.equal(summary.datasetDeleted, true);
  });

  /** A new identity's dataset of more rows than a ListRecords page (1,024): 1,000 records, 100 of them removed (tombstones), then 100 more. */
  async function pagedDataset(datasetName: string): Promise<string> {
    const identityId = await device(server, poolId).identityId();
    const writer = device(server, poolId, { identityId, credentials: developerCredentials });
    const source = await writer.openOrCreateDataset(datasetName);
    await source.putAll(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${String(i).padStart(4, '0')}`, 'v'])));
    await source.synchronize();
    for (let i = 0; i < 100; i++) await source.remove(`k${String(i).padStart(4, '0')}`);
    await source.putAll(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`n${i}`, 'v'])));
    await source.synchronize();
    return identityId;
  }

  test('a dataset deleted while its first pull reads its pages: nothing of the earlier pages is kept', async () => {
    const identityId = await pagedDataset('paged');
    const { fetch } = spyFetch({ after: async (operation, n, response) => ((operation === 'ListRecords' && n === 1 && (await deleteOnServer(identityId, 'paged'))), response) });
    const reader = device(server, poolId, { identityId, credentials: developerCredentials, fetch });
    const ds = await reader.openOrCreateDataset('paged');
    await ds.synchronize();
    assert.deepEqual(await ds.getAll(), {});
  });

  test('a dataset deleted and created again while its first pull reads its pages: the pull starts over and keeps only the new one', async () => {
    const identityId = await pagedDataset('recreated');
    const recreate = async () => {
      await deleteOnServer(identityId, 'recreated');
      await developerWrite(server, poolId, identityId, 'recreated', 'fresh', 'new');
    };
    const { fetch, calls } = spyFetch({ after: async (operation, n, response) => ((operation === 'ListRecords' && n === 1 && (await recreate())), response) });
    const reader = device(server, poolId, { identityId, credentials: developerCredentials, fetch });
    const ds = await reader.openOrCreateDataset('recreated');
    await ds.synchronize();
    assert.deepEqual(await ds.getAll(), { fresh: 'new' });
    assert.deepEqual(await serverValues(server, poolId, identityId, 'recreated'), { fresh: 'new' });
    assert.equal(calls.filter((c) => c === 'ListRecords').length, 3, 'page one, the refused page two, the listing again');
  });
});

describe('a server that forgets old removals (tombstones past its bound)', () => {
  test('a record of page one removed meanwhile, its tombstone dropped: the pull starts over and the record goes', async () => {
    // 4 tombstones at most (3 kept), and room for more records than one page.
    const small = await startServer({ env: { COGNISYNC_LIMIT_TOMBSTONES_PER_DATASET: '4', COGNISYNC_LIMIT_RECORDS_PER_DATASET: '2000' } });
    try {
      const pool = await createPool(small);
      const identityId = await device(small, pool).identityId();
      // Written with the SDK: the client library keeps a dataset within AWS's 1,024 records.
      const sdk = syncClient(small.endpoint);
      const dataset = { IdentityPoolId: pool, IdentityId: identityId, DatasetName: 'paged' };
      const write = async (patches: RecordPatch[]) => {
        const token = (await sdk.send(new ListRecordsCommand({ ...dataset, MaxResults: 1 }))).SyncSessionToken!;
        return (await sdk.send(new UpdateRecordsCommand({ ...dataset, SyncSessionToken: token, RecordPatches: patches }))).Records!;
      };
      const keys = Array.from({ length: 1100 }, (_, i) => `k${String(i).padStart(4, '0')}`);
      await write(keys.slice(0, 1000).map((Key) => ({ Op: 'replace', Key, Value: 'v', SyncCount: 0 })));
      await write(keys.slice(1000).map((Key) => ({ Op: 'replace', Key, Value: 'v', SyncCount: 0 })));
      const churn = async () => {
        await write([{ Op: 'remove', Key: 'k0000', SyncCount: 1 }]); // returned on page one; its removal sorts after it
        await write(['k1000', 'k1001', 'k1002', 'k1003'].map((Key) => ({ Op: 'remove', Key, SyncCount: 2 }))); // five: k0000's, the oldest, is dropped
      };
      const { fetch, calls } = spyFetch({ after: async (operation, n, response) => ((operation === 'ListRecords' && n === 1 && (await churn())), response) });
      const reader = await device(small, pool, { identityId, credentials: developerCredentials, fetch }).openOrCreateDataset('paged');
      await reader.synchronize();
      assert.equal(await reader.get('k0000'), undefined, 'the removal is not lost');
      assert.deepEqual(await reader.getAll(), await serverValues(small, pool, identityId, 'paged'));
      assert.equal(calls.filter((c) => c === 'ListRecords').length, 4, 'page one, the refused page two, the listing again (two pages)');
    } finally {
      assert.equal(await small.stop(), 0);
    }
  });
  test('a device away while removals it had not seen were forgotten keeps its unsynced edits, without conflicts; the keys removed elsewhere go', async () => {
    const small = await startServer({ env: { COGNISYNC_LIMIT_TOMBSTONES_PER_DATASET: '4' } });
    try {
      const pool = await createPool(small);
      const identityId = await device(small, pool).identityId();
      const other = await device(small, pool, { identityId, credentials: developerCredentials }).openOrCreateDataset('away');
      await other.putAll({ keep: 'v', r1: 'v', r2: 'v', r3: 'v', r4: 'v', r5: 'v', r6: 'v' });
      await other.synchronize();
      const away = await device(small, pool, { identityId, credentials: developerCredentials }).openOrCreateDataset('away');
      await away.synchronize();
      await away.put('mine', 'offline');
      await away.put('keep', 'edited offline'); // a key nobody else changes
      for (const k of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) {
        await other.remove(k);
        await other.synchronize(); // six removals, one a write: the oldest ones are dropped
      }
      const asked: string[] = [];
      const summary = await away.synchronize({ onDatasetDeleted: (name) => (asked.push(name), true) });
      assert.deepEqual(asked, ['away']);
      assert.equal(summary.datasetDeleted, true);
      assert.deepEqual(await away.getAll(), { keep: 'edited offline', mine: 'offline' });
      assert.deepEqual(await serverValues(small, pool, identityId, 'away'), { keep: 'edited offline', mine: 'offline' });
      assert.equal(summary.conflicts, 0, 'the edit of keep was based on the version the server still has');
    } finally {
      assert.equal(await small.stop(), 0);
    }
  });
});

describe('a process killed with SIGKILL in the middle of synchronize()', () => {
  const source = (file: string) => JSON.stringify(new URL(`../src/${file}`, import.meta.url).pathname);

  /** Runs a child that writes `values`, syncs, and hangs at `stopAt` ("before:Op" or "after:Op"); then kills it. */
  async function killChildAt(stopAt: string, path: string, identityId: string, values: Record<string, string>) {
    const script = `
      import { SyncManager } from ${source('sync-manager.ts')};
      import { SqliteStore } from ${source('stores/sqlite/sqlite-store.ts')};
      setInterval(() => {}, 1000);
      const stopAt = ${JSON.stringify(stopAt)};
      const operation = (input, init) => {
        const target = new Headers(init?.headers).get('x-amz-target');
        if (target) return target.split('.').pop();
        const path = new URL(input).pathname;
        return path.endsWith('/records') ? 'ListRecords' : init?.method === 'POST' ? 'UpdateRecords' : init?.method ?? 'GET';
      };
      const hang = (where) => { console.log('stopped ' + where); return new Promise(() => {}); };
      const wrapped = async (input, init) => {
        const op = operation(input, init);
        if (stopAt === 'before:' + op) await hang(stopAt);
        const response = await fetch(input, init);
        if (stopAt === 'after:' + op) { await response.clone().text(); await hang(stopAt); }
        return response;
      };
      const store = new SqliteStore(${JSON.stringify(path)});
      const manager = new SyncManager({ identityPoolId: ${JSON.stringify(poolId)}, endpoint: ${JSON.stringify(server.endpoint)}, identityId: ${JSON.stringify(identityId)}, store, fetch: wrapped });
      const ds = await manager.openOrCreateDataset('journal');
      await ds.putAll(${JSON.stringify(values)});
      console.log('written');
      await ds.synchronize();
      console.log('synced');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        lines.push(line);
        if (line.startsWith('stopped')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before stopping at ${stopAt}; output: ${lines.join(' | ')}`)));
    });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.deepEqual(lines, ['written', `stopped ${stopAt}`]);
  }

  for (const stopAt of ['after:ListRecords', 'before:UpdateRecords', 'after:UpdateRecords']) {
    test(`killed at ${stopAt}: a fresh process on the same SQLite file converges with nothing lost`, async () => {
      const identityId = await device(server, poolId).identityId();
      await developerWrite(server, poolId, identityId, 'journal', 'remote', 'r1');
      const path = join(dir, `${stopAt.replace(':', '-')}.db`);
      await killChildAt(stopAt, path, identityId, { a: 'A', b: 'B' });

      const store = new SqliteStore(path);
      const restarted = device(server, poolId, { identityId, store });
      const ds = await restarted.openOrCreateDataset('journal');
      assert.deepEqual(await ds.getAll(), { a: 'A', b: 'B', ...(stopAt === 'after:ListRecords' ? {} : { remote: 'r1' }) }, 'the killed process’s committed local state');
      await ds.put('b', 'B2'); // edited after the restart, before syncing again
      const summary = await ds.synchronize(noConflicts);
      assert.equal(summary.conflicts, 0);
      const expected = { a: 'A', b: 'B2', remote: 'r1' };
      assert.deepEqual(await ds.getAll(), expected);
      assert.deepEqual(await serverValues(server, poolId, identityId, 'journal'), expected);
      assert.equal(await ds.hasPendingChanges(), false);
      const other = await device(server, poolId, { identityId }).openOrCreateDataset('journal');
      await other.synchronize();
      assert.deepEqual(await other.getAll(), expected);
      await store.close();
    });
  }
});
