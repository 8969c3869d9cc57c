// Live sync against the real server: another device's change arrives without synchronize(), this device's own
// changes cost no extra sync, a dropped stream (server restart) reconnects and catches up, and stop() leaves
// nothing running. Plus the Server-Sent Events parser on streams split at every possible point.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import type { LiveSyncChange, LiveSyncOptions } from '../src/live-sync.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { ServerSentEventParser, type ServerSentEvent } from '../src/transport/server-sent-events.ts';
import { createPool, developerWrite, device, startServer, type ServerProcess } from './support.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 10 ms; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * A fetch that counts ListRecords per dataset (each synchronize() starts with one) and live stream requests, records
 * UpdateRecords bodies, and can hold requests back or delay UpdateRecords' answers.
 */
function countingFetch() {
  const listRecords = new Map<string, number>();
  const updateBodies: Array<Record<string, unknown>> = [];
  const control = {
    liveRequests: 0,
    /** While set, requests wait for it (or their abort). */
    hold: undefined as Promise<void> | undefined,
    /** Delay before UpdateRecords' answer reaches the client (the server has committed, its event is on the way). */
    updateAnswerDelayMs: 0,
  };
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const signal = init?.signal;
    if (control.hold) await Promise.race([control.hold, ...(signal ? [new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))] : [])]);
    if (url.pathname.startsWith('/live/')) control.liveRequests++;
    const records = /\/datasets\/([^/]+)\/records$/.exec(url.pathname);
    if (records) listRecords.set(decodeURIComponent(records[1]!), (listRecords.get(decodeURIComponent(records[1]!)) ?? 0) + 1);
    const isUpdate = init?.method === 'POST' && /\/datasets\/[^/]+$/.test(url.pathname);
    if (isUpdate) updateBodies.push(JSON.parse(String(init!.body)));
    const response = await fetch(input, init);
    if (isUpdate && control.updateAnswerDelayMs) await sleep(control.updateAnswerDelayMs);
    return response;
  };
  return { fetch: fetchImpl, syncs: (dataset: string) => listRecords.get(dataset) ?? 0, updateBodies, control };
}

/** startLiveSync with short delays, collecting changes, errors and connection changes. */
function watch(manager: ReturnType<typeof device>, options: LiveSyncOptions = {}) {
  const changes: LiveSyncChange[] = [];
  const errors: Array<{ error: Error; datasetName?: string }> = [];
  const connections: boolean[] = [];
  const live = manager.startLiveSync({
    debounceMs: 20,
    heartbeatTimeoutMs: 5_000,
    reconnect: { baseDelayMs: 50, maxDelayMs: 250 },
    onChange: (change) => void changes.push(change),
    onError: (error, context) => void errors.push({ error, ...context }),
    onConnectionChange: (connected) => void connections.push(connected),
    ...options,
  });
  return { live, changes, errors, connections };
}

