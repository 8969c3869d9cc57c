// How far V8 lets the heap grow past what survived the last full collection before it collects again.
// V8 picks that factor itself, up to 4× on a machine with much memory. Under 64 concurrent 1 MB ListRecords on
// PostgreSQL (whose garbage outlives young collections, and each page passes through large strings that only a
// full collection frees) that let the server's V8 heap reach 134–160 MB and its RSS 210–274 MB, past the 200 MB
// the benchmark allows. At 2× the RSS peak was 146–193 MB, small requests cost the same, and a 1 MB read's CPU did
// not clearly move; 1.5× cut memory further but made small requests ~10 % dearer (bench/README.md, tenth round;
// docs/decisions.md, Runtime).
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 100;

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
