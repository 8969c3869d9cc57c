// Model-driven input validation: checks a decoded request against its operation's shape tree and
// answers AWS's "N validation errors detected" InvalidParameterException, converting timestamps to Dates.
import { InvalidParameterException, type ServiceError } from '../errors.js';
import type { Shape, StructureShape } from '../model/shapes.js';

const MAX_SHOWN_VALUE = 128;
const patternCache = new Map<string, RegExp>();

/** Java's `\s` (without UNICODE_CHARACTER_CLASS): ASCII whitespace only, as members of a character class. */
const JAVA_WHITESPACE = ' \\t\\n\\x0B\\f\\r';
/** Java's `\S`: every code point but those six, as ranges, so it also fits inside a (negated) class. */
const JAVA_NON_WHITESPACE = '\\x00-\\x08\\x0E-\\x1F\\x21-\\u{10FFFF}';

/**
 * A model pattern in JavaScript with Java's meaning. Under the `u` flag JavaScript's `\s` also matches U+00A0,
 * U+3000, U+FEFF and the other Unicode spaces, where Java's matches only ASCII whitespace, so `\s` and `\S` are
 * spelled out, inside character classes and out. `\w` and `\d` need nothing: they are ASCII under `u` as in Java
 * (`\d` always; `\w` would also match U+017F and U+212A under `i` with `u`, and no pattern is compiled with `i`).
 */
function javaPatternToJavaScript(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '\\' && i + 1 < pattern.length) {
      const next = pattern[++i]!;
      if (next === 's') out += inClass ? JAVA_WHITESPACE : `[${JAVA_WHITESPACE}]`;
      else if (next === 'S') out += inClass ? JAVA_NON_WHITESPACE : `[${JAVA_NON_WHITESPACE}]`;
      else out += char + next;
      continue;
    }
    if (char === '[' && !inClass) inClass = true;
    else if (char === ']' && inClass) inClass = false;
    out += char;
  }
  return out;
}

