/**
 * Checking the fields of `graph/node-fields.ts` (a node's `parallelism`,
 * `on_error`, channel fields and `place`; a host under `hosts:`) against
 * their schemas, each failure worded from the schema: its choices, what it
 * `expects`, its format.
 */
import type { z } from 'zod';
import { suggest } from './diagnostics.ts';
import { fieldMeta, nodeFieldSchemas, placeSchema, type FieldMeta } from './node-fields.ts';
import type { ChannelSettings, OnError, Placement } from './model.ts';
import { isRecord, kindOf, shown, type Reporter } from './reporter.ts';
import type { Path } from './source.ts';

interface Def {
  type?: string;
  innerType?: z.ZodType;
  entries?: Record<string, string>;
  element?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { def: Def }).def;
}

/** The schema under `optional`, `nullable` and `default` wrappers. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let node = schema;
  for (let def = defOf(node); def.innerType && ['optional', 'nullable', 'default'].includes(def.type ?? ''); def = defOf(node)) node = def.innerType;
  return node;
}

/** The choices of an enum schema, as written in YAML. */
function choicesOf(schema: z.ZodType): string[] | undefined {
  const def = defOf(unwrapped(schema));
  return def.type === 'enum' && def.entries ? Object.values(def.entries) : undefined;
}

/** The meta of a field, on its wrapper or on the schema it wraps. */
function metaOf(schema: z.ZodType): FieldMeta {
  const own = fieldMeta(schema);
  return own.description !== undefined ? own : fieldMeta(unwrapped(schema));
}

/**
 * Checks one value against its field schema; returns the parsed value, or
 * nothing after reporting, in the author's words, what was expected.
 * `label` names the field in messages: "`capacity` of node `out`".
 */
export function checkField<T extends z.ZodType>(schema: T, raw: unknown, path: Path, label: string, report: Reporter): z.output<T> | undefined {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const meta = metaOf(schema);
  const choices = choicesOf(schema);
  const element = defOf(unwrapped(schema)).element;
  const itemChoices = element && choicesOf(element);
  if (choices) {
    const list = choices.map((c) => `\`${c}\``).join(', ');
    report.value(path, 'bad_field', `${label} must be one of ${list}, found ${shown(raw)}`, typeof raw === 'string' ? suggest(raw, choices) : undefined);
  } else if (itemChoices && Array.isArray(raw) && meta.item) {
    // A list of choices: each unknown item at its own place.
    raw.forEach((item, i) => {
      if (itemChoices.includes(item as string)) return;
      report.value([...path, i], 'bad_field', `unknown ${meta.item} \`${String(item)}\``, suggest(String(item), itemChoices) ?? `one of ${itemChoices.map((c) => `\`${c}\``).join(', ')}`);
    });
  } else if (meta.format === 'size') {
    const custom = result.error.issues.find((issue) => issue.code === 'custom');
    const reason = custom?.message
      ?? (typeof raw === 'number' && raw <= 0 ? 'must be more than 0' : `expected a size such as \`64KiB\` or a whole number of bytes, found ${shown(raw)}`);
    report.value(path, 'bad_size', `${label}: ${reason}`);
  } else {
    report.value(path, 'bad_field', `${label} must be ${meta.expects ?? 'valid'}, found ${shown(raw)}`);
  }
  return undefined;
}

/**
 * Checks a map against a strict object schema key by key: an unknown key
 * with a suggestion, each known one by its own schema. Returns the keys that
 * passed, parsed.
 */
export function checkFields(
  schema: z.ZodObject,
  raw: Record<string, unknown>,
  path: Path,
  words: { field: (key: string) => string; unknown: (key: string) => string },
  report: Reporter,
): Record<string, unknown> {
  const shape = schema.shape as Record<string, z.ZodType>;
  const keys = Object.keys(shape);
  const parsed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const field = shape[key];
    if (!field) {
      report.key([...path, key], 'unknown_field', words.unknown(key), suggest(key, keys));
      continue;
    }
    const checked = checkField(field, value, [...path, key], words.field(key), report);
    if (checked !== undefined) parsed[key] = checked;
  }
  return parsed;
}

/** Labels as a selector compares them: every value a string. */
export function labelStrings(labels: unknown): Record<string, string> {
  return isRecord(labels) ? Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])) : {};
}

/** A node's `place:`, checked against `placeSchema`. */
function checkPlace(name: string, raw: unknown, report: Reporter): Placement | undefined {
  if (raw === undefined) return undefined;
  const path = ['nodes', name, 'place'];
  if (!isRecord(raw)) {
    report.value(path, 'bad_field', `\`place\` of node \`${name}\` must be ${fieldMeta(placeSchema).expects}, found ${kindOf(raw)}`);
    return undefined;
  }
  const checked = checkFields(placeSchema, raw, path, {
    field: (key) => `\`${key}\` in \`place\` of node \`${name}\``,
    unknown: (key) => `unknown field \`${key}\` in \`place\``,
  }, report);
  const place: Placement = { ...(checked as Omit<Placement, 'labels'>) };
  if (checked.labels !== undefined) place.labels = labelStrings(checked.labels);
  else delete place.labels;
  return place;
}

/** What a node's fields besides `op`, `in` and `with` say, with defaults for those not given. */
export interface NodeFields {
  place?: Placement;
  parallelism: number;
  onError: OnError;
  channel: ChannelSettings;
}

/** The defaults of the fields that have one, as the schema gives them. */
const defaults = { parallelism: nodeFieldSchemas.parallelism.parse(undefined), on_error: nodeFieldSchemas.on_error.parse(undefined) };

/** The channel settings of a node that sets none (most nodes): one object, never changed. */
const noChannelSettings: ChannelSettings = Object.freeze({});

/** The fields of a node that writes none of them (most nodes): one object, never changed. */
const defaultFields: NodeFields = Object.freeze({ place: undefined, parallelism: defaults.parallelism, onError: defaults.on_error, channel: noChannelSettings });

/** The node-level fields this checks, from their one schema (`description` is only text). */
const fieldKeys = Object.keys(nodeFieldSchemas).filter((key) => key !== 'description');

/** Checks a node's fields of `nodeFieldSchemas`; a field that fails keeps its default. */
export function checkNodeFields(name: string, raw: Record<string, unknown>, report: Reporter): NodeFields {
  if (!fieldKeys.some((key) => raw[key] !== undefined)) return defaultFields;
  const path = ['nodes', name];
  const field = <K extends keyof typeof nodeFieldSchemas>(key: K): z.output<(typeof nodeFieldSchemas)[K]> | undefined =>
    raw[key] === undefined ? undefined : (checkField(nodeFieldSchemas[key], raw[key], [...path, key], `\`${key}\` of node \`${name}\``, report) as z.output<(typeof nodeFieldSchemas)[K]>);
  let channel = noChannelSettings;
  const capacity = field('capacity');
  if (capacity !== undefined) (channel = { ...channel }).capacity = capacity;
  const capacityBytes = field('capacity_bytes');
  if (capacityBytes !== undefined) (channel = { ...channel }).capacityBytes = capacityBytes;
  const whenFull = field('when_full');
  if (whenFull !== undefined) (channel = { ...channel }).whenFull = whenFull;
  return {
    place: checkPlace(name, raw.place, report),
    parallelism: field('parallelism') ?? defaults.parallelism,
    onError: field('on_error') ?? defaults.on_error,
    channel,
  };
}