describe('live sync against the real server', () => {
  let server: ServerProcess;
  let poolId: string;
  before(async () => {
    server = await startServer({ env: { COGNISYNC_LIVE_HEARTBEAT_MS: '200' } });
    poolId = await createPool(server);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  for (const signing of ['header', 'presigned-url'] as const) {
    test(`another device's change reaches this one without synchronize(); this device's own changes cost no extra sync (${signing} signing)`, { timeout: 30_000 }, async () => {
      const spy = countingFetch();
      const a = device(server, poolId, { fetch: spy.fetch });
      const identityId = await a.identityId();
      const b = device(server, poolId, { identityId });
      const da = await a.openOrCreateDataset('settings');
      const { live, changes, errors } = watch(a, { signing });
      try {
        await waitFor(() => live.connected, 'the stream to open');
        // On connecting, live sync catches up once on every opened dataset.
        await waitFor(() => spy.syncs('settings') === 1, 'the catch-up sync');

        const db = await b.openOrCreateDataset('settings');
        await db.put('theme', 'dark');
        const written = Date.now();
        await db.synchronize();
        await waitFor(async () => (await da.get('theme')) === 'dark', "B's value on A", 3_000);
        const latency = Date.now() - written;
        await waitFor(() => changes.length === 1, 'onChange');
        assert.equal(spy.syncs('settings'), 2, 'one sync for the announced change');
        assert.deepEqual(changes.map((c) => [c.datasetName, c.cause, c.summary.changedKeys]), [['settings', 'change', ['theme']]]);
        assert.ok(latency < 2_000, `arrived after ${latency} ms`);

        // A's own write: its change event arrives while A's synchronize() is still waiting for UpdateRecords' answer,
        // when A's lastSyncCount does not show it yet. Only the DeviceId tells it is A's own.
        spy.control.updateAnswerDelayMs = 300;
        await da.put('lang', 'fr');
        await da.synchronize();
        spy.control.updateAnswerDelayMs = 0;
        await sleep(300);
        assert.equal(spy.syncs('settings'), 3, 'only the explicit synchronize(): no sync for its own change');
        const sent = spy.updateBodies.at(-1)!;
        assert.equal(sent.DeviceId, await a.deviceId(), 'UpdateRecords carries the device id');

        // A dataset A never opened is not synchronized (nor created locally).
        await developerWrite(server, poolId, identityId, 'elsewhere', 'x', '1');
        await db.put('theme', 'light');
        await db.synchronize();
        await waitFor(async () => (await da.get('theme')) === 'light', 'the second change on A', 3_000);
        assert.equal(spy.syncs('elsewhere'), 0);
        assert.equal(await a.store.getDataset(identityId, 'elsewhere'), undefined);
        assert.deepEqual(errors, []);
      } finally {
        await live.stop();
      }
      assert.equal(live.connected, false);
    });
  }

  test('a burst of changes is debounced into few syncs, never two of one dataset at once', { timeout: 30_000 }, async () => {
    const spy = countingFetch();
    const a = device(server, poolId, { fetch: spy.fetch });
    const identityId = await a.identityId();
    const da = await a.openOrCreateDataset('burst');
    // Counts syncs in flight through the store's sync lock, which live sync and the app share.
    let running = 0;
    let overlapped = false;
    const withLock = a.store.withLock.bind(a.store);
    a.store.withLock = (name, fn, options) =>
      withLock(name, async () => {
        if (++running > 1) overlapped = true;
        try {
          return await fn();
        } finally {
          running--;
        }
      }, options);
    const { live, errors } = watch(a, { debounceMs: 150, datasets: ['burst'] });
    try {
      await waitFor(() => live.connected && spy.syncs('burst') === 1, 'the catch-up sync');
      for (let i = 1; i <= 5; i++) await developerWrite(server, poolId, identityId, 'burst', `k${i}`, String(i));
      await waitFor(async () => (await da.get('k5')) === '5', 'the last change', 5_000);
      await sleep(300);
      const syncs = spy.syncs('burst') - 1;
      assert.ok(syncs >= 1 && syncs <= 3, `${syncs} syncs for 5 changes`);
      assert.deepEqual(await da.getAll(), { k1: '1', k2: '2', k3: '3', k4: '4', k5: '5' });
      assert.equal(overlapped, false);
      assert.deepEqual(errors, []);
    } finally {
      await live.stop();
    }
  });

  test('after changeIdentity() the stream follows the new identity, without an error', { timeout: 30_000 }, async () => {
    const a = device(server, poolId);
    await a.identityId();
    const other = device(server, poolId);
    const newIdentityId = await other.identityId();
    const da = await a.openOrCreateDataset('moving');
    const { live, errors, connections } = watch(a);
    try {
      await waitFor(() => live.connected, 'the stream to open');
      await a.changeIdentity(newIdentityId);
      await waitFor(() => connections.length === 3 && live.connected, 'a stream for the new identity');
      const db = await other.openOrCreateDataset('moving');
      await db.put('k', 'v');
      await db.synchronize();
      await waitFor(async () => (await da.get('k')) === 'v', "the new identity's change on A", 3_000);
      assert.deepEqual(errors, []);
    } finally {
      await live.stop();
    }
  });

  test('a dataset this device deleted is not brought back by the deletion event or a catch-up', { timeout: 30_000 }, async () => {
    const spy = countingFetch();
    const a = device(server, poolId, { fetch: spy.fetch });
    const identityId = await a.identityId();
    const ds = await a.openOrCreateDataset('temporary');
    await ds.put('k', 'v');
    await ds.synchronize();
    const { live, errors } = watch(a);
    try {
      await waitFor(() => live.connected && spy.syncs('temporary') === 2, 'the catch-up sync');
      await ds.delete();
      await ds.synchronize();
      await sleep(300); // the DeleteDataset event (no DeviceId) has arrived and been handled
      assert.equal(await a.store.getDataset(identityId, 'temporary'), undefined);
      assert.equal(spy.syncs('temporary'), 2);
      assert.deepEqual(errors, []);
    } finally {
      await live.stop();
    }
  });

  test('the device id is made once per store and kept; the deviceId option overrides it', async () => {
    const store = new MemoryStore();
    const first = device(server, poolId, { store });
    const second = device(server, poolId, { store });
    const id = await first.deviceId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(await second.deviceId(), id, 'managers sharing a store are one device');
    assert.notEqual(await device(server, poolId).deviceId(), id);
    assert.equal(await device(server, poolId, { store, deviceId: 'my-phone' }).deviceId(), 'my-phone');
  });

  test('stop() leaves nothing running: a process that stops live sync exits by itself', { timeout: 30_000 }, async () => {
    const a = device(server, poolId);
    const identityId = await a.identityId();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'live-stop-child.ts'), server.endpoint, poolId, identityId], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line === 'connected') void developerWrite(server, poolId, identityId, 'child', 'k', 'v');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, `the child did not exit by itself (killed after 20 s?); stdout: ${lines.join(' | ')}; stderr: ${stderr}`);
    assert.deepEqual(lines, ['connected', 'changed k', 'stopped connected=false']);
  });
});

