/**
 * `streams ops` and `streams ops NAME`: the operator catalogue in a
 * terminal. Everything here is read from the operator definitions and their
 * zod settings schemas, the same ones the checker, `docs/operators.md` and
 * the editor schema read; nothing about an operator is written twice.
 *
 * The functions are pure: they return text, and the CLI prints it.
 */
import { stringify as toYaml } from 'yaml';
import { didYouMean } from '../graph/diagnostics.ts';
import { outputsOf, type OperatorSpec, type PortSpec, type Registry } from '../graph/operator-spec.ts';
import { registry as defaultRegistry } from '../nodes/all.ts';
import { describeSettings, inlineYaml, type SettingDoc } from './settings-doc.ts';
import { UsageError } from './usage-error.ts';

export { describeSettings, formatSize, inlineYaml, inputDefault, typeWords, type SettingDoc } from './settings-doc.ts';

/** The node a docs example shows: the operator's example settings, fed from `upstream` when it has inputs. */
export function exampleNode(spec: OperatorSpec<any>): { name: string; node: Record<string, unknown> } {
  const node: Record<string, unknown> = { op: spec.name };
  const inputs = Object.keys(spec.inputs);
  if (inputs.length === 1) node.in = 'upstream';
  else if (inputs.length > 1) node.in = Object.fromEntries(inputs.map((port) => [port, `${port}-upstream`]));
  const settings = exampleSettings(spec);
  if (settings) node.with = settings;
  return { name: spec.name.replaceAll('.', '-'), node };
}

/**
 * The example `with:` block: the definition's own `example`, or else one
 * built from the first example of each required setting.
 */
export function exampleSettings(spec: OperatorSpec<any>): Record<string, unknown> | undefined {
  if (spec.example) return spec.example;
  const required = describeSettings(spec.settings).filter((s) => s.required && !s.name.includes('.') && !s.name.startsWith('<'));
  if (required.length === 0 || required.some((s) => s.examples.length === 0)) return undefined;
  return Object.fromEntries(required.map((s) => [s.name, s.examples[0]]));
}

/** A YAML snippet of a pipeline's `nodes:` holding the example node. */
export function exampleYaml(spec: OperatorSpec<any>): string {
  const { name, node } = exampleNode(spec);
  return toYaml({ nodes: { [name]: node } }, { lineWidth: 0 });
}

/** What a host must offer, in words. */
export function requirementsText(spec: OperatorSpec<any>): string {
  if (!spec.requires) return 'nothing: runs on any host';
  if (typeof spec.requires === 'function') {
    const example = spec.settings.safeParse(exampleSettings(spec) ?? {});
    const needs = example.success ? spec.requires(example.data) : undefined;
    return needs ? `depends on the settings (the example needs: ${needs.join(', ') || 'nothing'})` : 'depends on the settings';
  }
  return spec.requires.length ? spec.requires.join(', ') : 'nothing: runs on any host';
}

/**
 * A port type for one table cell: an event schema is cut to its field names
 * (`Event<{key, start}>`), and to its first `maxFields` of them (`{ts, edge, client, ...}`) when given.
 */
function shortType(type: string, maxFields = Infinity): string {
  return type.replace(/\{([^{}]*)\}/g, (_, fields: string) => {
    const names = fields.split(',').map((field) => field.split(':')[0].trim());
    return `{${names.length > maxFields ? [...names.slice(0, maxFields), '...'].join(', ') : names.join(', ')}}`;
  });
}

function portsText(ports: Record<string, PortSpec>, maxFields?: number): string {
  const entries = Object.entries(ports);
  if (entries.length === 0) return 'none';
  if (entries.length === 1) return shortType(entries[0][1].type, maxFields);
  return entries.map(([name, port]) => `${name}: ${shortType(port.type, maxFields)}`).join(', ');
}

/**
 * The ports of an operator on one line: `Bytes -> Event`, `none -> Event`
 * for a source, `Any -> none` for a sink. The implicit `dlq` is left out,
 * and event schemas are cut to their field names; `streams ops NAME` has them whole.
 */
export function signature(spec: OperatorSpec<any>, maxFields?: number): string {
  return `${portsText(spec.inputs, maxFields)} -> ${portsText(spec.outputs, maxFields)}`;
}

/** Fields of an event schema the `streams ops` table shows, so that its PORTS column stays narrow enough for the summaries. */
const tableFields = 3;

