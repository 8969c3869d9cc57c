// Opaque NextToken values: a base64url JSON position. They hold no secret (every query is still scoped
// to the caller's identity), so a forged token can only skip within the caller's own data.
import { InvalidParameterException } from '../errors.js';

export function encodePageToken(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/** Decodes a NextToken, checking its shape with `isValid`; anything else is InvalidParameterException. */
export function decodePageToken<T>(token: string, isValid: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!isValid(value)) throw new InvalidParameterException('Invalid NextToken');
  return value;
}