describe('live sync across a server restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cognisync-client-live-'));
  // Identity credentials live 1 s: the reconnection must sign with new ones, not those of the first connection.
  const env = { COGNISYNC_MASTER_KEY: 'client-live-restart-test', COGNISYNC_LIVE_HEARTBEAT_MS: '200', COGNISYNC_CREDENTIALS_TTL_SECONDS: '1' };
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('the stream drops, live sync reconnects with backoff and fresh credentials, and catches up on what changed meanwhile', { timeout: 60_000 }, async () => {
    let server = await startServer({ dataDir, env });
    const port = new URL(server.endpoint).port;
    const poolId = await createPool(server);
    const spy = countingFetch();
    const a = device(server, poolId, { fetch: spy.fetch });
    const identityId = await a.identityId();
    const da = await a.openOrCreateDataset('notes');
    const { live, changes, errors, connections } = watch(a);
    try {
      await waitFor(() => live.connected && spy.syncs('notes') === 1, 'the first connection and its catch-up sync');

      // SIGTERM ends open streams; live sync's reconnection attempts fail while the server is down.
      assert.equal(await server.stop(), 0);
      await waitFor(() => !live.connected, 'the stream to drop');
      await waitFor(() => errors.length >= 2, 'failed reconnection attempts');
      // Hold A's requests while the server restarts, so that B's write certainly falls into the gap: no event
      // will announce it. (Holding also keeps A away from the restarting server's startup; see the report on it.)
      let release!: () => void;
      spy.control.hold = new Promise((resolve) => (release = resolve));
      const attemptsBefore = spy.control.liveRequests;
      server = await startServer({ dataDir, env, args: ['--port', port] });
      const b = device(server, poolId, { identityId });
      const db = await b.openOrCreateDataset('notes');
      await db.put('written-in-the-gap', 'yes');
      await db.synchronize();
      await sleep(1_100); // the credentials of the first connection have expired by now
      spy.control.hold = undefined;
      release();

      await waitFor(async () => (await da.get('written-in-the-gap')) === 'yes', 'the catch-up after reconnecting', 10_000);
      assert.equal(live.connected, true);
      assert.ok(spy.control.liveRequests > attemptsBefore);
      assert.deepEqual(connections.slice(0, 2), [true, false]);
      assert.equal(connections.at(-1), true);
      assert.ok(changes.some((c) => c.cause === 'catch-up' && c.summary.changedKeys.includes('written-in-the-gap')));
      assert.ok(errors.every((e) => e.datasetName === undefined || e.error.name === 'NetworkError'), errors.map((e) => `${e.error.name}: ${e.error.message}`).join('\n'));

      // And the new stream delivers changes again.
      await db.put('after', 'reconnect');
      await db.synchronize();
      await waitFor(async () => (await da.get('after')) === 'reconnect', 'a change on the new stream', 3_000);
    } finally {
      await live.stop();
      await server.stop();
    }
  });
});