/** Pads columns to their widest cell; the last column is wrapped to `width` with a hanging indent. */
function columns(rows: string[][], indent: string, width: number): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const lead = widths.slice(0, -1).reduce((sum, w) => sum + w + 2, indent.length);
  return rows.flatMap((row) => {
    const head = indent + row.slice(0, -1).map((cell, i) => cell.padEnd(widths[i] + 2)).join('');
    const last = row[row.length - 1];
    // Below a readable width for the last column, do not wrap: a long line beats a ragged one.
    const room = width - lead;
    const lines = room >= 40 ? wrap(last, room) : [last];
    return lines.map((line, i) => (i === 0 ? head + line : ' '.repeat(lead) + line).trimEnd());
  });
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return lines.length || line ? [...lines, line] : [''];
}

/** Options for terminal rendering. */
export interface RenderOptions {
  /** The terminal's width in columns; text wraps to it. Default 100. */
  width?: number;
}

/**
 * The table `streams ops` prints: every operator with its port types and
 * summary, sorted by name, in aligned columns.
 *
 * @example renderOperatorTable(registry, { width: process.stdout.columns })
 */
export function renderOperatorTable(registry: Registry, options: RenderOptions = {}): string {
  const specs = [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
  const rows = [['OPERATOR', 'PORTS', 'SUMMARY'], ...specs.map((spec) => [spec.name, signature(spec, tableFields), spec.summary])];
  return `${columns(rows, '', options.width ?? 100).join('\n')}\n`;
}

/** The setting's requirement or default, in words. */
export function presence(setting: SettingDoc): string {
  if (setting.required) return 'required';
  return setting.default !== undefined ? `default ${setting.default}` : 'optional';
}

/**
 * What `streams ops NAME` prints: the operator's doc, its ports (with the
 * implicit `dlq`), its settings with types and defaults, what a host must
 * offer, and an example node.
 */
export function renderOperator(spec: OperatorSpec<any>, options: RenderOptions = {}): string {
  const width = options.width ?? 100;
  const out: string[] = [`${spec.name}: ${spec.summary}`, '', ...wrap(spec.doc, width - 2).map((line) => `  ${line}`), ''];

  // Ports and settings as blocks, not columns: types such as `Event<{key: any, ...}>` are too wide to align.
  const block = (head: string, text: string | undefined) => [`  ${head}`, ...(text ? wrap(text, width - 6).map((line) => `      ${line}`) : [])];
  const ports = (list: Record<string, PortSpec>) => Object.entries(list).flatMap(([name, port]) => block(`${name}: ${port.type}`, port.doc));
  out.push('Inputs:', ...(Object.keys(spec.inputs).length ? ports(spec.inputs) : ['  none (a source)']), '');
  out.push('Outputs:', ...ports(outputsOf(spec)), '');

  const settings = describeSettings(spec.settings);
  out.push('Settings:');
  if (settings.length === 0) out.push('  none');
  for (const setting of settings) {
    out.push(...block(`${setting.name}: ${setting.type} (${presence(setting)})`, setting.description));
    // An example is code: wrapping it could split a quoted string, so it keeps its own line.
    if (setting.examples.length) out.push(`      Example: ${inlineYaml(setting.examples[0])}`);
  }
  out.push('', `Requires: ${requirementsText(spec)}`, '', 'Example:');
  out.push(...exampleYaml(spec).trimEnd().split('\n').map((line) => `  ${line}`));
  return `${out.join('\n')}\n`;
}

/** The result of looking an operator up by name. */
export type OperatorLookup =
  | { found: true; spec: OperatorSpec<any>; text: string }
  | { found: false; message: string; hint: string };

/**
 * `streams ops NAME`: the operator's page, or why there is none, with the
 * closest name when the given one looks like a typo.
 *
 * @example operatorDoc('filtr') // { found: false, message: 'unknown operator `filtr`', hint: 'did you mean `filter`?' }
 */
export function operatorDoc(name: string, registry: Registry = defaultRegistry, options: RenderOptions = {}): OperatorLookup {
  const spec = registry.get(name);
  if (spec) return { found: true, spec, text: renderOperator(spec, options) };
  return {
    found: false,
    message: `unknown operator \`${name}\``,
    hint: didYouMean(name, registry.keys()) ?? 'run `streams ops` for the list',
  };
}

/** `streams ops [NAME...]`: prints the catalogue, or each named operator's page. */
export function opsCommand(names: readonly string[]): number {
  const width = process.stdout.columns;
  if (names.length === 0) {
    process.stdout.write(renderOperatorTable(defaultRegistry, { width }));
    return 0;
  }
  for (const name of names) {
    const found = operatorDoc(name, defaultRegistry, { width });
    if (!found.found) throw new UsageError(`${found.message} (${found.hint})`);
    process.stdout.write(found.text);
  }
  return 0;
}
