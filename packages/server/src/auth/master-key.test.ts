// The master key file: created once, durably (fsynced, then linked into place), and the same on every later load.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadMasterKey } from './master-key.js';

test('the key file is created with mode 0600, leaves no temporary file, and loads the same key again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cognisync-master-key-'));
  try {
    const dataDir = join(dir, 'data');
    const first = loadMasterKey(dataDir, undefined);
    assert.equal(first.length, 32);
    assert.deepEqual(readdirSync(dataDir), ['master.key']);
    assert.equal(statSync(join(dataDir, 'master.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadMasterKey(dataDir, undefined), first);
    assert.notDeepEqual(loadMasterKey(join(dir, 'other'), undefined), first);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the key reaches the disk before it is used: the file and its directory are fsynced (strace)', { skip: spawnSync('strace', ['-V']).status !== 0 && 'strace is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cognisync-master-key-'));
  try {
    const script = `import { loadMasterKey } from ${JSON.stringify(new URL('./master-key.ts', import.meta.url).pathname)}; loadMasterKey(${JSON.stringify(dir)}, undefined);`;
    const traced = spawnSync('strace', ['-f', '-e', 'trace=fsync,link,linkat', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(traced.status, 0, traced.stderr);
    const calls = traced.stderr.split('\n').filter((line) => /fsync\(|link(at)?\(/.test(line));
    assert.ok(calls.filter((line) => line.includes('fsync(')).length >= 2, calls.join('\n'));
    assert.ok(calls.some((line) => line.includes('master.key"')), calls.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('COGNISYNC_MASTER_KEY=base64:<the file> is the file\'s key; any other value is hashed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cognisync-master-key-'));
  try {
    const fromFile = loadMasterKey(dir, undefined);
    const content = readFileSync(join(dir, 'master.key'), 'utf8');
    assert.deepEqual(loadMasterKey(join(dir, 'elsewhere'), `base64:${content}`), fromFile);
    assert.notDeepEqual(loadMasterKey(join(dir, 'elsewhere'), content), fromFile, 'without the prefix the text is hashed (as ever)');
    assert.throws(() => loadMasterKey(dir, 'base64:c2hvcnQ='), /32 bytes in base64/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
