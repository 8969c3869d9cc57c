// Configuration from flags and the environment: an empty variable counts as unset.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from './config.js';

test('HOST= and PORT= (empty, as from an env file) fall back to 127.0.0.1:8080, not every interface and any port', () => {
  const config = loadConfig([], { HOST: '', PORT: '' });
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 8080);
  assert.equal(loadConfig([], { HOST: '0.0.0.0', PORT: '9000' }).port, 9000);
  assert.equal(loadConfig(['--port', '0'], { PORT: '9000' }).port, 0, 'the flag wins');
});

test('every empty variable counts as unset: the data dir is ./data, the log level info, the region us-east-1', () => {
  const empty = Object.fromEntries(
    ['COGNISYNC_DATA_DIR', 'COGNISYNC_LOG_LEVEL', 'COGNISYNC_REGION', 'COGNISYNC_SQLITE_SYNCHRONOUS', 'COGNISYNC_METRICS', 'COGNISYNC_VAPID_SUBJECT',
      'COGNISYNC_DATABASE_MAX_CONNECTIONS', 'COGNISYNC_DATABASE_QUERY_TIMEOUT_MS', 'COGNISYNC_DELIVERY_TIMEOUT_MS', 'COGNISYNC_WEB_PUSH_HOSTS', 'COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS', 'COGNISYNC_LIVE_HEARTBEAT_MS', 'COGNISYNC_HEADERS_TIMEOUT_MS',
      'COGNISYNC_REQUEST_TIMEOUT_MS', 'COGNISYNC_SHUTDOWN_GRACE_MS', 'COGNISYNC_OIDC_CLIENT_IDS'].map((name) => [name, '']),
  );
  const config = loadConfig([], empty);
  assert.equal(config.dataDir, resolve('./data'));
  assert.equal(config.logLevel, 'info');
  assert.equal(config.region, 'us-east-1');
  assert.equal(config.sqliteSynchronous, 'NORMAL');
  assert.equal(config.metricsEnabled, true);
  assert.equal(config.vapidSubject, 'mailto:cognisync@localhost');
  assert.deepEqual(
    [config.databaseMaxConnections, config.syncTriggerTimeoutMs, config.liveHeartbeatMs, config.headersTimeoutMs, config.requestTimeoutMs, config.shutdownGraceMs],
    [10, 5000, 15_000, 20_000, 60_000, 10_000],
  );
});

test('PORT and --port take a plain decimal whole number from 0 to 65535, nothing Number() would also read', () => {
  for (const port of ['1e3', '0x10', '1.5', '-1', '65536', ' 80', 'eighty']) {
    assert.throws(() => loadConfig([], { PORT: port }), { message: `invalid port '${port}': PORT must be a whole number from 0 to 65535` });
  }
  assert.throws(() => loadConfig(['--port', '1e3'], {}), /invalid port '1e3': --port must be/);
  assert.equal(loadConfig([], { PORT: '65535' }).port, 65535);
  assert.equal(loadConfig([], { PORT: '0' }).port, 0);
});

test('millisecond settings refuse what is not a whole number of milliseconds a node timer can wait, naming the variable', () => {
  const cases: [string, string][] = [
    ['COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS', '-5'],
    ['COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS', '99999999999'],
    ['COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS', 'abc'],
    ['COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS', '0'],
    ['COGNISYNC_LIVE_HEARTBEAT_MS', '-5'],
    ['COGNISYNC_HEADERS_TIMEOUT_MS', '1e300'],
    ['COGNISYNC_HEADERS_TIMEOUT_MS', '1.5'],
    ['COGNISYNC_REQUEST_TIMEOUT_MS', '-5'],
    ['COGNISYNC_REQUEST_TIMEOUT_MS', 'abc'],
    ['COGNISYNC_SHUTDOWN_GRACE_MS', '-5'],
  ];
  for (const [name, value] of cases) {
    const minimum = name === 'COGNISYNC_SHUTDOWN_GRACE_MS' ? 0 : 1;
    assert.throws(() => loadConfig([], { [name]: value }), { message: `${name} must be a whole number of milliseconds from ${minimum} to 2147483647, got '${value}'` });
  }
  const config = loadConfig([], { COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS: '2147483647', COGNISYNC_LIVE_HEARTBEAT_MS: '200', COGNISYNC_SHUTDOWN_GRACE_MS: '0' });
  assert.equal(config.syncTriggerTimeoutMs, 2_147_483_647);
  assert.equal(config.liveHeartbeatMs, 200);
  assert.equal(config.shutdownGraceMs, 0, 'no grace: connections are cut at once');
});

