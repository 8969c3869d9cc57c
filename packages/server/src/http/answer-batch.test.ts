// AnswerBatch: answers of requests read in one phase of the event loop are held to its check phase and sent
// together; later answers wait only for the promise jobs under way; a full batch goes at once; one failing answer does not hold back the rest.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { setImmediate as nextCheckPhase } from 'node:timers/promises';
import { test } from 'node:test';
import { AnswerBatch, MAX_HELD } from './answer-batch.js';

function answers() {
  const sent: string[] = [];
  const destroyed: string[] = [];
  const res = (name: string, fail = false) =>
    ({
      end(body: string) {
        if (fail) throw new Error('socket gone');
        sent.push(`${name}:${body}`);
      },
      destroy() {
        destroyed.push(name);
      },
    }) as unknown as ServerResponse;
  return { sent, destroyed, res };
}

test('answers of one phase are held to its check phase and go out in order; a later one goes at once', async () => {
  const batch = new AnswerBatch();
  const { sent, res } = answers();
  const first = batch.arrived();
  const second = batch.arrived();
  batch.end(res('a'), '1', first);
  batch.end(res('b'), '2', second);
  assert.deepEqual(sent, []);
  await nextCheckPhase();
  assert.deepEqual(sent, ['a:1', 'b:2']);
  // Answered after its phase's check phase (as after a group commit): held only while the promise jobs under way run.
  await Promise.resolve().then(() => {
    batch.end(res('c'), '3', first);
    return Promise.resolve().then(() => batch.end(res('c2'), '3b', first));
  }).then(() => assert.deepEqual(sent, ['a:1', 'b:2']));
  await new Promise((resolve) => process.nextTick(resolve));
  assert.deepEqual(sent, ['a:1', 'b:2', 'c:3', 'c2:3b']);
  // A new phase holds again.
  const third = batch.arrived();
  batch.end(res('d'), '4', third);
  assert.equal(sent.length, 4);
  await nextCheckPhase();
  assert.deepEqual(sent.at(-1), 'd:4');
  assert.equal(sent.length, 5);
});

test(`the ${MAX_HELD}th held answer sends the batch; one that fails is destroyed, the others still go`, async () => {
  const batch = new AnswerBatch();
  const { sent, destroyed, res } = answers();
  const phase = batch.arrived();
  for (let i = 0; i < MAX_HELD - 1; i++) batch.end(res(`r${i}`, i === 3), String(i), phase);
  assert.deepEqual(sent, []);
  batch.end(res('last'), 'x', phase);
  assert.equal(sent.length, MAX_HELD - 1);
  assert.deepEqual(destroyed, ['r3']);
  assert.equal(sent.at(-1), 'last:x');
  batch.end(res('after'), 'y', phase);
  assert.equal(sent.length, MAX_HELD - 1);
  await nextCheckPhase();
  assert.equal(sent.at(-1), 'after:y');
});
