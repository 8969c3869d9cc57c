// The errors-and-auth wire tests again, with the server on a throw-away PostgreSQL database.
import { skipWithoutPostgres } from './postgres-suite.ts';

if (await skipWithoutPostgres()) {
  process.env.COGNISYNC_TEST_STORE = 'postgres';
  await import('../wire/errors-and-auth.test.ts');
}
