// The decoded parts of an HTTP request that the protocols and SigV4 need, independent of node:http.
import { InvalidParameterException } from '../errors.js';
import type { Operation } from '../operations/operation.js';

export interface ApiRequest {
  method: string;
  /** Path as received, still percent-encoded (SigV4 signs it in this form). */
  rawPath: string;
  /** Query parameters, percent-decoded, in order. */
  query: ReadonlyArray<readonly [string, string]>;
  /** Header names lower-cased, as node:http gives them. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}

/** An operation and its raw input members, ready for validation. */
export interface DecodedCall {
  operation: Operation;
  input: Record<string, unknown>;
}

export function decodeComponent(text: string, where: string): string {
  // Most labels and query values carry no escape: decodeURIComponent is a C++ builtin, dear for each of them.
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    throw new InvalidParameterException(`Malformed percent-encoding in ${where}: '${text.slice(0, 128)}'`);
  }
}

/** Splits a raw query string into decoded pairs (a `+` stays a `+`, as in SigV4's canonical form). */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([decodeComponent(name, 'query string'), decodeComponent(value, 'query string')]);
  }
  return pairs;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * How deep a JSON body may nest when `maxDepth` is asked for: well past the deepest input of the models (a role
 * mapping's rules, 5 levels), and far from what costs: JSON.parse of 1 MB nested 500,000 deep took 135 ms, and the
 * whole request 50 times as long as a flat 1 MB body (QA).
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `text` (JSON) nests arrays and objects deeper than `limit`; strings are skipped, escapes and all. */
export function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // To the closing quote: one not preceded by an odd run of backslashes.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * Parses a JSON object body (strict UTF-8); `fail` builds the protocol's error for anything else. `maxDepth`: refuse
 * deeper nesting before parsing (for bodies parsed before the caller is known, Cognito Identity's unsigned calls).
 */
export function parseJsonObject(body: Buffer, fail: (message: string) => Error, maxDepth?: number): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw fail('Request body is not valid UTF-8');
  }
  if (maxDepth !== undefined && nestsDeeperThan(text, maxDepth)) throw fail(`Request body nests JSON deeper than ${maxDepth} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw fail(`Request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw fail('Request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * Output → JSON in one JSON.stringify: undefined members are dropped, and a map key named "__proto__" (a client's)
 * stays a plain member. Timestamps arrive as epoch seconds already (operations may not answer with a Date; see
 * `epochSeconds` in operations/operation.ts), so the output is not copied first: that copy was about a tenth of a
 * 100-record ListRecords' CPU.
 */
export function serializeOutput(output: object): string {
  return JSON.stringify(output);
}
