// Starts a real `cognisync serve --port 0` child process for black-box tests and hands out real AWS clients.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { CognitoIdentityClient, GetCredentialsForIdentityCommand, GetIdCommand } from '@aws-sdk/client-cognito-identity';
import { CognitoSyncClient } from '@aws-sdk/client-cognito-sync';
import { createTestDatabase, type TestDatabase } from './postgres.ts';

export const binPath = resolve(import.meta.dirname, '../../bin/cognisync.js');

export const developerCredentials = {
  accessKeyId: 'AKIDCOGNISYNCTEST01',
  secretAccessKey: 'test-secret-key-for-cognisync-wire-tests',
};

export interface ServerProcess {
  endpoint: string;
  dataDir: string;
  /** Set when the server runs on PostgreSQL. */
  databaseUrl: string | undefined;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<number | null>;
}

/**
 * Starts a server on SQLite in a temp dir, or — when COGNISYNC_TEST_STORE=postgres (the wire-postgres suite) —
 * on a throw-away PostgreSQL database that is dropped when the server stops.
 */
export async function startServer(options: { env?: Record<string, string>; args?: string[]; dataDir?: string; databaseUrl?: string } = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'cognisync-test-'));
  let database: TestDatabase | undefined;
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl && process.env.COGNISYNC_TEST_STORE === 'postgres') {
    database = await createTestDatabase('cognisync_wire');
    databaseUrl = database.url;
  }
  const storeArgs = databaseUrl ? ['--database-url', databaseUrl] : [];
  const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', '--data-dir', dataDir, ...storeArgs, ...(options.args ?? [])], {
    env: {
      ...process.env,
      COGNISYNC_ACCESS_KEY_ID: developerCredentials.accessKeyId,
      COGNISYNC_SECRET_ACCESS_KEY: developerCredentials.secretAccessKey,
      COGNISYNC_LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = new Promise<string>((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`server did not start in time; stderr:\n${stderr}`)), 20_000);
    lines.on('line', (line) => {
      const match = /^cognisync listening on (http:\/\/\S+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolvePromise(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening; stderr:\n${stderr}`));
    });
  });
  /**
   * Ends the process with `signal` unless it has ended already, then removes the data dir this helper made (also
   * after a process that ended by itself) and the throw-away database; the process's exit code.
   */
  const end = async (signal: NodeJS.Signals): Promise<number | null> => {
    const code =
      child.exitCode !== null || child.signalCode !== null
        ? child.exitCode
        : await new Promise<number | null>((r) => {
            child.once('exit', (status) => r(status));
            child.kill(signal);
          });
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    await database?.drop();
    return code;
  };
  let endpoint: string;
  try {
    endpoint = await listening;
  } catch (error) {
    // Tests of refused starts end here: the process, its data dir and its database go too.
    await end('SIGKILL');
    throw error;
  }
  return {
    endpoint,
    dataDir,
    databaseUrl,
    child,
    stderr: () => stderr,
    stop: () => end('SIGTERM'),
  };
}

export interface ClientCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export function syncClient(endpoint: string, credentials: ClientCredentials = developerCredentials, region = 'us-east-1') {
  return new CognitoSyncClient({ endpoint, region, credentials, maxAttempts: 1 });
}

export function identityClient(endpoint: string, credentials: ClientCredentials = developerCredentials, region = 'us-east-1') {
  return new CognitoIdentityClient({ endpoint, region, credentials, maxAttempts: 1 });
}

/** Runs `fn` expecting it to reject; returns the error for assertions on name, status and message. */
export async function rejection(fn: () => Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number }; message: string }> {
  try {
    await fn();
  } catch (error) {
    return error as Error & { $metadata?: { httpStatusCode?: number } };
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** A fresh identity id in the pattern Cognito uses (REGION:GUID, lower-case hex). */
export function newIdentityId(region = 'us-east-1'): string {
  return `${region}:${crypto.randomUUID()}`;
}

/** A new identity of the pool (GetId, unauthenticated unless logins are given) and its temporary credentials. */
export async function identityCredentials(endpoint: string, identityPoolId: string, logins?: Record<string, string>) {
  const client = identityClient(endpoint);
  const { IdentityId } = await client.send(new GetIdCommand({ IdentityPoolId: identityPoolId, ...(logins ? { Logins: logins } : {}) }));
  const { Credentials } = await client.send(new GetCredentialsForIdentityCommand({ IdentityId: IdentityId!, ...(logins ? { Logins: logins } : {}) }));
  return {
    identityId: IdentityId!,
    credentials: { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretKey!, sessionToken: Credentials!.SessionToken! },
    expiration: Credentials!.Expiration!,
  };
}
