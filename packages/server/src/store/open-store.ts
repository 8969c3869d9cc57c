// Chooses the store for a configuration: SQLite under the data dir by default, PostgreSQL for a postgres:// URL.
import { join } from 'node:path';
import type { Config } from '../config.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

export interface OpenStoreEvents {
  /** An idle PostgreSQL connection failed (the pool replaces it). */
  onBackgroundError?: (error: Error) => void;
  /** The PostgreSQL database was found restored or copied since it was last opened, and was marked restored. */
  onMarkedRestored?: (note: string) => void;
}

export async function openStore(config: Config, events: OpenStoreEvents = {}): Promise<Store> {
  if (config.databaseUrl) {
    if (!/^postgres(ql)?:\/\//.test(config.databaseUrl)) throw new Error(`--database-url (or DATABASE_URL) must be a postgres:// or postgresql:// URL, got '${config.databaseUrl.replace(/:[^:@/]*@/, ':***@')}'`);
    const store = new PostgresStore({ connectionString: config.databaseUrl, maxConnections: config.databaseMaxConnections, queryTimeoutMs: config.databaseQueryTimeoutMs, ...events });
    try {
      await store.migrate();
    } catch (error) {
      await store.close().catch(() => undefined);
      // Say which database (password masked): the driver's own message names only an address or a code.
      throw new Error(`cannot use the database at ${config.databaseUrl.replace(/:[^:@/]*@/, ':***@')}: ${(error as Error).message}`, { cause: error });
    }
    return store;
  }
  const store = new SqliteStore({ filename: join(config.dataDir, 'cognisync.db'), synchronous: config.sqliteSynchronous, lockFilename: join(config.dataDir, 'cognisync.lock') });
  await store.migrate();
  return store;
}
