// @cognisync/client for Node: everything in the browser entry plus SqliteStore (better-sqlite3, loaded on first use).
export * from './index.ts';
export { SqliteStore, type SqliteStoreOptions } from './stores/sqlite/sqlite-store.ts';
