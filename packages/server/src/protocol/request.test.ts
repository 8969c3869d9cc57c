import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cognitoSyncOperations } from '../model/cognito-sync.generated.js';
import { defineOperation, epochSeconds } from '../operations/operation.js';
import { MAX_JSON_DEPTH, nestsDeeperThan, parseJsonObject, serializeOutput } from './request.js';

test('serializeOutput writes epoch-second timestamps as they are and drops undefined members', () => {
  const text = serializeOutput({
    Records: [
      { Key: 'a', Value: 'v', LastModifiedDate: epochSeconds(1_700_000_000_123) },
      { Key: 'b', Value: undefined, SyncCount: 0 },
    ],
    NextToken: undefined,
    Count: 2,
    DatasetExists: false,
  });
  assert.equal(text, '{"Records":[{"Key":"a","Value":"v","LastModifiedDate":1700000000.123},{"Key":"b","SyncCount":0}],"Count":2,"DatasetExists":false}');
});

test('an operation whose answer holds a Date does not type-check (JSON.stringify would write an ISO string)', () => {
  const handle = async () => ({ Dataset: { CreationDate: new Date(0) } });
  // @ts-expect-error a Date in an answer: operations answer with epochSeconds(ms)
  defineOperation({ service: 'sync', model: cognitoSyncOperations.DescribeDataset, callers: [], handle });
  // @ts-expect-error also inside arrays, and when it may be undefined
  defineOperation({ service: 'sync', model: cognitoSyncOperations.ListDatasets, callers: [], handle: async () => ({ Datasets: [{ LastModifiedDate: undefined as Date | undefined }] }) });
  defineOperation({ service: 'sync', model: cognitoSyncOperations.DescribeDataset, callers: [], handle: async () => ({ Dataset: { CreationDate: epochSeconds(0) } }) });
});

test('serializeOutput keeps a map key named "__proto__" as a member and never touches prototypes', () => {
  const events = JSON.parse('{"__proto__":"arn:aws:lambda:us-east-1:123456789012:function:f","SyncTrigger":"x"}') as Record<string, string>;
  const text = serializeOutput({ Events: events });
  assert.deepEqual(JSON.parse(text), { Events: { ['__proto__']: 'arn:aws:lambda:us-east-1:123456789012:function:f', SyncTrigger: 'x' } });
  assert.equal(Object.getPrototypeOf(JSON.parse(text).Events), Object.prototype);
  assert.equal(({} as Record<string, unknown>).SyncTrigger, undefined);
});

test('nestsDeeperThan counts arrays and objects outside strings, escapes included', () => {
  assert.equal(nestsDeeperThan('{"a":[1,{"b":2}]}', 3), false);
  assert.equal(nestsDeeperThan('{"a":[1,{"b":2}]}', 2), true);
  assert.equal(nestsDeeperThan(`{"a":"${'[{'.repeat(100)}"}`, 2), false, 'brackets in a string');
  assert.equal(nestsDeeperThan(`{"a":"\\\\","b":[[[]]]}`, 3), true, 'an escaped backslash ends before the quote');
  assert.equal(nestsDeeperThan(`{"a":"\\"[[[[","b":1}`, 1), false, 'an escaped quote does not end the string');
  assert.equal(nestsDeeperThan('[]'.repeat(10_000), 1), false, 'siblings are not depth');
});

test('parseJsonObject with a depth limit refuses deeper nesting before parsing', () => {
  const fail = (message: string) => new Error(message);
  const body = (depth: number) => Buffer.from(`{"IdentityPoolId":"x","Zzz":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`);
  assert.deepEqual(Object.keys(parseJsonObject(body(MAX_JSON_DEPTH), fail, MAX_JSON_DEPTH)), ['IdentityPoolId', 'Zzz']);
  assert.throws(() => parseJsonObject(body(MAX_JSON_DEPTH + 1), fail, MAX_JSON_DEPTH), /deeper than 64 levels/);
  assert.ok(parseJsonObject(body(MAX_JSON_DEPTH + 1), fail), 'no limit asked for');
});
