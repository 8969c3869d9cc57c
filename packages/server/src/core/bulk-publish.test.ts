// The BulkPublish state machine: who may start a run, and what each refusal is called.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { notStarted, startBulkPublish, type BulkPublishState } from './bulk-publish.js';

const NOW = 1_700_000_000_000;
const DAY = 24 * 3600 * 1000;
const ENABLED = { StreamName: 'changes', StreamingStatus: 'ENABLED' };

describe('startBulkPublish', () => {
  test('a pool whose Cognito Stream is not configured and ENABLED is refused with InvalidConfigurationException', () => {
    for (const streams of [undefined, { StreamName: 's', StreamingStatus: 'DISABLED' }, { StreamName: 's', StreamingStatus: 'enabled' }, { StreamingStatus: 'ENABLED' }]) {
      assert.throws(() => startBulkPublish(notStarted, streams, NOW, DAY), { name: 'InvalidConfigurationException', message: /Cognito Streams must be configured and ENABLED/ }, JSON.stringify(streams));
    }
  });

  test('NOT_STARTED with streams ENABLED moves to IN_PROGRESS, started now', () => {
    assert.deepEqual(startBulkPublish(notStarted, ENABLED, NOW, DAY), { status: 'IN_PROGRESS', startTime: NOW });
    assert.deepEqual(notStarted, { status: 'NOT_STARTED' });
  });

  test('a run IN_PROGRESS refuses another with DuplicateRequestException', () => {
    const running: BulkPublishState = { status: 'IN_PROGRESS', startTime: NOW - 5 * DAY };
    assert.throws(() => startBulkPublish(running, ENABLED, NOW, DAY), { name: 'DuplicateRequestException' });
  });

  test('a run that SUCCEEDED within the interval refuses another with AlreadyStreamedException', () => {
    const done: BulkPublishState = { status: 'SUCCEEDED', startTime: NOW - 2 * 3600_000, completeTime: NOW - 3600_000 };
    assert.throws(() => startBulkPublish(done, ENABLED, NOW, DAY), { name: 'AlreadyStreamedException' });
    assert.throws(() => startBulkPublish(done, ENABLED, done.completeTime! + DAY - 1, DAY), { name: 'AlreadyStreamedException' });
  });

  test('once the interval has passed since a success, a new run starts', () => {
    const done: BulkPublishState = { status: 'SUCCEEDED', startTime: NOW - 2 * DAY, completeTime: NOW - DAY };
    assert.deepEqual(startBulkPublish(done, ENABLED, NOW, DAY), { status: 'IN_PROGRESS', startTime: NOW });
    assert.deepEqual(startBulkPublish(done, ENABLED, NOW + 1, DAY), { status: 'IN_PROGRESS', startTime: NOW + 1 });
    // The interval is configurable.
    const recent: BulkPublishState = { status: 'SUCCEEDED', startTime: NOW - 20_000, completeTime: NOW - 10_000 };
    assert.deepEqual(startBulkPublish(recent, ENABLED, NOW, 10_000), { status: 'IN_PROGRESS', startTime: NOW });
    assert.throws(() => startBulkPublish(recent, ENABLED, NOW, 10_001), { name: 'AlreadyStreamedException' });
  });

  test('a FAILED run can be restarted at once, and the new state drops the old failure', () => {
    const failed: BulkPublishState = { status: 'FAILED', startTime: NOW - 1000, completeTime: NOW - 10, failureMessage: 'stream gone' };
    assert.deepEqual(startBulkPublish(failed, ENABLED, NOW, DAY), { status: 'IN_PROGRESS', startTime: NOW });
  });
});
