/**
 * Checking a node's `with:` against its operator's settings schema: unknown
 * settings by name (with a suggestion), then every schema issue at its own
 * key, in the author's words.
 */
import type { z } from 'zod';
import { closest, suggest } from './diagnostics.ts';
import type { IssueParams } from './settings.ts';
import { isRecord, kindOf, shown, type Reporter } from './reporter.ts';
import { parseDuration, parseSize } from './units.ts';

/**
 * Validates a node's `with:` against its operator's schema: unknown settings
 * by name (with a suggestion), then every schema issue at its own key.
 * Returns the parsed settings, or nothing when any is wrong.
 */
export function checkSettings(
  name: string,
  op: string,
  schema: z.ZodType,
  raw: unknown,
  report: Reporter,
  failedPaths: ReadonlySet<string>,
): { value: unknown } | undefined {
  const path = ['nodes', name, 'with'];
  if (raw !== undefined && raw !== null && !isRecord(raw)) {
    report.value(path, 'bad_field', `\`with\` of node \`${name}\` must be a map of settings, found ${kindOf(raw)}`);
    return undefined;
  }
  const given = (raw ?? {}) as Record<string, unknown>;
  const known = knownSettings(schema);
  let ok = true;
  // Settings a misspelt key was taken for: they are not also reported missing.
  let suggested: Set<string> | undefined;
  if (known) {
    for (const key of Object.keys(given)) {
      if (!known.includes(key)) {
        ok = false;
        const guess = closest(key, known);
        if (guess) (suggested ??= new Set()).add(guess);
        const hint = guess ? { suggestion: guess } : (known.length ? `known settings: ${known.map((k) => `\`${k}\``).join(', ')}` : `\`${op}\` takes no settings`);
        report.key([...path, key], 'unknown_setting', `unknown setting \`${key}\` for \`${op}\``, hint);
      }
    }
  }
  const result = schema.safeParse(given);
  if (result.success) return ok ? { value: reuseWritten(result.data, raw) } : undefined;
  for (const issue of result.error.issues) {
    const issuePath = [...path, ...(issue.path as (string | number)[])];
    const params = (issue as { params?: IssueParams }).params;
    const setting = issue.path.join('.');
    // A failed `${...}` reference was reported already; what it left behind is noise.
    if (failedPaths.has(JSON.stringify(issuePath))) continue;
    if (issue.code !== 'custom' && isMissing(given, issue.path as (string | number)[])) {
      if (suggested?.has(setting)) continue;
      const at = Object.keys(given).length ? report.source.locate(path, 'key') : report.source.locate(['nodes', name], 'key');
      report.at(at, 'missing_setting', `missing required setting \`${setting}\` for \`${op}\``);
    } else if (unitIssue(schema, issue)) {
      // A duration or size written as a bare or malformed number: say what a duration or size looks like.
      const found = valueAt(given, issue.path as (string | number)[]);
      const format = settingFormat(schema, issue.path as (string | number)[]);
      const example = format === 'duration' ? '`1s`' : '`64KiB`';
      const parsed = format === 'duration' ? parseDuration(String(found)) : parseSize(String(found));
      const reason = found === null || typeof found === 'object'
        ? `expected a ${format} such as ${example}, found ${kindOf(found)}`
        : parsed.ok ? `found \`${String(found)}\`` : parsed.reason;
      report.value(issuePath, format === 'duration' ? 'bad_duration' : 'bad_size', `${settingLabel(setting, op)}: ${reason}`);
    } else if (params?.offset !== undefined) {
      report.at(report.source.locateInString(issuePath, params.offset), params.code, `${settingLabel(setting, op)}: ${issue.message}`, params.hint);
    } else if (issue.code === 'unrecognized_keys') {
      continue;
    } else if (issue.code === 'invalid_value' && issue.values.every((v) => typeof v === 'string')) {
      // An enum: name the choices as they are written in YAML, and the nearest one.
      const found = valueAt(given, issue.path as (string | number)[]);
      const choices = issue.values as string[];
      report.value(issuePath, 'bad_setting', `${settingLabel(setting, op)}: expected one of ${choices.map((c) => `\`${c}\``).join(', ')}, found ${shown(found)}`, typeof found === 'string' ? suggest(found, choices) : undefined);
    } else {
      const found = valueAt(given, issue.path as (string | number)[]);
      report.value(issuePath, params?.code ?? 'bad_setting', `${settingLabel(setting, op)}: ${describeIssue(issue, found)}`, params?.hint);
    }
  }
  return undefined;
}

/**
 * The written settings when the schema's output equals them (no default
 * added, no unit converted: most nodes), else the output: a node then keeps
 * one copy of its settings, not two.
 */
function reuseWritten(parsed: unknown, written: unknown): unknown {
  return sameData(parsed, written) ? written : parsed;
}

/** Whether two values are the same data: equal scalars, or lists or plain maps of the same data. */
function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b) || !isPlainMap(a) || !isPlainMap(b)) return false;
  let count = 0;
  for (const key in a) {
    if (!Object.hasOwn(b, key) || !sameData(a[key], b[key])) return false;
    count++;
  }
  for (const key in b) if (Object.hasOwn(b, key)) count--;
  return count === 0;
}

/** A map as YAML and schemas make them: a plain object (not a class's instance, such as a `Map` or a `Date`). */
function isPlainMap(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function settingLabel(setting: string, op: string): string {
  return setting ? `setting \`${setting}\` of \`${op}\`` : `settings of \`${op}\``;
}

