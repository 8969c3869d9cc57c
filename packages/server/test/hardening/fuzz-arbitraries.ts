// fast-check arbitraries for the fuzz test, derived from the generated AWS model tables: every operation of
// both APIs, each member bound where the model puts it (uri / querystring / header / body), values that
// mostly satisfy the model's constraints (so requests get deep) and sometimes break them on purpose; and
// byte-level mutations of valid signed requests.
import fc from 'fast-check';
import { cognitoIdentityMetadata, cognitoIdentityOperations } from '../../src/model/cognito-identity.generated.ts';
import { cognitoSyncOperations } from '../../src/model/cognito-sync.generated.ts';
import type { Member, OperationModel, Shape, StructureShape } from '../../src/model/shapes.ts';
import { encodeRfc3986 } from '../support/raw-http.ts';

export const syncOperationModels = Object.values(cognitoSyncOperations) as OperationModel[];
export const identityOperationModels = Object.values(cognitoIdentityOperations) as OperationModel[];

/** Values known to the running server (pool ids, identity ids, tokens…), by member name, so that calls reach handlers. */
export type KnownValues = Record<string, readonly unknown[]>;

/** A request before signing: what the model-derived arbitrary produces. */
export interface ApiCall {
  operation: string;
  service: 'cognito-sync' | 'cognito-identity';
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

// --- values ---------------------------------------------------------------------------------------------

const nastyStrings = [
  '', ' ', 'null', '../../etc/passwd', '%00', '\u0000', '\ud800', 'a\udfffb', '\u202e\u0301', '🤖'.repeat(40),
  "'; DROP TABLE records; --", '{"__proto__":{"x":1}}', '__proto__', 'constructor', 'x'.repeat(70_000), '\r\nx-injected: 1',
];
const nastyNumbers = [-1, -(2 ** 63), 2 ** 63, 2 ** 53 + 1, 1e308, -1e308, 0.5, -0, 2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER];

/** Something of the wrong type or outside the constraints, whatever the shape. */
function invalidValue(shape: Shape): fc.Arbitrary<unknown> {
  const deep = fc.integer({ min: 10, max: 3000 }).map((depth) => JSON.parse('['.repeat(depth) + ']'.repeat(depth)));
  const options: fc.Arbitrary<unknown>[] = [
    fc.constant(null),
    fc.constantFrom(...nastyStrings),
    fc.constantFrom(...nastyNumbers),
    fc.boolean(),
    fc.constant({}),
    fc.constant([]),
    fc.array(fc.integer(), { maxLength: 3 }),
    deep,
    fc.string({ unit: 'binary', maxLength: 20 }),
  ];
  if (shape.type === 'string' && shape.max !== undefined) options.push(fc.constant('a'.repeat(shape.max + 1)));
  if (shape.type === 'list') options.push(fc.constant(Array.from({ length: (shape.max ?? 100) + 1 }, () => null)));
  return fc.oneof(...options);
}

function patternString(pattern: string, min: number, max: number): fc.Arbitrary<string> {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${pattern})$`, 'u');
  } catch {
    return fc.string({ minLength: min, maxLength: max });
  }
  return fc.stringMatching(re).filter((text) => text.length >= min && text.length <= max);
}

/** A value of `shape` that mostly satisfies its constraints (known values first, where the member has them). */
export function validValue(shape: Shape, name: string, known: KnownValues, depth = 0): fc.Arbitrary<unknown> {
  const knownValues = known[name];
  const generated = generatedValue(shape, name, known, depth);
  if (!knownValues || knownValues.length === 0) return generated;
  return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...knownValues) }, { weight: 1, arbitrary: generated });
}

function generatedValue(shape: Shape, name: string, known: KnownValues, depth: number): fc.Arbitrary<unknown> {
  switch (shape.type) {
    case 'string': {
      if (shape.enum) return fc.constantFrom(...shape.enum);
      const min = shape.min ?? 0;
      const max = Math.min(shape.max ?? 64, 64);
      if (shape.pattern) return patternString(shape.pattern, min, Math.max(min, max));
      return fc.oneof(fc.string({ unit: 'grapheme', minLength: min, maxLength: Math.max(min, max) }), fc.string({ unit: 'binary', minLength: min, maxLength: Math.max(min, max) }));
    }
    case 'integer':
    case 'long':
      return fc.integer({ min: shape.min ?? -5, max: shape.max ?? 5000 });
    case 'boolean':
      return fc.boolean();
    case 'timestamp':
      return fc.oneof(fc.integer({ min: 0, max: 4_000_000_000 }), fc.double({ min: 0, max: 4e9, noNaN: true }), fc.integer({ min: 0, max: 4e9 }).map(String));
    case 'blob':
      return fc.base64String({ maxLength: 40 });
    case 'list': {
      if (depth > 3) return fc.constant([]);
      const minLength = Math.min(shape.min ?? 0, 4);
      return fc.array(memberValue(shape.member, singular(name), known, depth + 1), { minLength, maxLength: Math.max(minLength, Math.min(shape.max ?? 4, 4)) });
    }
    case 'map': {
      if (depth > 3) return fc.constant({});
      return fc.dictionary(
        generatedValue(shape.key, `${name}.key`, known, depth + 1) as fc.Arbitrary<string>,
        memberValue(shape.value, `${name}.value`, known, depth + 1),
        { maxKeys: Math.min(shape.max ?? 3, 3) },
      );
    }
    case 'structure':
      return depth > 3 ? fc.constant({}) : structureValue(shape, known, depth + 1);
  }
}

const singular = (name: string) => (name === 'IdentityIdsToDelete' ? 'IdentityId' : name === 'ApplicationArns' ? 'ApplicationArn' : name);

/** A member's value: usually valid, sometimes invalid. */
function memberValue(shape: Shape, name: string, known: KnownValues, depth: number): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 8, arbitrary: validValue(shape, name, known, depth) }, { weight: 1, arbitrary: invalidValue(shape) });
}

/** A structure: required members nearly always present, optional ones sometimes, unknown members now and then. */
function structureValue(shape: StructureShape, known: KnownValues, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(shape.members).map(([name, member]) =>
    fc
      .tuple(fc.double({ min: 0, max: 1, noNaN: true }), memberValue(member.shape, name, known, depth))
      .map(([roll, value]) => [name, (member.required ? roll < 0.97 : roll < 0.5) ? value : undefined] as const),
  );
  const unknown = fc.option(fc.tuple(fc.constantFrom('Unknown', 'extra', '__proto__', 'constructor'), fc.jsonValue({ maxDepth: 2 })), { freq: 8 });
  return fc.tuple(fc.tuple(...entries), unknown).map(([members, extra]) => {
    const out: Record<string, unknown> = {};
    for (const [name, value] of members) if (value !== undefined) out[name] = value;
    if (extra) Object.defineProperty(out, extra[0], { value: extra[1], enumerable: true, writable: true, configurable: true });
    return out;
  });
}

// --- binding --------------------------------------------------------------------------------------------

/** Header values must be bytes a client can send: anything else goes base64, as the SDKs do with ClientContext. */
function headerText(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
  return /^[\x20-\x7e]*$/.test(text) ? text : Buffer.from(text).toString('base64');
}

function textOf(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value) ?? '';
}

/** Binds a REST-JSON input to a request as the model says: labels into the path, query, headers, JSON body. */
export function bindRestJson(model: OperationModel, input: Record<string, unknown>): ApiCall {
  const members = model.input.members as Record<string, Member>;
  const [pathTemplate] = model.http.requestUri.split('?');
  let path = pathTemplate!;
  const query: Record<string, string> = {};
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const body: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(members)) {
    const value = input[name];
    const wireName = member.locationName ?? name;
    if (member.location === 'uri') {
      // A missing label leaves an empty segment (the server answers 404, as AWS's front door does).
      path = path.replace(`{${wireName}}`, value === undefined ? '' : encodeRfc3986(textOf(value)).slice(0, 4000));
    } else if (member.location === 'querystring') {
      if (value !== undefined) query[wireName] = textOf(value).slice(0, 4000).toWellFormed();
    } else if (member.location === 'header') {
      if (value !== undefined) headers[wireName.toLowerCase()] = headerText(value).slice(0, 4000);
    } else if (value !== undefined) {
      body[name] = value;
    }
  }
  for (const [name, value] of Object.entries(input)) if (!(name in members)) body[name] = value;
  const hasBody = Object.values(members).some((member) => member.location === undefined);
  return { operation: model.name, service: 'cognito-sync', method: model.http.method, path, query, headers, body: hasBody ? JSON.stringify(body) : '' };
}

/** Binds an AWS JSON 1.1 input: `POST /`, the target header, the whole input as the body. */
export function bindAwsJson(model: OperationModel, input: Record<string, unknown>): ApiCall {
  return {
    operation: model.name,
    service: 'cognito-identity',
    method: 'POST',
    path: '/',
    query: {},
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${cognitoIdentityMetadata.targetPrefix}.${model.name}` },
    body: JSON.stringify(input),
  };
}

