// Child process of live.test.ts: starts live sync, lets one change arrive, stops it, and must then exit by itself
// (no process.exit): any socket, timer or lock left behind by stop() would keep it running.
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import { SyncManager } from '../src/sync-manager.ts';

const [endpoint, identityPoolId, identityId] = process.argv.slice(2) as [string, string, string];
const manager = new SyncManager({ identityPoolId, identityId, endpoint, store: new MemoryStore(), retry: { baseDelayMs: 1, maxDelayMs: 5 } });
const dataset = await manager.openOrCreateDataset('child');
const live = manager.startLiveSync({
  debounceMs: 10,
  heartbeatTimeoutMs: 5_000,
  onConnectionChange: (connected) => connected && console.log('connected'),
  onChange: ({ summary }) => console.log(`changed ${summary.changedKeys.join(',')}`),
});
// The parent writes once it reads "connected"; stop once the change arrived.
for (let waited = 0; (await dataset.get('k')) === undefined; waited += 10) {
  if (waited > 10_000) throw new Error('the change never arrived');
  await new Promise((resolve) => setTimeout(resolve, 10));
}
await live.stop();
console.log(`stopped connected=${live.connected}`);