function isMissing(given: Record<string, unknown>, path: readonly (string | number)[]): boolean {
  return valueAt(given, path) === undefined;
}

function valueAt(given: Record<string, unknown>, path: readonly (string | number)[]): unknown {
  let current: unknown = given;
  for (const step of path) {
    if (!isRecord(current) && !Array.isArray(current)) return undefined;
    current = (current as Record<string | number, unknown>)[step];
  }
  return current;
}

/** Type names as a YAML author knows them. */
const typeNames: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'a boolean (`true` or `false`)',
  record: 'a map',
  object: 'a map',
  map: 'a map',
  array: 'a list',
};

/** Says what is wrong with a setting in the author's terms, naming the value found. */
function describeIssue(issue: z.core.$ZodIssue, found: unknown): string {
  if (issue.code === 'invalid_type' && typeNames[issue.expected]) return `expected ${typeNames[issue.expected]}, found ${shown(found)}`;
  if ((issue.code === 'too_small' || issue.code === 'too_big') && issue.origin === 'number') {
    const limit = issue.code === 'too_small' ? issue.minimum : issue.maximum;
    const bound = issue.code === 'too_small' ? (issue.inclusive ? 'at least' : 'more than') : issue.inclusive ? 'at most' : 'less than';
    return `must be ${bound} ${String(limit)}, found ${shown(found)}`;
  }
  if (issue.code === 'too_small' && issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
  const message = issue.message.replace(/^Invalid input: /, '');
  return message.charAt(0).toLowerCase() + message.slice(1);
}

/** Whether a schema issue is about the shape of a duration or size value, not the string it spells (which reports itself). */
function unitIssue(schema: z.ZodType, issue: z.core.$ZodIssue): boolean {
  if (issue.code === 'custom') return false;
  const format = settingFormat(schema, issue.path as (string | number)[]);
  return format === 'size' || (format === 'duration' && issue.code === 'invalid_type');
}

/** The `format` meta (`duration`, `size`, `cel`, ...) of the setting at a path inside a settings schema. */
function settingFormat(schema: z.ZodType, path: readonly (string | number)[]): string | undefined {
  type Def = { type?: string; shape?: Record<string, z.ZodType>; in?: z.ZodType; innerType?: z.ZodType; valueType?: z.ZodType };
  let node: z.ZodType | undefined = schema;
  let step = 0;
  for (let depth = 0; node && depth < 32; depth++) {
    const format = (node.meta() as { format?: unknown } | undefined)?.format;
    if (step === path.length && typeof format === 'string') return format;
    const def: Def = (node as unknown as { def: Def }).def;
    if (def.type === 'object' && step < path.length) node = def.shape?.[String(path[step++])];
    else if (def.type === 'record' && step < path.length) (node = def.valueType), step++;
    else if (def.type === 'pipe') node = def.in;
    else node = def.innerType;
  }
  return undefined;
}

const settingKeyLists = new WeakMap<z.ZodType, readonly string[] | null>();

/** `settingKeys`, listed once per schema: every node of an operator asks. */
function knownSettings(schema: z.ZodType): readonly string[] | undefined {
  let keys = settingKeyLists.get(schema);
  if (keys === undefined) settingKeyLists.set(schema, (keys = settingKeys(schema) ?? null));
  return keys ?? undefined;
}

/** The keys of an object schema, or undefined when it accepts any keys. */
export function settingKeys(schema: z.ZodType): string[] | undefined {
  const def = (schema as unknown as { def?: { type?: string; shape?: Record<string, unknown>; catchall?: unknown; in?: z.ZodType; innerType?: z.ZodType } }).def;
  if (!def) return undefined;
  if (def.type === 'object' && def.shape) {
    const catchall = def.catchall as { def?: { type?: string } } | undefined;
    return catchall && catchall.def?.type !== 'never' ? undefined : Object.keys(def.shape);
  }
  if (def.type === 'pipe' && def.in) return settingKeys(def.in);
  if ((def.type === 'default' || def.type === 'optional') && def.innerType) return settingKeys(def.innerType);
  return undefined;
}


