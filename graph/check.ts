/**
 * The checker: from a pipeline file's text to a typed, validated graph, or to
 * every diagnostic that stops it. Pure: the registry and environment come in
 * as data.
 */
import type { z } from 'zod';
import { didYouMean, hasErrors, sortDiagnostics, type Diagnostic, type DiagnosticCode, type Severity, type SourcePosition } from './diagnostics.ts';
import { outputsOf, type Registry } from './operator-spec.ts';
import { parseSource, type Path, type SourceFile } from './source.ts';
import { resolveReferences } from './resolve.ts';
import type { ChannelSettings, Graph, GraphNode, OnError, Placement } from './model.ts';
import type { IssueParams } from './settings.ts';
import { checkEdges, type InputRef } from './check-edges.ts';
import { checkPlacement, parseHosts } from './placement.ts';
import { checkExpressionTypes } from './check-expressions.ts';
import { parseDuration, parseSize } from './units.ts';

export const formatVersion = 1;

const topLevelKeys = ['streams', 'name', 'description', 'nodes', 'hosts', 'params'];
const nodeKeys = ['op', 'in', 'with', 'place', 'parallelism', 'on_error', 'capacity', 'capacity_bytes', 'when_full', 'description'];
const placeKeys = ['host', 'role', 'region', 'labels'];
const onErrorValues: OnError[] = ['dlq', 'drop', 'stop'];

export interface CheckInput {
  file: string;
  text: string;
  registry: Registry;
  env?: Readonly<Record<string, string | undefined>>;
  params?: Readonly<Record<string, unknown>>;
}

export interface CheckResult {
  /** Present when there are no errors (warnings allowed). */
  graph?: Graph;
  diagnostics: Diagnostic[];
}

/** Collects diagnostics for one file, located through its source map. */
export class Reporter {
  readonly diagnostics: Diagnostic[] = [];
  readonly source: SourceFile;
  constructor(source: SourceFile) {
    this.source = source;
  }

  at(position: SourcePosition, code: DiagnosticCode, message: string, hint?: string, severity: Severity = 'error'): void {
    this.diagnostics.push({ file: this.source.file, line: position.line, col: position.col, severity, code, message, ...(hint ? { hint } : {}) });
  }

  key(path: Path, code: DiagnosticCode, message: string, hint?: string, severity: Severity = 'error'): void {
    this.at(this.source.locate(path, 'key'), code, message, hint, severity);
  }

