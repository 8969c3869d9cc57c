// Property: random interleavings of offline edits and syncs (also two devices syncing at once) across 2–4
// devices of one identity, from an empty dataset or from one every device holds, always converge, and no written
// value vanishes unless a conflict hook dropped it or a later write on a device that had seen it replaced it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { SyncConflict } from '../src/conflicts.ts';
import type { Dataset } from '../src/dataset.ts';
import { createPool, device, serverValues, startServer, type ServerProcess } from './support.ts';
import { WriteLedger } from './write-ledger.ts';

let server: ServerProcess;
let poolId: string;

before(async () => {
  // Dozens of requests per identity in a few hundred milliseconds are the point here, not the server's throttling.
  server = await startServer({ env: { COGNISYNC_RATE_LIMIT_IDENTITY_RPS: '0' } });
  poolId = await createPool(server);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

type Action =
  | { kind: 'put'; device: number; key: string }
  | { kind: 'remove'; device: number; key: string }
  | { kind: 'sync'; device: number }
  | { kind: 'syncTogether'; device: number; other: number };

const keys = ['a', 'b', 'c'];
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), device: fc.nat(3), key: fc.constantFrom(...keys) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), device: fc.nat(3), key: fc.constantFrom(...keys) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), device: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('syncTogether' as const), device: fc.nat(3), other: fc.nat(3) }) },
);

/**
 * The property. `seeded`: every device first holds every key as a synced record, so that most edits are of keys
 * the server has and many syncs push first (with a token from the device's previous sync); otherwise most edits
 * are of keys still new to the device.
 */
async function convergence(seeded: boolean) {
  const seed = Number(process.env.FC_SEED ?? 20261127);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 2, max: 4 }), fc.array(action, { maxLength: 14 }), fc.nat(), async (deviceCount, actions, policySeed) => {
      const first = device(server, poolId, { random: () => 0.5 });
      const identityId = await first.identityId();
      const managers = [first, ...Array.from({ length: deviceCount - 1 }, () => device(server, poolId, { identityId, random: () => 0.5 }))];
      const datasets: Dataset[] = await Promise.all(managers.map((m) => m.openOrCreateDataset('prop')));

      const ledger = new WriteLedger(keys, policySeed);
      if (seeded) {
        for (const key of keys) ledger.seeded(key, `seed-${key}`);
        await datasets[0]!.putAll(Object.fromEntries(keys.map((key) => [key, `seed-${key}`])));
        for (const ds of datasets) await ds.synchronize();
      }
      const onConflict = (device: number) => (conflicts: SyncConflict[]) => conflicts.map((c) => ledger.resolve(device, c));
      const sync = (d: number) => datasets[d]!.synchronize({ onConflict: onConflict(d) });

      for (const step of actions) {
        const d = step.device % deviceCount;
        const ds = datasets[d]!;
        if (step.kind === 'put' || step.kind === 'remove') {
          const value = ledger.write(step.key, `d${d}`, await ds.get(step.key), step.kind === 'remove');
          if (value === null) await ds.remove(step.key);
          else await ds.put(step.key, value);
        } else if (step.kind === 'sync') {
          await sync(d);
        } else {
          const other = step.other % deviceCount;
          await Promise.all(other === d ? [sync(d)] : [sync(d), sync(other)]);
        }
      }
      // Everyone comes online at once (pushes race: 409s, retries, syncs that land between another's pull and push),
      // then two quiet rounds bring every device to the same state.
      await Promise.all(datasets.map((_, d) => sync(d)));
      for (let round = 0; round < 2; round++) for (let d = 0; d < deviceCount; d++) await sync(d);

      const remote = await serverValues(server, poolId, identityId, 'prop');
      for (let d = 0; d < deviceCount; d++) {
        assert.deepEqual(await datasets[d]!.getAll(), remote, `device ${d} holds the server's state`);
        assert.equal(await datasets[d]!.hasPendingChanges(), false, `device ${d} has nothing left to push`);
      }
      ledger.check(remote);
    }),
    { seed, numRuns: Number(process.env.FC_RUNS ?? 30), endOnFailure: true },
  );
}

test('random interleavings across 2–4 devices converge and lose no write a hook did not drop', () => convergence(false));

test('the same with every key synced to every device first (many syncs push first)', () => convergence(true));