test('COGNISYNC_DATABASE_MAX_CONNECTIONS must be a whole number from 1 to 262143', () => {
  for (const value of ['-5', '0', 'abc', '0.5', '1e9', '262144']) {
    assert.throws(() => loadConfig([], { COGNISYNC_DATABASE_MAX_CONNECTIONS: value }), {
      message: `COGNISYNC_DATABASE_MAX_CONNECTIONS must be a whole number from 1 to 262143, got '${value}'`,
    });
  }
  assert.equal(loadConfig([], { COGNISYNC_DATABASE_MAX_CONNECTIONS: '1' }).databaseMaxConnections, 1);
});

test('COGNISYNC_WEB_PUSH_HOSTS: the browsers\' push services by default, else a list of host names or *', () => {
  assert.ok(loadConfig([], {}).webPushHosts.includes('fcm.googleapis.com'));
  assert.deepEqual(loadConfig([], { COGNISYNC_WEB_PUSH_HOSTS: ' Push.Example.com, 10.0.0.5 ' }).webPushHosts, ['push.example.com', '10.0.0.5']);
  assert.deepEqual(loadConfig([], { COGNISYNC_WEB_PUSH_HOSTS: '*' }).webPushHosts, ['*']);
  // IP addresses as an endpoint's URL names them, so that the check's comparison finds them.
  assert.deepEqual(loadConfig([], { COGNISYNC_WEB_PUSH_HOSTS: '::1,[0:0::2],127.1' }).webPushHosts, ['[::1]', '[::2]', '127.0.0.1']);
  for (const value of [',', 'https://push.example.com', 'push example', '[::1']) {
    assert.throws(() => loadConfig([], { COGNISYNC_WEB_PUSH_HOSTS: value }), { message: `COGNISYNC_WEB_PUSH_HOSTS must be a comma-separated list of host names (or *), got '${value}'` });
  }
});

test('URLs, CORS origins and the VAPID subject are checked at startup, not at first use', () => {
  for (const name of ['COGNISYNC_PUBLIC_URL', 'COGNISYNC_LAMBDA_ENDPOINT', 'COGNISYNC_KINESIS_ENDPOINT', 'COGNISYNC_SNS_ENDPOINT']) {
    for (const value of ['not a url', '::::', 'ftp://x.example']) {
      assert.throws(() => loadConfig([], { [name]: value }), { message: `${name} must be an http:// or https:// URL, got '${value}'` });
    }
  }
  const good = loadConfig([], { COGNISYNC_PUBLIC_URL: 'https://sync.example.com/', COGNISYNC_LAMBDA_ENDPOINT: 'http://127.0.0.1:9001', COGNISYNC_CORS_ORIGINS: 'https://app.example.com, http://localhost:3000', COGNISYNC_VAPID_SUBJECT: 'https://example.com/contact' });
  assert.equal(good.publicUrl, 'https://sync.example.com');
  assert.deepEqual(good.corsOrigins, ['https://app.example.com', 'http://localhost:3000']);
  assert.deepEqual(loadConfig([], { COGNISYNC_CORS_ORIGINS: '*' }).corsOrigins, ['*']);
  for (const value of ['not an origin', 'https://app.example.com/path']) {
    assert.throws(() => loadConfig([], { COGNISYNC_CORS_ORIGINS: value }), /COGNISYNC_CORS_ORIGINS must be \* or comma-separated origins/);
  }
  assert.throws(() => loadConfig([], { COGNISYNC_VAPID_SUBJECT: 'bogus' }), { message: "COGNISYNC_VAPID_SUBJECT must be a mailto: or https: URL, got 'bogus'" });
  assert.equal(loadConfig([], { COGNISYNC_VAPID_SUBJECT: 'mailto:ops@example.com' }).vapidSubject, 'mailto:ops@example.com');
});

