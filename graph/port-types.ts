/**
 * Port types and their unification, checked before anything runs.
 *
 * Written in operator definitions as short strings:
 * - `Event`, `Event<unknown>`: records of any shape;
 * - `Event<{ts: number, device: string}>`: records known to carry those fields;
 * - `Bytes`, `Object`;
 * - `Media<video/h264>`, `Media<audio/*>`: caps as GStreamer writes them;
 * - `Segment<hls>`, `Segment<dash>`, `Segment<*>`;
 * - `Any`: accepts everything;
 * - `T: Event` declares a type variable bound to what flows in, `T` reuses it.
 */

export type FieldType = 'string' | 'number' | 'bool' | 'list' | 'map' | 'any';

/** Known fields of an event; absent means the shape is unknown. */
export type EventSchema = Record<string, FieldType>;

export type PortType =
  | { kind: 'event'; schema?: EventSchema }
  | { kind: 'bytes' }
  | { kind: 'media'; caps: string }
  | { kind: 'segment'; format: string }
  | { kind: 'object' }
  | { kind: 'any' }
  | { kind: 'var'; name: string; bound?: PortType };

const fieldTypes = new Set<FieldType>(['string', 'number', 'bool', 'list', 'map', 'any']);

const declaredTypes = new Map<string, PortType>();

/**
 * A port type as an operator declares it, parsed once and shared: the same
 * few strings recur on every node. Callers must not change what it returns.
 */
export function declaredPortType(text: string): PortType {
  let type = declaredTypes.get(text);
  if (!type) declaredTypes.set(text, (type = parsePortType(text)));
  return type;
}

/** Parses a port type string; throws on a malformed one, since these come from code, not users. */
export function parsePortType(text: string): PortType {
  const source = text.trim();
  const variable = /^([A-Z])(?:\s*:\s*(.+))?$/.exec(source);
  if (variable) {
    return { kind: 'var', name: variable[1], bound: variable[2] ? parsePortType(variable[2]) : undefined };
  }
  const match = /^(\w+)(?:<(.*)>)?$/s.exec(source);
  if (!match) throw new Error(`malformed port type \`${text}\``);
  const [, head, arg] = match;
  switch (head) {
    case 'Event':
      return arg === undefined || arg.trim() === 'unknown' ? { kind: 'event' } : { kind: 'event', schema: parseSchema(arg) };
    case 'Bytes':
      return { kind: 'bytes' };
    case 'Object':
      return { kind: 'object' };
    case 'Any':
      return { kind: 'any' };
    case 'Media':
      return { kind: 'media', caps: (arg ?? '*/*').trim() };
    case 'Segment':
      return { kind: 'segment', format: (arg ?? '*').trim() };
    default:
      throw new Error(`unknown port type \`${head}\` in \`${text}\``);
  }
}

function parseSchema(text: string): EventSchema {
  const body = /^\s*\{(.*)\}\s*$/s.exec(text);
  if (!body) throw new Error(`malformed event schema \`${text}\``);
  const schema: EventSchema = {};
  for (const part of body[1].split(',')) {
    if (!part.trim()) continue;
    const [name, type] = part.split(':').map((s) => s.trim());
    if (!name || !fieldTypes.has(type as FieldType)) throw new Error(`malformed field \`${part}\` in \`${text}\``);
    schema[name] = type as FieldType;
  }
  return schema;
}

/** Formats a port type the way users read it in diagnostics and docs. */
export function formatPortType(type: PortType): string {
  switch (type.kind) {
    case 'event':
      return type.schema ? `Event<{${Object.entries(type.schema).map(([k, v]) => `${k}: ${v}`).join(', ')}}>` : 'Event<unknown>';
    case 'bytes':
      return 'Bytes';
    case 'object':
      return 'Object';
    case 'any':
      return 'Any';
    case 'media':
      return `Media<${type.caps}>`;
    case 'segment':
      return `Segment<${type.format}>`;
    case 'var':
      return type.bound ? formatPortType(type.bound) : 'Any';
  }
}

/** Caps and formats match part by part, `*` matching anything (like GStreamer's caps intersection). */
function patternsIntersect(a: string, b: string): boolean {
  const left = a.split('/');
  const right = b.split('/');
  const length = Math.max(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const x = left[i] ?? '*';
    const y = right[i] ?? '*';
    if (x !== '*' && y !== '*' && x !== y) return false;
  }
  return true;
}

