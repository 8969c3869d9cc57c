// Configuration from flags and the environment: an empty variable counts as unset.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from './config.js';

test('HOST= and PORT= (empty, as from an env file) fall back to 127.0.0.1:8080, not every interface and any port', () => {
  const config = loadConfig([], { HOST: '', PORT: '' });
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 8080);
  assert.equal(loadConfig([], { HOST: '0.0.0.0', PORT: '9000' }).port, 9000);
  assert.equal(loadConfig(['--port', '0'], { PORT: '9000' }).port, 0, 'the flag wins');
});
