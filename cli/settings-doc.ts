/**
 * Reading operator settings schemas (zod 4) for people: each setting's type
 * in words, whether it is required or its default, its description and
 * examples. `streams ops` and the generated docs print what this finds.
 */
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { formatDuration } from '../graph/units.ts';

/** One setting of an operator, as docs and `streams ops NAME` show it. */
export interface SettingDoc {
  /** The key under `with:`; nested keys are dotted (`tls.ca`); `<name>` stands for a key of the user's choosing. */
  name: string;
  /** The type in words: `duration`, `integer >= 1`, `one of: a, b`, `map of string to expression`. */
  type: string;
  required: boolean;
  /** The default as a user would write it (`1s`, `64KiB`, `lines`), when there is one. */
  default?: string;
  description?: string;
  examples: readonly unknown[];
}

/** The parts of zod 4's internal definition that describing a schema reads. */
interface SchemaDef {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  catchall?: z.core.$ZodType;
  element?: z.core.$ZodType;
  items?: z.core.$ZodType[];
  keyType?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  options?: z.core.$ZodType[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  format?: string;
  checks?: { _zod: { def: CheckDef } }[];
  defaultValue?: unknown;
  getter?: () => z.core.$ZodType;
}

interface CheckDef {
  check: string;
  value?: number;
  inclusive?: boolean;
  format?: string;
  minimum?: number;
  maximum?: number;
}

function defOf(schema: z.core.$ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

function metaOf(schema: z.core.$ZodType): Record<string, unknown> | undefined {
  return z.globalRegistry.get(schema) as Record<string, unknown> | undefined;
}

/** Wrappers that change whether or how a value is given, not what it is. */
const wrappers = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional', 'pipe', 'lazy']);

/** The schema a wrapper wraps; for a pipe (a transform) the input side, since users write inputs. */
function unwrapOnce(schema: z.core.$ZodType): z.core.$ZodType | undefined {
  const def = defOf(schema);
  if (!wrappers.has(def.type)) return undefined;
  if (def.type === 'pipe') return def.in;
  if (def.type === 'lazy') return def.getter?.();
  return def.innerType;
}

/** The schema and its wrappers, outermost first. */
function layers(schema: z.core.$ZodType): z.core.$ZodType[] {
  const list: z.core.$ZodType[] = [];
  for (let current: z.core.$ZodType | undefined = schema; current && list.length < 32; current = unwrapOnce(current)) list.push(current);
  return list;
}

/** Formats the settings helpers in `graph/settings.ts` mark their schemas with. */
const formatWords: Record<string, string> = { duration: 'duration', size: 'size', cel: 'expression', aggregate: 'aggregate' };

function customFormat(schema: z.core.$ZodType): string | undefined {
  for (const layer of layers(schema)) {
    const format = metaOf(layer)?.format;
    if (typeof format === 'string' && format in formatWords) return format;
  }
  return undefined;
}

const intFormats = new Set(['safeint', 'int32', 'uint32', 'int64', 'uint64']);

function numberWords(def: SchemaDef): string {
  let integer = def.format !== undefined && intFormats.has(def.format);
  let lower: { value: number; inclusive: boolean } | undefined;
  let upper: { value: number; inclusive: boolean } | undefined;
  if (def.format === 'uint32') lower = { value: 0, inclusive: true };
  for (const check of def.checks ?? []) {
    const c = check._zod.def;
    if (c.check === 'number_format' && c.format && intFormats.has(c.format)) integer = true;
    if (c.check === 'greater_than' && c.value !== undefined) lower = { value: c.value, inclusive: c.inclusive ?? false };
    if (c.check === 'less_than' && c.value !== undefined) upper = { value: c.value, inclusive: c.inclusive ?? false };
  }
  // For integers a strict bound reads better as an inclusive one: `integer >= 1`, not `integer > 0`.
  if (integer && lower && !lower.inclusive && Number.isInteger(lower.value)) lower = { value: lower.value + 1, inclusive: true };
  if (integer && upper && !upper.inclusive && Number.isInteger(upper.value)) upper = { value: upper.value - 1, inclusive: true };
  const base = integer ? 'integer' : 'number';
  if (lower && upper && lower.inclusive && upper.inclusive) return `${base} from ${lower.value} to ${upper.value}`;
  const bounds = [
    lower && `${lower.inclusive ? '>=' : '>'} ${lower.value}`,
    upper && `${upper.inclusive ? '<=' : '<'} ${upper.value}`,
  ].filter(Boolean);
  return [base, bounds.join(' and ')].filter(Boolean).join(' ');
}

function lengthWords(def: SchemaDef, unit: string): string {
  let min: number | undefined;
  let max: number | undefined;
  for (const check of def.checks ?? []) {
    const c = check._zod.def;
    if (c.check === 'min_length') min = c.minimum;
    if (c.check === 'max_length') max = c.maximum;
    if (c.check === 'length_equals') min = max = (c as { length?: number }).length;
  }
  // A non-empty string or list is what a user expects anyway; only real limits are worth words.
  if (min !== undefined && min > 1 && max !== undefined) return min === max ? ` of ${min} ${unit}` : ` of ${min} to ${max} ${unit}`;
  if (min !== undefined && min > 1) return ` of at least ${min} ${unit}`;
  if (max !== undefined) return ` of at most ${max} ${unit}`;
  return '';
}

function literal(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * A setting's type in words, read from its zod schema: `duration`, `size`,
 * `expression`, `string`, `integer >= 1`, `one of: a, b`,
 * `map of string to expression`, `list of string`.
 */
export function typeWords(schema: z.core.$ZodType): string {
  const format = customFormat(schema);
  if (format) return formatWords[format];
  const def = defOf(schema);
  switch (def.type) {
    case 'nullable':
      return `${typeWords(def.innerType!)} or null`;
    case 'optional':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
    case 'pipe':
    case 'lazy':
      return typeWords(unwrapOnce(schema)!);
    case 'string':
      return (def.format && def.format !== 'regex' ? def.format : 'string') + lengthWords(def, 'characters');
    case 'number':
      return numberWords(def);
    case 'bigint':
      return 'integer';
    case 'boolean':
      return 'boolean';
    case 'enum':
      return `one of: ${Object.values(def.entries ?? {}).map(literal).join(', ')}`;
    case 'literal':
      return (def.values ?? []).length === 1 ? literal(def.values![0]) : `one of: ${(def.values ?? []).map(literal).join(', ')}`;
    case 'array':
      return `list${lengthWords(def, 'items')} of ${typeWords(def.element!)}`;
    case 'set':
      return `list of distinct ${typeWords(def.valueType!)}`;
    case 'tuple':
      return `list of [${(def.items ?? []).map(typeWords).join(', ')}]`;
    case 'record':
    case 'map':
      return `map of ${typeWords(def.keyType!)} to ${typeWords(def.valueType!)}`;
    case 'object':
      return 'map';
    case 'union':
      return [...new Set((def.options ?? []).map(typeWords))].join(' or ');
    case 'intersection':
      return 'map';
    case 'date':
      return 'date';
    case 'null':
      return 'null';
    case 'any':
    case 'unknown':
      return 'any value';
    default:
      return def.type;
  }
}

/** Formats a byte count back into the shortest exact size text (`64KiB`, `1GB`, `1000`). */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024], ['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['KB', 1e3]];
  for (const [unit, size] of units) if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return String(bytes);
}

/**
 * The default of a schema as a user would write it in YAML, or undefined.
 * A zod `.default()` on a parsing schema (a duration, a size) holds the
 * parsed value; it is turned back into text (`1000` ms is `1s`).
 */
export function inputDefault(schema: z.core.$ZodType): { value: unknown } | undefined {
  for (const layer of layers(schema)) {
    const def = defOf(layer);
    if (def.type === 'prefault') return { value: def.defaultValue };
    if (def.type !== 'default') continue;
    const value = def.defaultValue;
    const format = customFormat(def.innerType!);
    if (format === 'duration' && typeof value === 'number') return { value: formatDuration(value) };
    if (format === 'size' && typeof value === 'number') return { value: formatSize(value) };
    return { value };
  }
  return undefined;
}

/** The first description and examples found from the outermost wrapper in. */
function annotations(schema: z.core.$ZodType): { description?: string; examples: readonly unknown[] } {
  let description: string | undefined;
  let examples: readonly unknown[] | undefined;
  for (const layer of layers(schema)) {
    const meta = metaOf(layer);
    if (description === undefined && typeof meta?.description === 'string') description = meta.description;
    if (examples === undefined && Array.isArray(meta?.examples)) examples = meta.examples;
  }
  return { description, examples: examples ?? [] };
}

function isRequired(schema: z.core.$ZodType): boolean {
  return !(schema as unknown as { _zod: { optin?: string } })._zod.optin;
}

/** The object (or record) a settings schema describes, under its wrappers. */
function structural(schema: z.core.$ZodType): z.core.$ZodType {
  const all = layers(schema);
  return all[all.length - 1];
}

/** Inline YAML for a default or an example: `lines`, `1s`, `{ i: i }`, `[a, b]`. */
export function inlineYaml(value: unknown): string {
  if (typeof value === 'string') return value;
  return toYaml(value, { collectionStyle: 'flow', lineWidth: 0 }).trim();
}

function settingDoc(name: string, schema: z.core.$ZodType, required: boolean, fallback?: z.core.$ZodType): SettingDoc {
  const own = annotations(schema);
  const inherited = fallback ? annotations(fallback) : { examples: [] };
  const given = inputDefault(schema);
  return {
    name,
    type: typeWords(schema),
    required,
    ...(given ? { default: inlineYaml(given.value) } : {}),
    ...((own.description ?? inherited.description) !== undefined ? { description: own.description ?? inherited.description } : {}),
    examples: own.examples.length ? own.examples : inherited.examples,
  };
}

/**
 * The settings of an operator, one row per key under `with:` (nested maps
 * of fixed keys as dotted rows), read from its zod schema.
 */
export function describeSettings(schema: z.core.$ZodType, prefix = ''): SettingDoc[] {
  const inner = structural(schema);
  const def = defOf(inner);
  if (def.type === 'record' || def.type === 'map') {
    return [settingDoc(`${prefix}<name>`, def.valueType!, false, schema)];
  }
  if (def.type !== 'object') {
    return prefix ? [] : [settingDoc('<settings>', schema, isRequired(schema))];
  }
  const rows: SettingDoc[] = [];
  for (const [key, field] of Object.entries(def.shape ?? {})) {
    rows.push(settingDoc(prefix + key, field, isRequired(field)));
    if (defOf(structural(field)).type === 'object') rows.push(...describeSettings(field, `${prefix}${key}.`));
  }
  if (def.catchall && defOf(def.catchall).type !== 'never') rows.push(settingDoc(`${prefix}<name>`, def.catchall, false, schema));
  return rows;
}
