// One process per SQLite data dir. A second server on the same files would run a second outbox worker and WAL
// checkpointer, and its writes would never reach the first one's live streams (decisions.md: SQLite is for one
// process; several share PostgreSQL). The lock is SQLite's own exclusive lock on a small file next to the
// database, so the operating system drops it when the process ends, however it ends: no stale lock to clean up.
import Database from 'better-sqlite3';

export class DataDirInUseError extends Error {}

/** Holds `filename` exclusively until the returned connection is closed (or the process ends). */
export function lockDataDir(filename: string, dataDir: string): Database.Database {
  const lock = new Database(filename);
  try {
    lock.pragma('busy_timeout = 0');
    lock.pragma('locking_mode = EXCLUSIVE');
    // Never committed: the open write transaction keeps the exclusive lock on the file.
    lock.exec('BEGIN EXCLUSIVE');
    return lock;
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      throw new DataDirInUseError(`the data dir ${dataDir} is in use by another cognisync process (SQLite serves one process; run several on PostgreSQL)`);
    }
    throw error;
  }
}
