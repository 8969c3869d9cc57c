// The amazon-cognito-js wire tests again, with the server on a throw-away PostgreSQL database.
import { skipWithoutPostgres } from './postgres-suite.ts';

if (await skipWithoutPostgres()) {
  process.env.COGNISYNC_TEST_STORE = 'postgres';
  await import('../wire/amazon-cognito-js.test.ts');
}