describe('Server-Sent Events parser', () => {
  const stream = ': connected\n\nid: 3\ndata: {"a":1}\n\n: keep-alive\n\r\nevent: note\r\ndata: line one\r\ndata:line two\r\n\r\nid: 4\n\ndata\n\nretry: 10\n\n';
  const expected: ServerSentEvent[] = [
    { event: 'message', data: '{"a":1}', id: '3' },
    { event: 'note', data: 'line one\nline two', id: '3' },
    { event: 'message', data: '', id: '4' },
  ];

  test('comments, CRLF and LF line ends, multi-line data, ids; blocks without data dispatch nothing', () => {
    assert.deepEqual(new ServerSentEventParser().push(stream), expected);
  });

  test('the same events however the stream is split into chunks (also inside a CRLF)', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j += 7) {
        const parser = new ServerSentEventParser();
        const events = [...parser.push(stream.slice(0, i)), ...parser.push(stream.slice(i, j)), ...parser.push(stream.slice(j))];
        assert.deepEqual(events, expected, `split at ${i} and ${j}`);
      }
    }
    const parser = new ServerSentEventParser();
    assert.deepEqual([...stream].flatMap((c) => parser.push(c)), expected, 'one character at a time');
  });

  test('a BOM at the start is dropped; a lone CR ends a line; an unfinished event waits for its blank line', () => {
    const parser = new ServerSentEventParser();
    assert.deepEqual(parser.push('\uFEFFdata: x\r\rdata: y'), [{ event: 'message', data: 'x', id: '' }]);
    assert.deepEqual(parser.push('\n'), []);
    assert.deepEqual(parser.push('\n'), [{ event: 'message', data: 'y', id: '' }]);
  });

  test('UTF-8 split across network chunks stays whole through a streaming TextDecoder', () => {
    const bytes = new TextEncoder().encode('data: {"datasetName":"été 🎉"}\n\n');
    for (let i = 1; i < bytes.length; i++) {
      const decoder = new TextDecoder();
      const parser = new ServerSentEventParser();
      const events = [...parser.push(decoder.decode(bytes.slice(0, i), { stream: true })), ...parser.push(decoder.decode(bytes.slice(i), { stream: true }))];
      assert.deepEqual(events.map((e) => JSON.parse(e.data)), [{ datasetName: 'été 🎉' }], `split at byte ${i}`);
    }
  });
});

describe('live sync from a device whose clock is off', () => {
  test('the stream, opened before any sync, learns the offset from its refusal and connects (both signings)', { timeout: 30_000 }, async () => {
    const server = await startServer();
    const realNow = Date.now;
    try {
      const pool = await createPool(server);
      for (const signing of ['header', 'presigned-url'] as const) {
        const m = device(server, pool);
        await m.identityId();
        await m.openOrCreateDataset('clock');
        Date.now = () => realNow() + (signing === 'header' ? 20 : -20) * 60_000;
        const { live, errors } = watch(m, { signing });
        try {
          await waitFor(() => live.connected, `the stream to open (${signing})`);
          assert.deepEqual(errors, []);
        } finally {
          await live.stop();
          Date.now = realNow;
        }
      }
      // Back on the right clock, the next request learns that too.
      await (await device(server, pool).openOrCreateDataset('clock')).synchronize();
    } finally {
      Date.now = realNow;
      await server.stop();
    }
  });
});