  value(path: Path, code: DiagnosticCode, message: string, hint?: string, severity: Severity = 'error'): void {
    this.at(this.source.locate(path, 'value'), code, message, hint, severity);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `a ${typeof value}`;
}

/** Checks a pipeline file: parse, resolve references, check nodes, settings, edges, types and placement. */
export function checkPipeline(input: CheckInput): CheckResult {
  const parsed = parseSource(input.file, input.text);
  const report = new Reporter(parsed.source);
  report.diagnostics.push(...parsed.diagnostics);
  if (parsed.source.data === undefined) return { diagnostics: sortDiagnostics(report.diagnostics) };

  const resolved = resolveReferences({ source: parsed.source, env: input.env ?? {}, params: input.params });
  report.diagnostics.push(...resolved.diagnostics);
  const doc = resolved.data;
  if (!isRecord(doc)) {
    report.at({ line: 1, col: 1 }, 'bad_document', `a pipeline file must be a map with \`streams\`, \`name\` and \`nodes\`, found ${kindOf(doc)}`);
    return { diagnostics: sortDiagnostics(report.diagnostics) };
  }

  for (const key of Object.keys(doc)) {
    if (!topLevelKeys.includes(key)) report.key([key], 'unknown_field', `unknown top-level field \`${key}\``, didYouMean(key, topLevelKeys));
  }
  if (!('streams' in doc)) {
    report.at({ line: 1, col: 1 }, 'bad_version', `missing \`streams: ${formatVersion}\` (the format version)`, `add \`streams: ${formatVersion}\` as the first line`);
  } else if (doc.streams !== formatVersion) {
    report.value(['streams'], 'bad_version', `unsupported format version \`${typeof doc.streams === 'string' ? JSON.stringify(doc.streams) : String(doc.streams)}\``, `this engine reads \`streams: ${formatVersion}\``);
  }
  if (!('name' in doc)) report.at({ line: 1, col: 1 }, 'missing_field', 'missing `name` for the pipeline');
  else if (typeof doc.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(doc.name)) {
    report.value(['name'], 'bad_field', '`name` must be a word of letters, digits, `-`, `_` or `.`');
  }
  if (doc.params !== undefined && !isRecord(doc.params)) report.value(['params'], 'bad_field', `\`params\` must be a map of names to default values, found ${kindOf(doc.params)}`);

  const hosts = parseHosts(doc.hosts, report);
  if (!('nodes' in doc)) {
    report.at({ line: 1, col: 1 }, 'missing_field', 'missing `nodes` (the map of named operators)');
    return { diagnostics: sortDiagnostics(report.diagnostics) };
  }
  if (!isRecord(doc.nodes) || Object.keys(doc.nodes).length === 0) {
    report.value(['nodes'], 'bad_field', `\`nodes\` must be a map of node names to nodes, found ${isRecord(doc.nodes) ? 'an empty map' : kindOf(doc.nodes)}`);
    return { diagnostics: sortDiagnostics(report.diagnostics) };
  }

  const nodes = new Map<string, GraphNode>();
  const inputRefs = new Map<string, InputRef[]>();
  const unsettled = new Set<string>();
  for (const [name, raw] of Object.entries(doc.nodes)) {
    const node = checkNode(name, raw, input.registry, report, inputRefs, resolved.failedPaths);
    if (!node) continue;
    nodes.set(name, node);
    if (node.settings === unsettledMark) unsettled.add(name);
  }
  const allNames = Object.keys(doc.nodes);
  const edges = checkEdges({ nodes, inputRefs, allNames, unsettled, report });
  checkExpressionTypes({ nodes, edges, unsettled, report });
  checkPlacement({ nodes, hosts, unsettled, report });

  const diagnostics = sortDiagnostics(report.diagnostics);
  if (hasErrors(diagnostics) || nodes.size !== allNames.length || unsettled.size > 0) return { diagnostics };
  const graph: Graph = { file: input.file, name: doc.name as string, nodes, edges, hosts, params: resolved.params };
  return { graph, diagnostics };
}

/** Stands in for the settings of a node whose settings failed, so its edges are still checked. */
const unsettledMark: unique symbol = Symbol('unsettled');

function checkNode(
  name: string,
  raw: unknown,
  registry: Registry,
  report: Reporter,
  inputRefs: Map<string, InputRef[]>,
  failedPaths: ReadonlySet<string>,
): GraphNode | undefined {
  const path = ['nodes', name];
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) {
    report.key(path, 'bad_field', `node name \`${name}\` must start with a letter and hold only letters, digits, \`-\` and \`_\``);
  }
  if (!isRecord(raw)) {
    report.value(path, 'bad_field', `node \`${name}\` must be a map with at least \`op\`, found ${kindOf(raw)}`);
    return undefined;
  }
  let inKey = 'in';
  for (const key of Object.keys(raw)) {
    if (nodeKeys.includes(key)) continue;
    const hint = didYouMean(key, nodeKeys);
    report.key([...path, key], 'unknown_field', `unknown field \`${key}\` in node \`${name}\``, hint);
    // A misspelt `in` is read as `in`, so that the typo is the one error it causes.
    if (hint === 'did you mean `in`?' && raw.in === undefined) inKey = key;
  }
  // Inputs are read even when the operator is not known, so the nodes they name do not look unused.
  // An `in` too malformed to give any input was reported as such; it does not also lack an input.
  const reported = report.diagnostics.length;
  const refs = parseInputRefs(name, inKey, raw[inKey], report);
  if (refs.length > 0 || report.diagnostics.length === reported) inputRefs.set(name, refs);
  if (typeof raw.op !== 'string') {
    if (raw.op === undefined) report.key(path, 'missing_field', `node \`${name}\` has no \`op\``, 'name its operator, e.g. `op: filter`');
    else report.value([...path, 'op'], 'bad_field', `\`op\` of node \`${name}\` must be an operator name, found ${kindOf(raw.op)}`);
    return undefined;
  }
  const spec = registry.get(raw.op);
  if (!spec) {
    report.value([...path, 'op'], 'unknown_operator', `unknown operator \`${raw.op}\``, didYouMean(raw.op, registry.keys()) ?? 'run `streams ops` for the list');
    return undefined;
  }
  const settings = checkSettings(name, spec.name, spec.settings, raw.with, report, failedPaths);
  const place = checkPlace(name, raw.place, report);
  let parallelism = 1;
  if (raw.parallelism !== undefined) {
    if (typeof raw.parallelism === 'number' && Number.isInteger(raw.parallelism) && raw.parallelism >= 1 && raw.parallelism <= 1024) parallelism = raw.parallelism;
    else report.value([...path, 'parallelism'], 'bad_field', `\`parallelism\` of node \`${name}\` must be an integer from 1 to 1024, found \`${String(raw.parallelism)}\``);
  }
  let onError: OnError = 'dlq';
  if (raw.on_error !== undefined) {
    if (onErrorValues.includes(raw.on_error as OnError)) onError = raw.on_error as OnError;
    else report.value([...path, 'on_error'], 'bad_field', `\`on_error\` must be one of \`dlq\`, \`drop\`, \`stop\`, found \`${String(raw.on_error)}\``, didYouMean(String(raw.on_error), onErrorValues));
  }
  const channel = checkChannelFields(name, raw, report);
  return {
    name,
    op: spec.name,
    spec,
    settings: settings ? settings.value : unsettledMark,
    rawSettings: raw.with ?? {},
    place,
    parallelism,
    onError,
    channel,
    outputTypes: {},
    at: report.source.locate(path, 'key'),
  };
}

