import assert from 'node:assert/strict';
import { test } from 'node:test';
import { providerClash } from './provider-rule.js';

const login = (providerName: string, userIdentifier: string) => ({ providerName, userIdentifier });
const rule = { developerProvider: 'dev.example' };

test('providerClash: a second user of a provider is a clash, the same user or the developer provider is not', () => {
  assert.equal(providerClash([login('oidc', 'alice')], [login('oidc', 'bob')], rule), 'oidc');
  assert.equal(providerClash([login('oidc', 'alice')], [login('oidc', 'alice'), login('other', 'x')], rule), undefined);
  assert.equal(providerClash([login('dev.example', 'd1')], [login('dev.example', 'd2')], rule), undefined);
  assert.equal(providerClash([login('oidc', 'a'), login('oidc', 'b')], [], rule), undefined, 'what is held is not checked');
  assert.equal(providerClash([login('oidc', 'a')], [login('dev.example', 'd1')], { developerProvider: undefined }), undefined);
});
