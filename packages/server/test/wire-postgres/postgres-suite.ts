// Shared by the wire-postgres files: they rerun the wire tests against a server on PostgreSQL.
import { test } from 'node:test';
import { postgresAvailable } from '../support/postgres.ts';

/** True when PostgreSQL is reachable; otherwise registers a skipped test (fails instead under CI). */
export async function skipWithoutPostgres(): Promise<boolean> {
  if (await postgresAvailable()) return true;
  if (process.env.CI) throw new Error('PostgreSQL is required in CI (127.0.0.1:5432)');
  test('wire tests on PostgreSQL', { skip: 'PostgreSQL is not reachable' }, () => {});
  return false;
}