/** The channel fields of a node: `capacity` (records), `capacity_bytes` (a size) and `when_full`. */
function checkChannelFields(name: string, raw: Record<string, unknown>, report: Reporter): ChannelSettings {
  const path = ['nodes', name];
  const channel: ChannelSettings = {};
  if (raw.capacity !== undefined) {
    if (typeof raw.capacity === 'number' && Number.isInteger(raw.capacity) && raw.capacity >= 1) channel.capacity = raw.capacity;
    else report.value([...path, 'capacity'], 'bad_field', `\`capacity\` of node \`${name}\` must be a positive integer (records), found \`${String(raw.capacity)}\``);
  }
  if (raw.capacity_bytes !== undefined) {
    const parsed = typeof raw.capacity_bytes === 'number' && Number.isInteger(raw.capacity_bytes) && raw.capacity_bytes > 0
      ? { ok: true as const, value: raw.capacity_bytes }
      : parseSize(String(raw.capacity_bytes));
    if (parsed.ok && parsed.value > 0) channel.capacityBytes = parsed.value;
    else report.value([...path, 'capacity_bytes'], 'bad_size', `\`capacity_bytes\` of node \`${name}\`: ${parsed.ok ? 'must be more than 0' : parsed.reason}`);
  }
  const policies = ['block', 'drop_oldest', 'drop_newest'] as const;
  if (raw.when_full !== undefined) {
    if (policies.includes(raw.when_full as (typeof policies)[number])) channel.whenFull = raw.when_full as (typeof policies)[number];
    else report.value([...path, 'when_full'], 'bad_field', `\`when_full\` must be one of \`block\`, \`drop_oldest\`, \`drop_newest\`, found \`${String(raw.when_full)}\``, didYouMean(String(raw.when_full), policies));
  }
  return channel;
}

function parseInputRefs(name: string, key: string, raw: unknown, report: Reporter): InputRef[] {
  const path = ['nodes', name, key];
  if (raw === undefined) return [];
  const one = (text: unknown, at: Path, toPort?: string): InputRef | undefined => {
    // A name, or a name and a port, neither empty: `gen`, `gen.dlq`.
    if (typeof text !== 'string' || !/^[^.\s]+(?:\.[^.\s]+)?$/.test(text)) {
      const found = typeof text !== 'string' ? kindOf(text) : text.trim() === '' ? 'an empty string' : `\`${text}\``;
      report.value(at, 'bad_field', `an input of node \`${name}\` must be a node name or \`node.port\`, found ${found}`);
      return undefined;
    }
    const dot = text.indexOf('.');
    return dot < 0 ? { from: text, path: at, toPort } : { from: text.slice(0, dot), fromPort: text.slice(dot + 1), path: at, toPort };
  };
  if (typeof raw === 'string') return [one(raw, path)].filter((r) => r !== undefined);
  if (Array.isArray(raw)) return raw.map((item, i) => one(item, [...path, i])).filter((r) => r !== undefined);
  if (isRecord(raw)) {
    // `in: {left: a, right: [b, c]}` feeds named input ports.
    const refs: InputRef[] = [];
    for (const [port, value] of Object.entries(raw)) {
      const list = Array.isArray(value) ? value : [value];
      list.forEach((item, i) => {
        const ref = one(item, Array.isArray(value) ? [...path, port, i] : [...path, port], port);
        if (ref) refs.push(ref);
      });
    }
    return refs;
  }
  report.value(path, 'bad_field', `\`in\` of node \`${name}\` must be a node name, a list of them, or a map of input ports, found ${kindOf(raw)}`);
  return [];
}