/** Every operation of both models with model-derived input; `knownFor` gives the known values per operation. */
export function apiCallArbitrary(knownFor: (operation: string) => KnownValues): fc.Arbitrary<ApiCall> {
  const sync = syncOperationModels.map((model) => structureValue(model.input, knownFor(model.name), 0).map((input) => bindRestJson(model, input)));
  const identity = identityOperationModels.map((model) => structureValue(model.input, knownFor(model.name), 0).map((input) => bindAwsJson(model, input)));
  // Unknown operations and routes too: a target nobody serves, a path no route matches.
  const strays = fc.oneof(
    fc.string({ maxLength: 30 }).map((target): ApiCall => ({ operation: 'UnknownTarget', service: 'cognito-identity', method: 'POST', path: '/', query: {}, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': headerText(target) }, body: '{}' })),
    fc.tuple(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'), fc.webPath()).map(([method, path]): ApiCall => ({ operation: 'UnknownRoute', service: 'cognito-sync', method, path: path.startsWith('/') ? path : `/${path}`, query: {}, headers: {}, body: '' })),
  );
  return fc.oneof({ weight: 17, arbitrary: fc.oneof(...sync) }, { weight: 18, arbitrary: fc.oneof(...identity) }, { weight: 1, arbitrary: strays });
}

// --- byte mutations -------------------------------------------------------------------------------------

export type Mutation =
  | { kind: 'flip'; region: 'request-line' | 'headers' | 'body'; at: number; xor: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'oversize' }
  | { kind: 'invalid-utf8'; bytes: number[] }
  | { kind: 'bad-percent'; where: 'path' | 'query'; text: string }
  | { kind: 'deep-nesting'; depth: number; object: boolean }
  | { kind: 'number'; text: string }
  | { kind: 'extra-header'; name: string; value: number[] }
  | { kind: 'huge-header'; size: number }
  | { kind: 'unknown-query'; name: string; value: string }
  | { kind: 'method'; method: string }
  | { kind: 'duplicate-content-length' };

export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('flip' as const), region: fc.constantFrom('request-line' as const, 'headers' as const, 'body' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'oversize' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('invalid-utf8' as const), bytes: fc.array(fc.constantFrom(0x80, 0xbf, 0xc0, 0xc3, 0xe0, 0xed, 0xf0, 0xf5, 0xfe, 0xff, 0x22, 0x7b), { minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bad-percent' as const), where: fc.constantFrom('path' as const, 'query' as const), text: fc.constantFrom('%', '%Z', '%ZZ', '%E0%A4', '%C3', '%ED%A0%80', '%FF', '%%41', '%00') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deep-nesting' as const), depth: fc.integer({ min: 100, max: 60_000 }), object: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('number' as const), text: fc.constantFrom('1e400', '-1e400', '-1', '-0', '1.5', '99999999999999999999999', '-9223372036854775809', '9007199254740993', '1e-400', '0x10', 'NaN', 'Infinity', '00', '+1') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extra-header' as const), name: fc.constantFrom('x-fuzz', 'x-amz-meta', 'content-type', 'transfer-encoding', 'expect', 'x-amz-target', 'x-amz-security-token', 'authorization'), value: fc.array(fc.integer({ min: 0x20, max: 0xff }), { maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('huge-header' as const), size: fc.integer({ min: 17_000, max: 80_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unknown-query' as const), name: fc.string({ minLength: 1, maxLength: 10 }), value: fc.string({ maxLength: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('method' as const), method: fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE', 'POST', 'HEAD', 'TRACE', 'CONNECT', 'FOO') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'duplicate-content-length' as const }) },
);

/** Whether a mutation changes the request before signing (so the signature still matches) rather than after. */
export function mutatesBeforeSigning(mutation: Mutation): boolean {
  return mutation.kind === 'invalid-utf8' || mutation.kind === 'deep-nesting' || mutation.kind === 'number' || mutation.kind === 'unknown-query' || mutation.kind === 'bad-percent';
}

/**
 * Applies a before-signing mutation to the parts of a request (body, path, query). A bad percent-encoding in
 * the query goes to `rawQuery`, appended after signing: a decoded map cannot carry it.
 */
export function mutateParts(mutation: Mutation, call: { path: string; query: Record<string, string>; body: Buffer; rawQuery?: string }): { path: string; query: Record<string, string>; body: Buffer; rawQuery?: string } {
  switch (mutation.kind) {
    case 'invalid-utf8': {
      const at = Math.floor(call.body.length / 2);
      return { ...call, body: Buffer.concat([call.body.subarray(0, at), Buffer.from(mutation.bytes), call.body.subarray(at)]) };
    }
    case 'deep-nesting': {
      const nested = mutation.object ? '{"a":'.repeat(mutation.depth) + '1' + '}'.repeat(mutation.depth) : '['.repeat(mutation.depth) + ']'.repeat(mutation.depth);
      const text = call.body.toString();
      const member = /"(\w+)":/.exec(text);
      const body = member ? text.replace(new RegExp(`"${member[1]}":`), `"${member[1]}":${nested},"${member[1]}__":`) : `{"Deep":${nested}}`;
      return { ...call, body: Buffer.from(body) };
    }
    case 'number': {
      const text = call.body.toString();
      const body = /:\s*-?\d+(\.\d+)?/.test(text) ? text.replace(/:\s*-?\d+(\.\d+)?/, `:${mutation.text}`) : text.replace(/^\{/, `{"Number":${mutation.text},`);
      return { ...call, body: Buffer.from(body) };
    }
    case 'unknown-query':
      return { ...call, query: { ...call.query, [mutation.name]: mutation.value } };
    case 'bad-percent':
      if (mutation.where === 'path') {
        const segments = call.path.split('/');
        segments[segments.length > 2 ? 2 : segments.length - 1] = mutation.text;
        return { ...call, path: segments.join('/') };
      }
      return { ...call, rawQuery: `q=${mutation.text}` };
    default:
      return call;
  }
}

/** Applies an after-signing mutation to the serialized request; `maxBody` is the server's body cap. */
export function mutateBytes(mutation: Mutation, bytes: Buffer, maxBody: number): Buffer {
  const headerEnd = bytes.indexOf('\r\n\r\n');
  const lineEnd = bytes.indexOf('\r\n');
  switch (mutation.kind) {
    case 'flip': {
      const [from, to] = mutation.region === 'request-line' ? [0, lineEnd] : mutation.region === 'headers' ? [lineEnd + 2, headerEnd] : [headerEnd + 4, bytes.length];
      if (to <= from) return bytes;
      const copy = Buffer.from(bytes);
      const at = from + Math.floor(mutation.at * (to - from));
      copy[at] = copy[at]! ^ mutation.xor;
      return copy;
    }
    case 'truncate':
      return bytes.subarray(0, Math.floor(mutation.at * bytes.length));
    case 'oversize': {
      const head = bytes.subarray(0, headerEnd).toString('latin1').replace(/\r\ncontent-length: \d+/i, '');
      return Buffer.concat([Buffer.from(`${head}\r\ncontent-length: ${maxBody + 1}\r\n\r\n`, 'latin1'), Buffer.alloc(maxBody + 1, 0x7b)]);
    }
    case 'extra-header':
      return Buffer.concat([bytes.subarray(0, lineEnd + 2), Buffer.from(`${mutation.name}: `, 'latin1'), Buffer.from(mutation.value), Buffer.from('\r\n'), bytes.subarray(lineEnd + 2)]);
    case 'huge-header':
      return Buffer.concat([bytes.subarray(0, lineEnd + 2), Buffer.from(`x-padding: ${'p'.repeat(mutation.size)}\r\n`), bytes.subarray(lineEnd + 2)]);
    case 'method': {
      const space = bytes.indexOf(' ');
      return Buffer.concat([Buffer.from(mutation.method), bytes.subarray(space)]);
    }
    case 'duplicate-content-length':
      return Buffer.concat([bytes.subarray(0, lineEnd + 2), Buffer.from('content-length: 1\r\n'), bytes.subarray(lineEnd + 2)]);
    default:
      return bytes;
  }
}
