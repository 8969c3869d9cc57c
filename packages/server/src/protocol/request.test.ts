import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serializeOutput } from './request.js';

test('serializeOutput writes Dates as epoch seconds (millisecond precision) and drops undefined members', () => {
  const text = serializeOutput({
    Records: [
      { Key: 'a', Value: 'v', LastModifiedDate: new Date(1_700_000_000_123) },
      { Key: 'b', Value: undefined, SyncCount: 0 },
    ],
    NextToken: undefined,
    Count: 2,
    DatasetExists: false,
  });
  assert.equal(text, '{"Records":[{"Key":"a","Value":"v","LastModifiedDate":1700000000.123},{"Key":"b","SyncCount":0}],"Count":2,"DatasetExists":false}');
});

test('serializeOutput keeps a map key named "__proto__" as a member and never touches prototypes', () => {
  const events = JSON.parse('{"__proto__":"arn:aws:lambda:us-east-1:123456789012:function:f","SyncTrigger":"x"}') as Record<string, string>;
  const text = serializeOutput({ Events: events });
  assert.deepEqual(JSON.parse(text), { Events: { ['__proto__']: 'arn:aws:lambda:us-east-1:123456789012:function:f', SyncTrigger: 'x' } });
  assert.equal(Object.getPrototypeOf(JSON.parse(text).Events), Object.prototype);
  assert.equal(({} as Record<string, unknown>).SyncTrigger, undefined);
});

test('serializeOutput uses an own toJSON, as JSON.stringify would', () => {
  assert.equal(serializeOutput({ When: { toJSON: () => new Date(1000) } }), '{"When":1}');
});
