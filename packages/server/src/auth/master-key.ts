// The server master key: the root from which issued credential secrets are derived and with which the
// OpenID signing key is sealed. It never enters the database, so a copy of the database alone signs nothing.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** COGNISYNC_MASTER_KEY's prefix for a master.key file's content (`base64:$(cat data/master.key)`). */
const FILE_KEY_PREFIX = 'base64:';

/**
 * COGNISYNC_MASTER_KEY when set (any string, hashed to the key; every process sharing a database must use the same
 * one; or `base64:` and a master.key file's content, taken as it is), else `<dataDir>/master.key`, created on first
 * start with mode 0600.
 */
export function loadMasterKey(dataDir: string, fromEnv: string | undefined): Buffer {
  if (fromEnv?.startsWith(FILE_KEY_PREFIX)) {
    // A master.key file's content, given as the variable: the same key, so a deployment that began with the file (the
    // default) can move to the variable, as several processes on one PostgreSQL database need.
    const key = Buffer.from(fromEnv.slice(FILE_KEY_PREFIX.length).trim(), 'base64');
    if (key.length !== 32) throw new Error(`COGNISYNC_MASTER_KEY=${FILE_KEY_PREFIX}… must hold a master.key file's content: 32 bytes in base64`);
    return key;
  }
  if (fromEnv) return createHash('sha256').update(fromEnv).digest();
  const file = join(dataDir, 'master.key');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    createDurably(file, randomBytes(32).toString('base64'));
    chmodSync(file, 0o600);
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return key;
}

/**
 * Creates `file` holding `text`, on disk before it returns: the database soon depends on the key (the OpenID key is
 * sealed with it), and a file created without fsync can be empty after a power loss while SQLite's fsynced
 * database survives (QA: ext4 left master.key at 0 bytes, and no server could start on the data dir). Written to a
 * temporary file and fsynced, then linked into place (which fails if another process created it first: theirs is
 * used), then the directory is fsynced.
 */
function createDurably(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, file);
  } catch (error) {
    // Another process created it first; use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
  const directory = openSync(dirname(file), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}
