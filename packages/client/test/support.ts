// Test helpers: the real cognisync server (its own test harness), pools, and SyncManagers acting as devices.
import { CreateIdentityPoolCommand, type CreateIdentityPoolCommandInput } from '@aws-sdk/client-cognito-identity';
import { ListRecordsCommand, UpdateRecordsCommand } from '@aws-sdk/client-cognito-sync';
import { identityClient, startServer, syncClient, type ServerProcess } from '../../server/test/support/server-process.ts';
import { MemoryStore } from '../src/stores/memory/memory-store.ts';
import type { LocalStore } from '../src/stores/store.ts';
import { SyncManager, type SyncManagerOptions } from '../src/sync-manager.ts';

export { developerCredentials, identityClient, startServer, syncClient, type ServerProcess } from '../../server/test/support/server-process.ts';

/** Where a server answers: a ServerProcess, or a proxy in front of several. */
export type Endpoint = Pick<ServerProcess, 'endpoint'>;

export async function createPool(server: Endpoint, input: Partial<CreateIdentityPoolCommandInput> = {}): Promise<string> {
  const pool = await identityClient(server.endpoint).send(
    new CreateIdentityPoolCommand({ IdentityPoolName: 'client-tests', AllowUnauthenticatedIdentities: true, ...input }),
  );
  return pool.IdentityPoolId!;
}

/** A device: a SyncManager on its own store (MemoryStore unless given), fast retries, built-in Cognito Identity. */
export function device(server: Endpoint, identityPoolId: string, options: Partial<SyncManagerOptions> & { store?: LocalStore } = {}): SyncManager {
  return new SyncManager({
    identityPoolId,
    endpoint: server.endpoint,
    store: options.store ?? new MemoryStore(),
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
    ...options,
  });
}

/** The server's live records of a dataset, as the developer sees them: key → value. */
export async function serverValues(server: Endpoint, identityPoolId: string, identityId: string, datasetName: string): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  let NextToken: string | undefined;
  do {
    const page = await syncClient(server.endpoint).send(new ListRecordsCommand({ IdentityPoolId: identityPoolId, IdentityId: identityId, DatasetName: datasetName, NextToken }));
    for (const r of page.Records ?? []) {
      if (r.Value === undefined) delete values[r.Key!];
      else values[r.Key!] = r.Value;
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return Object.fromEntries(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Another writer (the developer, as a third device would) sets or removes one key on the server. */
export async function developerWrite(server: Endpoint, identityPoolId: string, identityId: string, datasetName: string, key: string, value: string | null) {
  const client = syncClient(server.endpoint);
  const listed = await client.send(new ListRecordsCommand({ IdentityPoolId: identityPoolId, IdentityId: identityId, DatasetName: datasetName }));
  const current = listed.Records?.find((r) => r.Key === key);
  await client.send(
    new UpdateRecordsCommand({
      IdentityPoolId: identityPoolId,
      IdentityId: identityId,
      DatasetName: datasetName,
      SyncSessionToken: listed.SyncSessionToken!,
      RecordPatches: [value === null ? { Op: 'remove', Key: key, SyncCount: current?.SyncCount ?? 0 } : { Op: 'replace', Key: key, Value: value, SyncCount: current?.SyncCount ?? 0 }],
    }),
  );
}

/** Which Cognito operation a fetch call is (for spies and fault injection). */
export function operationOf(input: string | URL | Request, init?: RequestInit): string {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const headers = new Headers(init?.headers);
  const target = headers.get('x-amz-target');
  if (target) return target.split('.').pop()!;
  const method = init?.method ?? 'GET';
  if (url.pathname.endsWith('/records')) return 'ListRecords';
  if (/\/datasets\/[^/]+$/.test(url.pathname)) return method === 'POST' ? 'UpdateRecords' : method === 'DELETE' ? 'DeleteDataset' : 'DescribeDataset';
  if (url.pathname.endsWith('/datasets')) return 'ListDatasets';
  return `${method} ${url.pathname}`;
}

/** A fetch that records each operation and lets a test act before/after chosen calls. */
export function spyFetch(hooks: {
  before?: (operation: string, n: number) => void | Promise<void>;
  /** Answers instead of the server (the request is never sent) when it returns a Response. */
  instead?: (operation: string, n: number) => Response | undefined;
  after?: (operation: string, n: number, response: Response) => Response | Promise<Response> } = {}) {
  const calls: string[] = [];
  const counts = new Map<string, number>();
  const spy: typeof fetch = async (input, init) => {
    const operation = operationOf(input as string, init);
    const n = (counts.get(operation) ?? 0) + 1;
    counts.set(operation, n);
    calls.push(operation);
    await hooks.before?.(operation, n);
    const answer = hooks.instead?.(operation, n);
    if (answer) return answer;
    const response = await fetch(input, init);
    return hooks.after ? hooks.after(operation, n, response) : response;
  };
  return { fetch: spy, calls };
}
