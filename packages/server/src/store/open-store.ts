// Chooses the store for a configuration: SQLite under the data dir by default, PostgreSQL for a postgres:// URL.
import { join } from 'node:path';
import type { Config } from '../config.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

export async function openStore(config: Config): Promise<Store> {
  if (config.databaseUrl) {
    throw new Error('PostgreSQL (--database-url / DATABASE_URL) is not available yet in this version of cognisync; omit it to use SQLite');
  }
  const store = new SqliteStore({ filename: join(config.dataDir, 'cognisync.db'), synchronous: config.sqliteSynchronous });
  await store.migrate();
  return store;
}
