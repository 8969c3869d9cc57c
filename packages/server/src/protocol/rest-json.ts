// REST-JSON (Cognito Sync): a routing table built from the operations' model bindings, and the binding of
// path labels, query parameters, headers and JSON body members to an operation's input.
import { InvalidParameterException, UnknownOperationException } from '../errors.js';
import type { Member, Shape } from '../model/shapes.js';
import type { Operation } from '../operations/operation.js';
import { decodeComponent, parseJsonObject, type ApiRequest, type DecodedCall } from './request.js';
import { invalidValue } from './validate.js';

type Segment = { literal: string } | { label: string };

interface Route {
  method: string;
  segments: Segment[];
  operation: Operation;
  binding: Binding;
}

/** Where each input member of an operation travels, worked out once from the model rather than per request. */
interface Binding {
  members: Array<{ name: string; wireName: string; headerName: string; location: Member['location']; shape: Shape }>;
  hasBodyMembers: boolean;
}

function bindingOf(operation: Operation): Binding {
  const members = Object.entries(operation.model.input.members).map(([name, member]) => {
    const wireName = member.locationName ?? name;
    return { name, wireName, headerName: wireName.toLowerCase(), location: member.location, shape: member.shape };
  });
  return { members, hasBodyMembers: members.some((member) => member.location === undefined) };
}

function splitPath(path: string): string[] {
  const segments = path.split('/').slice(1);
  if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop();
  return segments;
}

/** Literal segments equal, label segments non-empty. */
function segmentsMatch(segments: readonly Segment[], parts: readonly string[]): boolean {
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if ('literal' in segment ? segment.literal !== part : part === '') return false;
  }
  return true;
}

export class RestJsonRouter {
  private readonly routes: Route[];

  constructor(operations: readonly Operation[]) {
    this.routes = operations.map((operation) => ({
      method: operation.model.http.method,
      operation,
      binding: bindingOf(operation),
      segments: splitPath(operation.model.http.requestUri.split('?')[0]!).map((part) =>
        part.startsWith('{') && part.endsWith('}') ? { label: part.slice(1, -1).replace(/\+$/, '') } : { literal: part },
      ),
    }));
  }

  /** The operation for a method and raw path, with its still-encoded labels. */
  match(method: string, rawPath: string): { operation: Operation; binding: Binding; labels: Map<string, string> } {
    const parts = splitPath(rawPath);
    // SigV4 signs the path with dot segments resolved, so `…/datasets/d/subscriptions/..` carries the signature of
    // `…/datasets/d`: routing such a path would let one signature act on another operation. (%2E still works.)
    if (parts.some((part) => part === '.' || part === '..')) {
      throw new InvalidParameterException("The request path must not contain '.' or '..' segments; percent-encode them (%2E)");
    }
    let pathMatched = false;
    for (const route of this.routes) {
      if (route.segments.length !== parts.length || !segmentsMatch(route.segments, parts)) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      // Labels are collected for the matching route only.
      const labels = new Map<string, string>();
      for (let i = 0; i < parts.length; i++) {
        const segment = route.segments[i]!;
        if ('label' in segment) labels.set(segment.label, parts[i]!);
      }
      return { operation: route.operation, binding: route.binding, labels };
    }
    throw new UnknownOperationException(
      pathMatched ? `Method ${method} is not allowed on ${rawPath.slice(0, 256)}` : `No Cognito Sync operation matches ${method} ${rawPath.slice(0, 256)}`,
    );
  }
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return true;
  const type = value.split(';')[0]!.trim().toLowerCase();
  return type === '' || type === 'application/json' || type.startsWith('application/x-amz-json-') || type.endsWith('+json');
}

/** Query and uri members arrive as text; integers must be plain decimal numbers. */
function fromText(shape: Shape, text: string, wireName: string): unknown {
  if (shape.type === 'integer' || shape.type === 'long') {
    // Up to 19 digits, a long's; validateInput then checks the range (and brings a long past 2^53 to the nearest safe value).
    if (!/^-?\d{1,19}$/.test(text)) throw invalidValue(wireName, text, 'Member must be a whole number of at most 19 digits');
    return Number(text);
  }
  if (shape.type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  return text;
}

/** Parses a JSON request body into an object; an empty body is `{}`. */
export function parseJsonBody(body: Buffer, contentType: string | undefined): Record<string, unknown> {
  if (body.length === 0) return {};
  if (!isJsonContentType(contentType)) throw new InvalidParameterException(`Unsupported Content-Type '${contentType}'; send application/json`);
  return parseJsonObject(body, (message) => new InvalidParameterException(message));
}

export function decodeRestJson(router: RestJsonRouter, request: ApiRequest): DecodedCall {
  const { operation, binding, labels } = router.match(request.method, request.rawPath);
  const body = binding.hasBodyMembers ? parseJsonBody(request.body, headerText(request.headers['content-type'])) : {};
  const input: Record<string, unknown> = {};
  for (const { name, wireName, headerName, location, shape } of binding.members) {
    let value: unknown;
    switch (location) {
      case 'uri': {
        const raw = labels.get(wireName);
        value = raw === undefined ? undefined : fromText(shape, decodeComponent(raw, 'path'), wireName);
        break;
      }
      case 'querystring': {
        // A repeated parameter: the last one counts.
        const found = request.query.findLast(([key]) => key === wireName);
        value = found === undefined ? undefined : fromText(shape, found[1], wireName);
        break;
      }
      case 'header': {
        const raw = headerText(request.headers[headerName]);
        value = raw === undefined ? undefined : fromText(shape, raw, wireName);
        break;
      }
      default:
        value = body[name];
    }
    if (value !== undefined) input[name] = value;
  }
  return { operation, input };
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}
