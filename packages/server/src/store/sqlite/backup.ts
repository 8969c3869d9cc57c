// `cognisync backup`: a consistent copy of a live SQLite database through SQLite's online backup API
// (the server may keep running), marked as restored (core/restore.ts) so that it is ready to be one. PostgreSQL
// deployments use pg_dump and pg_restore (the restore is found at the next start; `cognisync mark-restored` after
// a --data-only one).
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../../config.js';
import { SqliteStore } from './sqlite-store.js';

export async function backupSqlite(config: Config, destination: string): Promise<number> {
  if (config.databaseUrl) {
    throw new Error(
      `cognisync backup copies the SQLite store; for PostgreSQL use: pg_dump --format=custom --file=${destination} '${config.databaseUrl.replace(/:[^:@/]*@/, ':***@')}' (a pg_restore into a new database or with --clean is found and marked at the next start; after a --data-only restore run cognisync mark-restored)`,
    );
  }
  const source = join(config.dataDir, 'cognisync.db');
  if (!existsSync(source)) throw new Error(`no database at ${source}`);
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    // The backup holds the developer and SyncSessionToken secrets in clear (decisions.md), so the file is created
    // 0600 before SQLite writes to it (SQLite itself would create it 0644 under umask 022, and gives its -journal
    // the same mode). 'wx' also refuses an existing file atomically: never overwrite, never chmod, someone's file.
    try {
      closeSync(openSync(destination, 'wx', 0o600));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${destination} already exists; choose a new file`);
      throw error;
    }
    try {
      // All pages in one step, under one read transaction: copied 100 pages at a time (the default), every write
      // the server commits in between restarts the copy, so a busy server could keep a large backup from ever finishing.
      const result = await db.backup(destination, { progress: () => 0x7fffffff });
      // The copy is only ever used as a restore: its SyncCounts jump ahead now, so that devices which sync after
      // this moment are recognised once it is restored (a copy of a store not yet migrated is migrated first).
      const copy = new SqliteStore({ filename: destination });
      try {
        await copy.migrate();
        await copy.markRestored(Date.now());
      } finally {
        await copy.close();
      }
      return result.totalPages;
    } catch (error) {
      // We created the file, so a failed copy leaves nothing half-written behind.
      rmSync(destination, { force: true });
      throw error;
    }
  } finally {
    db.close();
  }
}
