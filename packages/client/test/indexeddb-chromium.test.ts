// IndexedDbStore in real Chromium (Debian's /usr/bin/chromium driven by playwright-core): the LocalStore contract,
// Web Locks between two tabs, and a SyncManager syncing from a page. Skipped when Chromium is not installed.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { storeContract } from './store-contract.ts';
import { createPool, serverValues, startServer, type ServerProcess } from './support.ts';
import type { BrowserTestApi } from './browser/page.ts';

const chromiumPath = '/usr/bin/chromium';
const skip = existsSync(chromiumPath) ? false : `${chromiumPath} is not installed (apt-get install chromium)`;

let server: ServerProcess;
let site: Server;
let origin: string;
let browser: Browser;
/** One context = one origin's storage, shared by its tabs (a new context per page would isolate them). */
let context: BrowserContext;

/**
 * Serves the bundled page at /__test/ and forwards everything else to cognisync with the Host header unchanged,
 * so the page calls the API on its own origin (no CORS involved) and the SigV4 signature still matches.
 */
async function startSite(bundle: string): Promise<Server> {
  const upstream = new URL(server.endpoint);
  const httpServer = createServer((req, res) => {
    if (req.url === '/__test/') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/__test/page.js"></script>');
    if (req.url === '/__test/page.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    const proxied = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    proxied.on('error', () => res.writeHead(502).end());
    req.pipe(proxied);
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return httpServer;
}

async function openPage(): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(`${origin}/__test/`);
  await page.waitForFunction(() => 'cognisyncTest' in globalThis);
  return page;
}

/** Calls a function of the page's test API. */
function call<K extends keyof BrowserTestApi>(page: Page, name: K, ...args: Parameters<BrowserTestApi[K]>): Promise<Awaited<ReturnType<BrowserTestApi[K]>>> {
  return page.evaluate(([n, a]) => (globalThis as any).cognisyncTest[n](...a), [name, args] as const) as never;
}

describe('IndexedDbStore in Chromium', { skip }, () => {
  before(async () => {
    const bundled = await build({
      entryPoints: [fileURLToPath(new URL('./browser/page.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
    });
    server = await startServer();
    site = await startSite(bundled.outputFiles[0]!.text);
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-extensions', '--no-first-run'],
    });
    context = await browser.newContext();
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.close(resolve));
    if (server) assert.equal(await server.stop(), 0);
  });

  test('passes the same LocalStore contract as under fake-indexeddb', async () => {
    const page = await openPage();
    const results = await call(page, 'runContract');
    assert.deepEqual(results.map((r) => r.name), storeContract.map((c) => c.name));
    assert.deepEqual(results.filter((r) => r.error), []);
    await page.close();
  });

  test('a lock held in one tab (Web Locks) makes the other tab wait, and frees when released or the tab closes', async () => {
    const a = await openPage();
    const b = await openPage();
    await call(a, 'hold', 'locks', 'sync:x');
    assert.equal(await call(b, 'tryLock', 'locks', 'sync:x', 200), 'LockTimeoutError');
    assert.equal(await call(b, 'tryLock', 'locks', 'sync:other', 200), 'acquired');
    await call(a, 'release');
    assert.equal(await call(b, 'tryLock', 'locks', 'sync:x', 2000), 'acquired');
    await call(a, 'hold', 'locks', 'sync:x');
    await a.close();
    assert.equal(await call(b, 'tryLock', 'locks', 'sync:x', 5000), 'acquired', 'closing the tab released its lock');
    await b.close();
  });

  test('a store whose database is deleted (a logout in another tab) opens it again instead of failing for good', async () => {
    const page = await openPage();
    assert.equal(await call(page, 'afterDeletion', 'deleted'), 'undefined/2');
    await page.close();
  });

  test('a SyncManager on IndexedDB syncs from the page, and its data and identity survive a reload', async () => {
    const poolId = await createPool(server);
    const page = await openPage();
    const written = await call(page, 'writeAndSync', poolId, 'app', { theme: 'dark', 'ünï': '😀' });
    assert.equal(written.pushed, 2);
    assert.deepEqual(await serverValues(server, poolId, written.identityId, 'browser'), { theme: 'dark', 'ünï': '😀' });
    await page.reload();
    await page.waitForFunction(() => 'cognisyncTest' in globalThis);
    const read = await call(page, 'read', poolId, 'app');
    assert.deepEqual(read, { identityId: written.identityId, all: { theme: 'dark', 'ünï': '😀' }, pending: false });
    await page.close();
  });
});