function fieldFits(actual: FieldType, expected: FieldType): boolean {
  return expected === 'any' || actual === 'any' || actual === expected;
}

/**
 * Whether values of type `actual` may flow into a port declared `expected`.
 * An unknown event shape fits any event port (it is checked per record at run
 * time); a known shape must carry every field the port asks for.
 */
export function fits(actual: PortType, expected: PortType): boolean {
  if (expected.kind === 'var') return expected.bound ? fits(actual, expected.bound) : true;
  if (actual.kind === 'var') return actual.bound ? fits(actual.bound, expected) : true;
  if (expected.kind === 'any' || actual.kind === 'any') return true;
  if (actual.kind !== expected.kind) return false;
  switch (expected.kind) {
    case 'event': {
      const have = (actual as { schema?: EventSchema }).schema;
      if (!expected.schema || !have) return true;
      return Object.entries(expected.schema).every(([field, type]) => field in have && fieldFits(have[field], type));
    }
    case 'media':
      return patternsIntersect((actual as { caps: string }).caps, expected.caps);
    case 'segment':
      return patternsIntersect((actual as { format: string }).format, expected.format);
    default:
      return true;
  }
}

/**
 * Unifies the types arriving at one input port from several upstreams into
 * the one type the port sees, or reports that they cannot be unified.
 * Events unify to the fields all of them share; media caps to the common
 * pattern.
 */
export function unifyAll(types: readonly PortType[]): { ok: true; type: PortType } | { ok: false } {
  if (types.length === 0) return { ok: true, type: { kind: 'any' } };
  let result = types[0];
  for (let i = 1; i < types.length; i++) {
    const merged = unifyPair(result, types[i]);
    if (!merged) return { ok: false };
    result = merged;
  }
  return { ok: true, type: result };
}

function unifyPair(a: PortType, b: PortType): PortType | undefined {
  if (a.kind === 'any') return b;
  if (b.kind === 'any') return a;
  if (a.kind !== b.kind) return undefined;
  switch (a.kind) {
    case 'event': {
      const left = a.schema;
      const right = (b as { schema?: EventSchema }).schema;
      if (!left || !right) return { kind: 'event' };
      const shared: EventSchema = {};
      for (const [field, type] of Object.entries(left)) {
        if (field in right) shared[field] = type === right[field] ? type : 'any';
      }
      return { kind: 'event', schema: shared };
    }
    case 'media': {
      const other = (b as { caps: string }).caps;
      if (!patternsIntersect(a.caps, other)) return undefined;
      return { kind: 'media', caps: commonPattern(a.caps, other) };
    }
    case 'segment': {
      const other = (b as { format: string }).format;
      if (!patternsIntersect(a.format, other)) return undefined;
      return { kind: 'segment', format: commonPattern(a.format, other) };
    }
    default:
      return a;
  }
}

function commonPattern(a: string, b: string): string {
  const left = a.split('/');
  const right = b.split('/');
  return left.map((part, i) => (part === right[i] ? part : '*')).join('/');
}

/**
 * Equal inferred event types as one object: an operator that infers its
 * output from its settings (`decode.json`'s schema, `aggregate`'s fields)
 * makes one per node, and a checked graph keeps every node's. Shared, they
 * are kept once, and so is what is derived from each (its expression scope).
 * `shared` lives as long as one check. Callers must not change what it returns.
 */
export function sharedPortType(type: PortType, shared: Map<string, PortType>): PortType {
  if (type.kind !== 'event' || type.schema === undefined) return type;
  // Each name with its length before it, so no name can end early; in the order written, as `formatPortType` shows it.
  let key = '';
  for (const field in type.schema) key += `${field.length}:${field}=${type.schema[field]};`;
  const known = shared.get(key);
  if (known) return known;
  shared.set(key, type);
  return type;
}

/** Replaces type variables by what they were bound to, leaving unbound ones as their bound. */
export function substitute(type: PortType, bindings: { get(name: string): PortType | undefined }): PortType {
  if (type.kind !== 'var') return type;
  return bindings.get(type.name) ?? type.bound ?? { kind: 'any' };
}