/** AWS's models use Java's `String.matches`, which must match the whole value. */
function fullMatch(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${javaPatternToJavaScript(pattern)})$`, 'u');
    patternCache.set(pattern, re);
  }
  return re;
}

/** 2^63: a long is a signed 64-bit integer. */
const LONG_LIMIT = 2 ** 63;

function show(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  // JSON would write a number too large for a double (1e400 in the request) as null.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    // Nesting too deep for JSON.stringify's stack: the value is the client's, so say what kind it is.
    text = Array.isArray(value) ? '[...]' : '{...}';
  }
  if (text.length <= MAX_SHOWN_VALUE) return text;
  // Cut between code points: half a surrogate pair would put a lone surrogate into the message.
  const end = isHighSurrogate(text.charCodeAt(MAX_SHOWN_VALUE - 1)) ? MAX_SHOWN_VALUE - 1 : MAX_SHOWN_VALUE;
  return `${text.slice(0, end)}...`;
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

const lowerFirst = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);

/**
 * The dates every client can read back: Python's datetime (boto3, the AWS CLI) holds years 1 to 9999 only, and botocore
 * reads an epoch number in the machine's own time zone (`fromtimestamp(value, tzlocal())`), so a day is kept clear at
 * each end for zones up to 14 h from UTC.
 */
const MIN_TIMESTAMP_MS = -62_135_596_800_000 + 86_400_000; // 0001-01-02T00:00:00Z (Date.UTC reads years 0-99 as 1900-1999)
const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 30, 23, 59, 59, 999);

/** Epoch seconds (fractional or whole, number or numeric string), as the AWS SDKs send them. */
export function parseTimestamp(value: unknown): Date | undefined {
  const seconds = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(seconds)) return undefined;
  const date = new Date(Math.round(seconds * 1000));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** One violation found outside the model's own constraints, in the same Coral wording as validateInput's. */
export function invalidValue(path: string, value: unknown, constraint: string): ServiceError {
  return new InvalidParameterException(`1 validation error detected: Value '${show(value)}' at '${path}' failed to satisfy constraint: ${constraint}`);
}

/** Violations listed in one message; the count still covers all (a body of a million bad items must not become a 400 MB answer). */
const MAX_LISTED_VIOLATIONS = 10;

class Collector {
  readonly messages: string[] = [];
  count = 0;
  /** `hidden`: the value is left out of the message, as AWS words it for a sensitive member (`Value at '…'`). */
  fail(path: string, value: unknown, constraint: string, hidden = false) {
    if (this.count++ < MAX_LISTED_VIOLATIONS) this.messages.push(`Value${hidden ? '' : ` '${show(value)}'`} at '${path}' failed to satisfy constraint: ${constraint}`);
  }
  missing(path: string) {
    if (this.count++ < MAX_LISTED_VIOLATIONS) this.messages.push(`Value null at '${path}' failed to satisfy constraint: Member must not be null`);
  }
}

/** A member's path in error messages (`recordPatches.1.member.key`), built only when a violation names it. */
const join = (parent: string, segment: string) => (parent ? `${parent}.${segment}` : segment);

/** Whether a shape holds a sensitive string anywhere inside it, by shape (worked out once per shape). */
const sensitiveShapes = new WeakMap<Shape, boolean>();

/**
 * Whether a value of `shape` may hold a sensitive member (a record value, a login token): a list, map or structure
 * that fails as a whole (wrong type, too many entries) is then left out of the message too, or it would show them.
 */
function holdsSensitive(shape: Shape, visiting = new Set<Shape>()): boolean {
  const known = sensitiveShapes.get(shape);
  if (known !== undefined) return known;
  // A shape that contains itself: what it holds is decided where the cycle started.
  if (visiting.has(shape)) return false;
  visiting.add(shape);
  let holds: boolean;
  switch (shape.type) {
    case 'string':
      holds = shape.sensitive === true;
      break;
    case 'list':
      holds = holdsSensitive(shape.member, visiting);
      break;
    case 'map':
      holds = holdsSensitive(shape.key, visiting) || holdsSensitive(shape.value, visiting);
      break;
    case 'structure':
      holds = Object.values(shape.members).some((member) => holdsSensitive(member.shape, visiting));
      break;
    default:
      holds = false;
  }
  sensitiveShapes.set(shape, holds);
  return holds;
}

/** `value` at `join(parent, segment)`: the path of a leaf is built only if it fails; a container's, when entered. */
function check(shape: Shape, value: unknown, parent: string, segment: string, errors: Collector): unknown {
  switch (shape.type) {
    case 'string': {
      const hidden = shape.sensitive === true;
      if (typeof value !== 'string') return errors.fail(join(parent, segment), value, 'Member must be of type string', hidden);
      // Both stores keep UTF-8 text: a lone surrogate would be silently replaced and NUL is refused by PostgreSQL.
      if (!value.isWellFormed()) return errors.fail(join(parent, segment), value.toWellFormed(), 'Member must be a well-formed Unicode string', hidden);
      if (value.includes('\u0000')) return errors.fail(join(parent, segment), value.replaceAll('\u0000', '\\0'), 'Member must not contain the NUL character', hidden);
      if (shape.min !== undefined && value.length < shape.min) errors.fail(join(parent, segment), value, `Member must have length greater than or equal to ${shape.min}`, hidden);
      if (shape.max !== undefined && value.length > shape.max) errors.fail(join(parent, segment), value, `Member must have length less than or equal to ${shape.max}`, hidden);
      if (shape.pattern !== undefined && !fullMatch(shape.pattern).test(value)) errors.fail(join(parent, segment), value, `Member must satisfy regular expression pattern: ${shape.pattern}`, hidden);
      if (shape.enum !== undefined && !shape.enum.includes(value)) errors.fail(join(parent, segment), value, `Member must satisfy enum value set: [${shape.enum.join(', ')}]`, hidden);
      return value;
    }
    case 'integer':
    case 'long': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return errors.fail(join(parent, segment), value, `Member must be of type ${shape.type} (a whole number)`);
      if (shape.type === 'long' && Math.abs(value) > LONG_LIMIT) return errors.fail(join(parent, segment), value, 'Member must be a 64-bit integer');
      if (shape.type === 'integer' && (value > 2 ** 31 - 1 || value < -(2 ** 31))) errors.fail(join(parent, segment), value, 'Member must be a 32-bit integer');
      // A long past 2^53 (JSON numbers are doubles here) is beyond any count or size cognisync keeps: the nearest
      // safe value compares the same way with every one of them (a LastSyncCount after everything, a SyncCount
      // that matches no record).
      const number = Number.isSafeInteger(value) ? value : Math.sign(value) * Number.MAX_SAFE_INTEGER;
      if (shape.min !== undefined && number < shape.min) errors.fail(join(parent, segment), value, `Member must have value greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && number > shape.max) errors.fail(join(parent, segment), value, `Member must have value less than or equal to ${shape.max}`);
      return number;
    }
    case 'boolean':
      if (typeof value !== 'boolean') return errors.fail(join(parent, segment), value, 'Member must be of type boolean');
      return value;
    case 'timestamp': {
      const date = parseTimestamp(value);
      if (!date) return errors.fail(join(parent, segment), value, 'Member must be a timestamp in epoch seconds');
      // Stored and answered back, a date outside years 1-9999 made boto3 fail on the whole answer (Python's datetime
      // raises ValueError, not a botocore error), so no Python client could read the dataset again.
      if (date.getTime() < MIN_TIMESTAMP_MS || date.getTime() > MAX_TIMESTAMP_MS) {
        return errors.fail(join(parent, segment), value, 'Member must be a timestamp from 0001-01-02T00:00:00Z to 9999-12-30T23:59:59.999Z');
      }
      return date;
    }
    case 'blob':
      if (typeof value !== 'string') return errors.fail(join(parent, segment), value, 'Member must be of type blob (base64 string)');
      return value;
    case 'list': {
      if (!Array.isArray(value)) return errors.fail(join(parent, segment), value, 'Member must be of type list', holdsSensitive(shape));
      if (shape.min !== undefined && value.length < shape.min) errors.fail(join(parent, segment), value, `Member must have length greater than or equal to ${shape.min}`, holdsSensitive(shape));
      if (shape.max !== undefined && value.length > shape.max) errors.fail(join(parent, segment), value, `Member must have length less than or equal to ${shape.max}`, holdsSensitive(shape));
      const path = join(parent, segment);
      return value.map((item, index) => (item === null ? errors.missing(`${path}.${index + 1}.member`) : check(shape.member, item, path, `${index + 1}.member`, errors)));
    }
    case 'map': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return errors.fail(join(parent, segment), value, 'Member must be of type map', holdsSensitive(shape));
      const entries = Object.entries(value);
      if (shape.min !== undefined && entries.length < shape.min) errors.fail(join(parent, segment), value, `Member must have length greater than or equal to ${shape.min}`, holdsSensitive(shape));
      if (shape.max !== undefined && entries.length > shape.max) errors.fail(join(parent, segment), value, `Member must have length less than or equal to ${shape.max}`, holdsSensitive(shape));
      const path = join(parent, segment);
      const out: Record<string, unknown> = {};
      for (const [key, item] of entries) {
        check(shape.key, key, path, `${key}.key`, errors);
        // defineProperty, not assignment: a key named `__proto__` is the client's data, not this object's prototype.
        Object.defineProperty(out, key, { value: item === null ? errors.missing(`${path}.${key}.value`) : check(shape.value, item, path, `${key}.value`, errors), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case 'structure':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return errors.fail(join(parent, segment), value, 'Member must be of type structure', holdsSensitive(shape));
      return checkStructure(shape, value as Record<string, unknown>, join(parent, segment), errors);
  }
}

type MemberEntry = readonly [name: string, member: StructureShape['members'][string], pathSegment: string];
/** Each structure's members with their path segments, worked out once per shape rather than per request. */
const memberEntries = new WeakMap<StructureShape, readonly MemberEntry[]>();

function membersOf(shape: StructureShape): readonly MemberEntry[] {
  let entries = memberEntries.get(shape);
  if (!entries) {
    entries = Object.entries(shape.members).map(([name, member]): MemberEntry => [name, member, lowerFirst(name)]);
    memberEntries.set(shape, entries);
  }
  return entries;
}

function checkStructure(shape: StructureShape, value: Record<string, unknown>, path: string, errors: Collector) {
  const out: Record<string, unknown> = {};
  for (const [name, member, segment] of membersOf(shape)) {
    const item = Object.hasOwn(value, name) ? value[name] : undefined;
    if (item === undefined || item === null) {
      if (member.required) errors.missing(join(path, segment));
      continue;
    }
    out[name] = check(member.shape, item, path, segment, errors);
  }
  // Members the model does not know are ignored, as AWS services do.
  return out;
}

/**
 * Validates `input` against an operation's input shape and returns the typed copy (timestamps as Dates).
 * Throws InvalidParameterException listing every violation, in AWS's wording.
 */
export function validateInput<T>(shape: StructureShape, input: Record<string, unknown>): T {
  const errors = new Collector();
  const out = checkStructure(shape, input, '', errors);
  if (errors.count > 0) {
    const { count } = errors;
    const more = count > errors.messages.length ? `; and ${count - errors.messages.length} more` : '';
    throw new InvalidParameterException(`${count} validation error${count === 1 ? '' : 's'} detected: ${errors.messages.join('; ')}${more}`);
  }
  return out as T;
}
