// The log destination: lines are held until a batch is full or a flush, then reach the file whole and in order.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { BatchedLogDestination } from './log-destination.js';

describe('BatchedLogDestination', () => {
  let dir: string;
  let file: string;
  let fd: number;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cognisync-log-'));
    file = join(dir, 'log');
    fd = openSync(file, 'w');
  });
  afterEach(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  const line = (i: number) => `${JSON.stringify({ i, msg: 'request', note: 'é€' })}\n`;
  const flushed = (destination: BatchedLogDestination) => new Promise<void>((resolve, reject) => destination.flush((error) => (error ? reject(error) : resolve())));

  test('holds a few lines until a flush, then writes them in order', async () => {
    const destination = new BatchedLogDestination(fd);
    for (let i = 0; i < 3; i++) destination.write(line(i));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(readFileSync(file, 'utf8'), '', 'nothing written before the batch is full');
    await flushed(destination);
    assert.equal(readFileSync(file, 'utf8'), [0, 1, 2].map(line).join(''));
  });

  test('writes a full batch without a flush, and every line exactly once across batches (multi-byte text too)', async () => {
    const destination = new BatchedLogDestination(fd);
    const lines = Array.from({ length: 1000 }, (_, i) => line(i));
    for (const text of lines) destination.write(text);
    // 1000 lines of ~40 characters fill about nine batches; all but the last go out by themselves.
    const deadline = Date.now() + 2000;
    while (readFileSync(file, 'utf8').length < 30_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(readFileSync(file, 'utf8').length >= 30_000, 'full batches reached the file without a flush');
    await flushed(destination);
    assert.equal(readFileSync(file, 'utf8'), lines.join(''));
  });

  test('flushSync writes every held line before it returns (what the process does at exit)', async () => {
    const destination = new BatchedLogDestination(fd);
    const lines = Array.from({ length: 150 }, (_, i) => line(i));
    // Batches already handed over are written asynchronously; a write still in flight at exit is sonic-boom's,
    // as it was without this class. What flushSync guarantees is the lines held here.
    for (const text of lines.slice(0, 140)) destination.write(text);
    await flushed(destination);
    for (const text of lines.slice(140)) destination.write(text);
    destination.flushSync();
    assert.equal(readFileSync(file, 'utf8'), lines.join(''));
  });
});
