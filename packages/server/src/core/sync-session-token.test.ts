// SyncSessionTokens: a token from ListRecords admits UpdateRecords on the same dataset only, from the same
// server secret, within its lifetime; anything else is InvalidParameterException.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SyncSessionTokens } from './sync-session-token.js';

const NOW = 1_700_000_000_000;
const TTL = 3600_000;
const key = { identityPoolId: 'us-east-1:00000000-0000-4000-8000-000000000001', identityId: 'us-east-1:11111111-1111-4111-8111-111111111111', datasetName: 'settings' };
const tokens = new SyncSessionTokens(Buffer.from('a secret of the server'), TTL);
const invalid = (message: string | RegExp) => ({ name: 'InvalidParameterException', message });

describe('SyncSessionTokens', () => {
  test('a token verifies for the dataset it was issued for, across instances sharing the secret', () => {
    const token = tokens.issue(key, NOW, 0);
    assert.equal(typeof token, 'string');
    tokens.verify(token, key, NOW);
    tokens.verify(token, { ...key }, NOW + 1000);
    new SyncSessionTokens(Buffer.from('a secret of the server'), TTL).verify(token, key, NOW);
    assert.notEqual(tokens.issue(key, NOW + 1, 0), token);
    // It carries the dataset SyncCount it was issued at; a token from before that was recorded carries none.
    assert.equal(tokens.verify(tokens.issue(key, NOW, 42), key, NOW), 42);
  });

  test('a token for another dataset, identity or pool is refused', () => {
    const token = tokens.issue(key, NOW, 0);
    for (const other of [{ datasetName: 'other' }, { identityId: 'us-east-1:22222222-2222-4222-8222-222222222222' }, { identityPoolId: 'us-east-1:00000000-0000-4000-8000-000000000002' }]) {
      assert.throws(() => tokens.verify(token, { ...key, ...other }, NOW), invalid('SyncSessionToken was issued for a different identity or dataset'), JSON.stringify(other));
    }
  });

  test('a tampered payload or signature is refused', () => {
    const token = tokens.issue(key, NOW, 0);
    const [payload, mac] = token.split('.') as [string, string];
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...body, d: 'other' })).toString('base64url');
    assert.throws(() => tokens.verify(`${forged}.${mac}`, { ...key, datasetName: 'other' }, NOW), invalid('Invalid SyncSessionToken'));
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    assert.throws(() => tokens.verify(`${payload}.${flipped}`, key, NOW), invalid('Invalid SyncSessionToken'));
    for (const garbage of ['', '.', payload, `${payload}.`, `.${mac}`, `${token}.extra`, 'not a token', `${payload}.${mac.slice(1)}`]) {
      assert.throws(() => tokens.verify(garbage, key, NOW), invalid('Invalid SyncSessionToken'), JSON.stringify(garbage));
    }
  });

  test('a signature of the right length in non-ASCII characters is refused, not a crash', () => {
    const token = tokens.issue(key, NOW, 0);
    const [payload, mac] = token.split('.') as [string, string];
    assert.throws(() => tokens.verify(`${payload}.${'é'.repeat(mac.length)}`, key, NOW), invalid('Invalid SyncSessionToken'));
  });

  test('a token signed with another secret is refused', () => {
    const foreign = new SyncSessionTokens(Buffer.from('another secret'), TTL).issue(key, NOW, 0);
    assert.throws(() => tokens.verify(foreign, key, NOW), invalid('Invalid SyncSessionToken'));
  });

  test('a token lives exactly its TTL', () => {
    const token = tokens.issue(key, NOW, 0);
    tokens.verify(token, key, NOW + TTL);
    assert.throws(() => tokens.verify(token, key, NOW + TTL + 1), invalid(/expired/));
    assert.throws(() => new SyncSessionTokens(Buffer.from('a secret of the server'), 1000).verify(token, key, NOW + 1001), invalid('SyncSessionToken has expired; call ListRecords again'));
  });
});
