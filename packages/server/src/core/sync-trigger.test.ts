import assert from 'node:assert/strict';
import { test } from 'node:test';
import { patchesFromOutput, syncTriggerEvent } from './sync-trigger.js';
import type { RecordPatch } from './record-patches.js';

const key = { identityPoolId: 'us-east-1:pool', identityId: 'us-east-1:id', datasetName: 'd' };

test('keys named like Object.prototype members reach the function and come back as patches', () => {
  const patches: RecordPatch[] = ['__proto__', 'constructor', 'toString'].map((k) => ({ op: 'replace', key: k, value: `v-${k}`, syncCount: 0 }));
  const event = syncTriggerEvent('us-east-1', key, patches, new Map());
  const sent = JSON.parse(JSON.stringify(event)) as { datasetRecords: Record<string, { newValue: string }> };
  assert.deepEqual(Object.keys(sent.datasetRecords).sort(), ['__proto__', 'constructor', 'toString']);
  assert.equal(sent.datasetRecords['__proto__']!.newValue, 'v-__proto__');
  // The function's answer as JSON.parse reads it (own properties, `__proto__` included) is stored as such.
  const stored = patchesFromOutput(sent, patches, new Map());
  assert.deepEqual(stored.map((p) => [p.key, p.value]).sort(), [['__proto__', 'v-__proto__'], ['constructor', 'v-constructor'], ['toString', 'v-toString']]);
});
