// Opaque NextToken values: a base64url JSON position. They hold no secret (every query is still scoped
// to the caller's identity), so a forged token can only skip within the caller's own data.
import { InvalidParameterException } from '../errors.js';

export function encodePageToken(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/** A string no position we issue can hold: the stores keep well-formed UTF-8 without NUL (see protocol/validate.ts). */
class UnstorableString extends Error {}

/**
 * Decodes a NextToken, checking its shape with `isValid`; anything else is InvalidParameterException. A string in
 * it must be one the stores can compare against: PostgreSQL refuses a NUL in a query parameter outright (a 500
 * where SQLite would page on), so a forged token with one is refused here, the same on both stores.
 */
export function decodePageToken<T>(token: string, isValid: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'), (_key, member: unknown) => {
      if (typeof member === 'string' && (member.includes('\u0000') || !member.isWellFormed())) throw new UnstorableString();
      return member;
    });
  } catch {
    value = undefined;
  }
  if (!isValid(value)) throw new InvalidParameterException('Invalid NextToken');
  return value;
}
