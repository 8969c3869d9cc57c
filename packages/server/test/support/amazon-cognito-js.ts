// amazon-cognito-js 1.1.0 (the archived browser sync manager, unmodified) in Node: the `window.localStorage` it
// expects, and the library loaded once onto aws-sdk v2, the global AWS it extends. Shared by the server's wire test
// and the client's interop tests.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import AWS from 'aws-sdk';

// aws-sdk v2 prints an end-of-support notice on a timer after it loads; it is noise in the test output.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';

/**
 * An in-memory stand-in for the browser's `window.localStorage`. Items are own enumerable properties, as on a
 * real Storage object, because amazon-cognito-js's `wipe()` walks them with `for…in` + `hasOwnProperty`.
 */
export class MemoryStorage {
  get length(): number {
    return Object.keys(this).length;
  }
  key(index: number): string | null {
    return Object.keys(this)[index] ?? null;
  }
  getItem(key: string): string | null {
    return Object.hasOwn(this, key) ? (this as unknown as Record<string, string>)[key]! : null;
  }
  setItem(key: string, value: string): void {
    (this as unknown as Record<string, string>)[key] = String(value);
  }
  removeItem(key: string): void {
    delete (this as unknown as Record<string, string>)[key];
  }
  clear(): void {
    for (const key of Object.keys(this)) delete (this as unknown as Record<string, string>)[key];
  }
}

/** The page's `window.localStorage`, where the library's default DataStore keeps its datasets. */
export const windowStorage = new MemoryStorage();
// CognitoSyncManager's default DataStore (StoreLocalStorage) reads the free variable `window.localStorage` in
// its constructor. A minimal `window` rather than `window = globalThis`, so nothing else in the process starts
// to think it runs in a browser. (aws-sdk v2 decides that with AWS.util.isBrowser(), which stays false in Node,
// so CognitoIdentityCredentials keeps its identity-id cache in a plain object.)
Object.assign(globalThis, { window: { localStorage: windowStorage } });

// The package's `main` is a UMD bundle whose CommonJS branch does `require("aws-sdk")` and attaches
// AWS.CognitoSyncManager to that module object, which is the same instance as the `aws-sdk` import above.
createRequire(import.meta.url)('amazon-cognito-js');
assert.equal(typeof (AWS as unknown as { CognitoSyncManager?: unknown }).CognitoSyncManager, 'function', 'amazon-cognito-js attached to another aws-sdk copy');
// The library's own sources also reference a global `AWS` (`AWS = AWS || {}`); the bundle does not need it,
// but a page that loads it with <script> has one, so mirror that.
Object.assign(globalThis, { AWS });

/** The library's objects (managers, datasets, records, conflicts): it ships no type declarations. */
export type Acjs = any;

/** How long any one library callback may take before the test fails instead of hanging. */
export const callbackTimeoutMs = 15_000;

/** A promise settled by `start`, or rejected when neither callback came within callbackTimeoutMs (the library hung). */
export function withTimeout<T>(what: string, start: (resolve: (value: T) => void, reject: (error: unknown) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no callback within ${callbackTimeoutMs} ms (the library hung)`)), callbackTimeoutMs);
    const settle = <A>(fn: (a: A) => void) => (a: A) => {
      clearTimeout(timer);
      fn(a);
    };
    try {
      start(settle(resolve), settle(reject));
    } catch (error) {
      settle(reject)(error);
    }
  });
}

/** A node-style callback API call as a promise that fails after callbackTimeoutMs instead of hanging. */
export function call<T>(what: string, invoke: (callback: (error: unknown, value: T) => void) => void): Promise<T> {
  return withTimeout<T>(what, (resolve, reject) => invoke((error, value) => (error ? reject(error) : resolve(value))));
}

/**
 * Makes the library sync as a new unauthenticated identity of the pool on `endpoint`: aws-sdk v2's
 * CognitoIdentityCredentials (GetId + GetCredentialsForIdentity) become AWS.config's credentials. Returns its id.
 */
export async function signInAnonymously(endpoint: string, identityPoolId: string): Promise<string> {
  const clientConfig: AWS.CognitoIdentity.ClientConfiguration = { endpoint, region: 'us-east-1', maxRetries: 0 };
  const credentials = new AWS.CognitoIdentityCredentials({ IdentityPoolId: identityPoolId }, clientConfig);
  await credentials.getPromise();
  AWS.config.region = 'us-east-1';
  AWS.config.credentials = credentials;
  AWS.config.update({ cognitosync: { endpoint, maxRetries: 0 } } as never);
  return credentials.identityId;
}
