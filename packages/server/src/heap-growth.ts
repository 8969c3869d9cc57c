// How far V8 lets the heap grow past what survived the last full collection before it collects again: 2× here,
// where V8 alone allows up to 4× on a machine with much memory. The garbage of concurrent 1 MB pages on PostgreSQL
// outlives young collections, so the heap floats up to that limit; why 2× and what it costs are in
// docs/decisions.md ("Runtime") and bench/README.md (tenth round).
import v8 from 'node:v8';

const HEAP_GROWING_PERCENT = 100;

/**
 * Sets V8's heap growing factor for this process to 1 + HEAP_GROWING_PERCENT / 100, unless node was started with
 * its own `--heap-growing-percent` (the operator's choice wins). Returns the flag it set, or undefined.
 * V8 reads the flag each time it computes the next limit, so setting it at startup takes effect.
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): string | undefined {
  if (execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg))) return undefined;
  const flag = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
  v8.setFlagsFromString(flag);
  return flag;
}