function checkPlace(name: string, raw: unknown, report: Reporter): Placement | undefined {
  if (raw === undefined) return undefined;
  const path = ['nodes', name, 'place'];
  if (!isRecord(raw)) {
    report.value(path, 'bad_field', `\`place\` of node \`${name}\` must be a map with \`role\`, \`region\`, \`host\` or \`labels\``);
    return undefined;
  }
  const place: Placement = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!placeKeys.includes(key)) {
      report.key([...path, key], 'unknown_field', `unknown field \`${key}\` in \`place\``, didYouMean(key, placeKeys));
    } else if (key === 'labels') {
      if (isRecord(value)) place.labels = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
      else report.value([...path, key], 'bad_field', '`labels` must be a map of label names to values');
    } else if (typeof value === 'string') {
      place[key as 'host' | 'role' | 'region'] = value;
    } else {
      report.value([...path, key], 'bad_field', `\`${key}\` in \`place\` must be a string`);
    }
  }
  return place;
}

/**
 * Validates a node's `with:` against its operator's schema: unknown settings
 * by name (with a suggestion), then every schema issue at its own key.
 */
function checkSettings(
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
  const known = settingKeys(schema);
  let ok = true;
  // Settings a misspelt key was taken for: they are not also reported missing.
  const suggested = new Set<string>();
  if (known) {
    for (const key of Object.keys(given)) {
      if (!known.includes(key)) {
        ok = false;
        const guess = didYouMean(key, known);
        if (guess) suggested.add(/`(.*)`/.exec(guess)![1]);
        const hint = guess ?? (known.length ? `known settings: ${known.map((k) => `\`${k}\``).join(', ')}` : `\`${op}\` takes no settings`);
        report.key([...path, key], 'unknown_setting', `unknown setting \`${key}\` for \`${op}\``, hint);
      }
    }
  }
  const result = schema.safeParse(given);
  if (result.success) return ok ? { value: result.data } : undefined;
  for (const issue of result.error.issues) {
    const issuePath = [...path, ...(issue.path as (string | number)[])];
    const params = (issue as { params?: IssueParams }).params;
    const setting = issue.path.join('.');
    // A failed `${...}` reference was reported already; what it left behind is noise.
    if (failedPaths.has(JSON.stringify(issuePath))) continue;
    if (issue.code !== 'custom' && isMissing(given, issue.path as (string | number)[])) {
      if (suggested.has(setting)) continue;
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
      const shown = found !== null && typeof found === 'object' ? kindOf(found) : `\`${String(found)}\``;
      report.value(issuePath, 'bad_setting', `${settingLabel(setting, op)}: expected one of ${choices.map((c) => `\`${c}\``).join(', ')}, found ${shown}`, typeof found === 'string' ? didYouMean(found, choices) : undefined);
    } else {
      const found = valueAt(given, issue.path as (string | number)[]);
      report.value(issuePath, params?.code ?? 'bad_setting', `${settingLabel(setting, op)}: ${describeIssue(issue, found)}`, params?.hint);
    }
  }
  return undefined;
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
  const shown = found !== null && typeof found === 'object' ? kindOf(found) : `\`${String(found)}\``;
  if (issue.code === 'invalid_type' && typeNames[issue.expected]) return `expected ${typeNames[issue.expected]}, found ${shown}`;
  if ((issue.code === 'too_small' || issue.code === 'too_big') && issue.origin === 'number') {
    const limit = issue.code === 'too_small' ? issue.minimum : issue.maximum;
    const bound = issue.code === 'too_small' ? (issue.inclusive ? 'at least' : 'more than') : issue.inclusive ? 'at most' : 'less than';
    return `must be ${bound} ${String(limit)}, found ${shown}`;
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


