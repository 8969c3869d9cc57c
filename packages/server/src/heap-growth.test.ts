import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';

const moduleUrl = new URL('./heap-growth.ts', import.meta.url).href;

/**
 * Runs, in a fresh node (V8 flags are per process), a workload shaped like concurrent 1 MB pages: 30 MB that
 * stays alive, and 600 JSON texts of ~1.3 MB of which only the last 8 are kept. Reports what
 * limitHeapGrowth returned (unless `apply` is false) and the largest heap V8 reserved meanwhile.
 */
function run(apply: boolean, nodeArgs: string[] = []): { flag: string | null; peakMB: number } {
  const code = `
    import v8 from 'node:v8';
    import { limitHeapGrowth } from ${JSON.stringify(moduleUrl)};
    const flag = ${apply} ? limitHeapGrowth() ?? null : null;
    const live = Array.from({ length: 30_000 }, (_, i) => String(i).padEnd(1000, 'x'));
    const recent = [];
    let peak = 0;
    for (let i = 0; i < 600; i++) {
      recent.push(JSON.stringify({ i, page: live.slice(i % 1000, (i % 1000) + 1300) }));
      if (recent.length > 8) recent.shift();
      if (i % 10 === 0) peak = Math.max(peak, v8.getHeapStatistics().total_heap_size);
    }
    process.stdout.write(JSON.stringify({ flag, peakMB: peak / 2 ** 20, kept: live.length + recent.length }));`;
  const out = execFileSync(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
  return JSON.parse(out) as { flag: string | null; peakMB: number };
}

describe('limitHeapGrowth', () => {
  let limitedRun: ReturnType<typeof run> | undefined;
  const limited = () => (limitedRun ??= run(true));

  it('keeps the heap within about twice what survives, where V8 alone lets it grow further', (t) => {
    const unlimited = run(false);
    const capped = limited();
    t.diagnostic(`peak heap: ${capped.peakMB.toFixed(0)} MB limited, ${unlimited.peakMB.toFixed(0)} MB by V8's own factor`);
    assert.equal(capped.flag, '--heap-growing-percent=100');
    assert.ok(capped.peakMB < unlimited.peakMB * 0.8, `peak heap ${capped.peakMB.toFixed(0)} MB limited vs ${unlimited.peakMB.toFixed(0)} MB not`);
  });

  it("leaves an operator's own --heap-growing-percent alone", (t) => {
    const own = run(true, ['--heap-growing-percent=300']);
    t.diagnostic(`peak heap: ${limited().peakMB.toFixed(0)} MB limited, ${own.peakMB.toFixed(0)} MB at the operator's 300 %`);
    assert.equal(own.flag, null);
    assert.ok(limited().peakMB < own.peakMB * 0.8, `peak heap ${limited().peakMB.toFixed(0)} MB limited vs ${own.peakMB.toFixed(0)} MB at 300 %`);
  });
});
