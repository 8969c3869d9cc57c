// Merged dataset names: AWS's `<name>.<identityId>`, cut short to stay reachable within 128 characters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergedDatasetName, mergedDatasetNames } from './merged-datasets.js';

const ID = 'us-east-1:0a8e7a4b-1234-4c1b-9d8f-aaaaaaaaaaaa';

test('a short name keeps all of itself; a long one keeps its first characters, 128 in all', () => {
  assert.equal(mergedDatasetName('settings', ID), `settings.${ID}`);
  const long = mergedDatasetName('x'.repeat(128), ID);
  assert.equal(long.length, 128);
  assert.equal(long, `${'x'.repeat(127 - ID.length)}.${ID}`);
  assert.equal(mergedDatasetName('x'.repeat(127 - ID.length), ID).length, 128, 'exactly at the limit: nothing cut');
});

test('two names that would meet are refused, naming both', () => {
  assert.deepEqual(mergedDatasetNames(['a', 'b'], ID), new Map([['a', `a.${ID}`], ['b', `b.${ID}`]]));
  assert.throws(() => mergedDatasetNames([`${'m'.repeat(100)}1`, `${'m'.repeat(100)}2`], ID), { name: 'ResourceConflictException', message: /m1 and m+2 of identity .* would both be merged as/ });
});
