// The property tests' bookkeeping: every value written, those a device wrote over, those a conflict hook dropped,
// and the check that nothing else vanished. Conflicts are resolved by a deterministic policy varied by a seed.
import assert from 'node:assert/strict';
import type { ConflictResolution, SyncConflict } from '../src/conflicts.ts';

export class WriteLedger {
  private counter = 0;
  private readonly written: Map<string, Set<string>>;
  /** Values a device replaced or removed while holding them (gone by that device's own choice). */
  private readonly superseded = new Set<string>();
  /** Values a conflict hook chose against. */
  private readonly dropped = new Set<string>();
  /** Values a conflict hook chose (kept or took). */
  private readonly chosen = new Set<string>();

  constructor(
    readonly keys: readonly string[],
    private readonly policySeed: number,
  ) {
    this.written = new Map(keys.map((key) => [key, new Set<string>()]));
  }

  /** A value written to the server before the run (every device will hold it). */
  seeded(key: string, value: string): void {
    this.written.get(key)!.add(value);
  }

  /** A put (a new value, returned) or a removal (`null`) by `writer` on a device that held `before`. */
  write(key: string, writer: string, before: string | undefined, remove: boolean): string | null {
    if (before !== undefined) this.superseded.add(before);
    if (remove) return null;
    const value = `${writer}-${++this.counter}`;
    this.written.get(key)!.add(value);
    return value;
  }

  /** The policy's choice for a conflict: remote, local or a merged value (`m<device>-n`), always the same for the same conflict. */
  choose(conflict: SyncConflict): 'remote' | 'local' | 'value' {
    let h = this.policySeed;
    for (const ch of `${conflict.key}|${conflict.localValue}|${conflict.remoteValue}`) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return (['remote', 'local', 'value'] as const)[h % 3]!;
  }

  /** The hook's answer on `device`, by the policy, noting what it drops and the merged value it writes. */
  resolve(device: number, conflict: SyncConflict, choice = this.choose(conflict)): ConflictResolution {
    if (choice === 'remote') {
      if (conflict.localValue !== null) this.dropped.add(conflict.localValue);
      if (conflict.remoteValue !== null) this.chosen.add(conflict.remoteValue);
      return conflict.resolveWithRemote();
    }
    if (choice === 'local') {
      if (conflict.remoteValue !== null) this.dropped.add(conflict.remoteValue);
      if (conflict.localValue !== null) this.chosen.add(conflict.localValue);
      return conflict.resolveWithLocal();
    }
    for (const v of [conflict.localValue, conflict.remoteValue]) if (v !== null) this.dropped.add(v);
    const merged = `m${device}-${++this.counter}`;
    this.written.get(conflict.key)!.add(merged);
    return conflict.resolveWithValue(merged);
  }

  /**
   * The server's final values hold only written values, none a device had written over or removed (unless a hook
   * chose it), and every value not superseded or dropped is among them.
   */
  check(remote: Record<string, string>, context = ''): void {
    for (const key of this.keys) {
      const written = this.written.get(key)!;
      const survivors = [...written].filter((v) => !this.superseded.has(v) && !this.dropped.has(v));
      if (remote[key] === undefined) assert.deepEqual(survivors, [], `key ${key} was removed, but ${survivors} were never replaced or dropped${context}`);
      else {
        assert.ok(written.has(remote[key]!), `key ${key} holds ${remote[key]}, which nobody wrote${context}`);
        // A value comes back after a device that held it wrote over it or removed it only if a hook chose it.
        assert.ok(!this.superseded.has(remote[key]!) || this.chosen.has(remote[key]!), `key ${key} holds ${remote[key]}, which a device had replaced or removed${context}`);
        assert.ok(survivors.every((v) => v === remote[key]), `key ${key} is ${remote[key]}, but ${survivors} vanished without a hook dropping them${context}`);
      }
    }
  }
}
