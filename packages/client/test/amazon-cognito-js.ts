// amazon-cognito-js 1.1.0 (the archived browser sync manager, unmodified) in Node: the window.localStorage it expects,
// and the library loaded once onto aws-sdk v2 as the global AWS it extends.
import { createRequire } from 'node:module';
import AWS from 'aws-sdk';

process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';

/** window.localStorage for amazon-cognito-js's default store; items are own properties as on a real Storage. */
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
Object.assign(globalThis, { window: { localStorage: new MemoryStorage() } });
createRequire(import.meta.url)('amazon-cognito-js');
Object.assign(globalThis, { AWS });

/** The library's objects (managers, datasets, records): untyped JavaScript. */
export type Acjs = any;

/** A node-style callback call as a promise that fails instead of hanging. */
export function call<T>(what: string, invoke: (callback: (error: unknown, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no callback within 15 s`)), 15_000);
    invoke((error, value) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value);
    });
  });
}

