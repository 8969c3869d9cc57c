// The SyncTrigger contract as pure functions: the event a function receives (AWS's documented format,
// version 2) and how its answer becomes the patches that are stored.
import { InvalidLambdaFunctionOutputException } from '../errors.js';
import type { DatasetKey, StoredRecord } from '../store/store.js';
import type { RecordPatch } from './record-patches.js';

export interface SyncTriggerRecord {
  oldValue: string | null;
  newValue: string | null;
  op: 'replace' | 'remove';
}

export interface SyncTriggerEvent {
  version: 2;
  eventType: 'SyncTrigger';
  region: string;
  identityPoolId: string;
  identityId: string;
  datasetName: string;
  datasetRecords: Record<string, SyncTriggerRecord>;
}

export function syncTriggerEvent(region: string, key: DatasetKey, patches: readonly RecordPatch[], current: ReadonlyMap<string, StoredRecord>): SyncTriggerEvent {
  // No prototype: a record keyed `__proto__` (a valid key) set the object's prototype instead, and the function never
  // saw it (QA: its value was then answered as removed and never stored).
  const datasetRecords: Record<string, SyncTriggerRecord> = Object.create(null);
  for (const patch of patches) {
    datasetRecords[patch.key] = { oldValue: current.get(patch.key)?.value ?? null, newValue: patch.op === 'remove' ? null : (patch.value ?? null), op: patch.op };
  }
  return { version: 2, eventType: 'SyncTrigger', region, identityPoolId: key.identityPoolId, identityId: key.identityId, datasetName: key.datasetName, datasetRecords };
}

/** Keys the function's answer names (it may add keys the request did not patch). */
export function keysOfOutput(output: unknown): string[] {
  const records = (output as { datasetRecords?: unknown } | null)?.datasetRecords;
  return records && typeof records === 'object' ? Object.keys(records) : [];
}

/**
 * The patches to store, from the function's answer: records it changed carry its newValue/op, records it
 * dropped are not written, records it added are written (with their current SyncCount, so they do not
 * conflict). Anything malformed is InvalidLambdaFunctionOutputException and nothing is written.
 */
export function patchesFromOutput(output: unknown, requested: readonly RecordPatch[], current: ReadonlyMap<string, StoredRecord>): RecordPatch[] {
  const fail = (why: string) => new InvalidLambdaFunctionOutputException(`The SyncTrigger function returned an invalid result: ${why}`);
  if (typeof output !== 'object' || output === null) throw fail('not a JSON object');
  const records = (output as { datasetRecords?: unknown }).datasetRecords;
  if (typeof records !== 'object' || records === null || Array.isArray(records)) throw fail('datasetRecords is missing or not an object');
  const byKey = new Map(requested.map((patch) => [patch.key, patch]));
  const patches: RecordPatch[] = [];
  for (const [key, raw] of Object.entries(records as Record<string, unknown>)) {
    if (key.length < 1 || key.length > 1024 || key.includes('\u0000') || !key.isWellFormed()) throw fail(`invalid key '${key.slice(0, 64)}'`);
    const entry = raw as { newValue?: unknown; op?: unknown } | null;
    if (typeof entry !== 'object' || entry === null) throw fail(`record '${key}' is not an object`);
    const op = entry.op ?? 'replace';
    if (op !== 'replace' && op !== 'remove') throw fail(`record '${key}' has op '${String(op)}'`);
    const original = byKey.get(key);
    const base = { key, syncCount: original?.syncCount ?? current.get(key)?.syncCount ?? 0, ...(original?.deviceLastModifiedDate !== undefined ? { deviceLastModifiedDate: original.deviceLastModifiedDate } : {}) };
    if (op === 'remove') {
      patches.push({ ...base, op: 'remove' });
      continue;
    }
    const value = entry.newValue;
    if (typeof value !== 'string') throw fail(`record '${key}' has op replace but newValue is not a string`);
    if (value.length > 1048575 || value.includes('\u0000') || !value.isWellFormed()) throw fail(`record '${key}' has an invalid newValue`);
    patches.push({ ...base, op: 'replace', value });
  }
  return patches;
}