test('COGNISYNC_OIDC_CLIENT_IDS: provider=client-id entries, a provider once per client id', () => {
  assert.deepEqual({ ...loadConfig([], {}).oidcClientIds }, {});
  assert.deepEqual({ ...loadConfig([], { COGNISYNC_OIDC_CLIENT_IDS: ' login.example.com=web , login.example.com=mobile,127.0.0.1:9000/realms/x=app ' }).oidcClientIds }, {
    'login.example.com': ['web', 'mobile'],
    '127.0.0.1:9000/realms/x': ['app'],
  });
  for (const value of ['login.example.com', '=app', 'login.example.com=']) {
    assert.throws(() => loadConfig([], { COGNISYNC_OIDC_CLIENT_IDS: value }), /COGNISYNC_OIDC_CLIENT_IDS must be comma-separated provider=client-id entries/);
  }
});

test('a region must make pool ids the model accepts (`[\\w-]+:[0-9a-f-]+`, at most 55 characters)', () => {
  for (const region of ['eu west 1', 'eu:west-1', 'EU-WEST-1', 'a-region-name-too-long']) {
    assert.throws(() => loadConfig([], { COGNISYNC_REGION: region }), { message: new RegExp(`^COGNISYNC_REGION must be a region name .* got '${region}'$`) });
  }
  assert.throws(() => loadConfig(['--region', 'eu west 1'], {}), { message: /^--region must be a region name/ });
  assert.equal(loadConfig([], { COGNISYNC_REGION: 'ap-southeast-1' }).region, 'ap-southeast-1');
  assert.equal(loadConfig(['--region', 'eu-west-1'], { COGNISYNC_REGION: 'us-west-2' }).region, 'eu-west-1', 'the flag wins');
});

test('COGNISYNC_LOG_LEVEL must be one of pino\'s levels, in any case', () => {
  assert.throws(() => loadConfig([], { COGNISYNC_LOG_LEVEL: 'verbose' }), {
    message: `COGNISYNC_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got 'verbose'`,
  });
  assert.equal(loadConfig([], { COGNISYNC_LOG_LEVEL: 'WARN' }).logLevel, 'warn');
});

test('COGNISYNC_METRICS takes the usual spellings of on and off and refuses anything else', () => {
  for (const off of ['off', 'false', '0', 'no', 'OFF', 'False']) assert.equal(loadConfig([], { COGNISYNC_METRICS: off }).metricsEnabled, false, off);
  for (const on of ['on', 'true', '1', 'yes', 'ON']) assert.equal(loadConfig([], { COGNISYNC_METRICS: on }).metricsEnabled, true, on);
  assert.equal(loadConfig([], {}).metricsEnabled, true);
  for (const value of ['disabled', 'toString']) {
    assert.throws(() => loadConfig([], { COGNISYNC_METRICS: value }), { message: `COGNISYNC_METRICS must be on or off (or true/false, yes/no, 1/0), got '${value}'` });
  }
});

test('COGNISYNC_LIMIT_* take plain whole numbers only', () => {
  assert.equal(loadConfig([], { COGNISYNC_LIMIT_DATASETS_PER_IDENTITY: '30' }).limits.datasetsPerIdentity, 30);
  for (const value of ['1e3', '0x10', '1.5', ' 8', '-1', '0']) {
    assert.throws(() => loadConfig([], { COGNISYNC_LIMIT_DATASETS_PER_IDENTITY: value }), { message: `COGNISYNC_LIMIT_DATASETS_PER_IDENTITY must be an integer of at least 1, got '${value}'` }, value);
  }
});

test('COGNISYNC_MAX_BUFFERED_REQUEST_BYTES must hold the largest body allowed', () => {
  assert.equal(loadConfig([], {}).limits.maxBufferedRequestBytes, 128 * 1024 * 1024);
  assert.equal(loadConfig([], { COGNISYNC_MAX_REQUEST_BODY_BYTES: '1000', COGNISYNC_MAX_BUFFERED_REQUEST_BYTES: '1000' }).limits.maxBufferedRequestBytes, 1000);
  assert.throws(() => loadConfig([], { COGNISYNC_MAX_BUFFERED_REQUEST_BYTES: '1048576' }), {
    message: 'COGNISYNC_MAX_BUFFERED_REQUEST_BYTES must be at least COGNISYNC_MAX_REQUEST_BODY_BYTES (8388608), got 1048576',
  });
});
