/**
 * Checking one node: its name, its fields, its operator, its settings, and
 * its `in` read into input references for the edge checks.
 */
import { closest, suggest } from './diagnostics.ts';
import type { Registry } from './operator-spec.ts';
import type { GraphNode } from './model.ts';
import type { InputRef } from './check-edges.ts';
import { checkNodeFields } from './check-fields.ts';
import { checkSettings } from './check-settings.ts';
import { nodeKeys } from './node-fields.ts';
import { isRecord, kindOf, type Reporter } from './reporter.ts';
import type { Path } from './source.ts';

/** A node name: a letter or `_`, then letters, digits, `-` and `_`. */
const nodeName = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** An input: a name, or a name and a port, neither empty (`gen`, `gen.dlq`). */
const inputName = /^[^.\s]+(?:\.[^.\s]+)?$/;

/** Stands in for the settings of a node whose settings failed, so its edges are still checked. */
export const unsettledMark: unique symbol = Symbol('unsettled');

/** The settings as written of a node without `with` (`encode.json`, a sink): one object, never changed. */
const noSettings: Readonly<Record<string, never>> = Object.freeze({});

/** The output types of a node not typed yet (the edge checks give each its own, or leave it on a cycle): one object, never changed. */
const untyped: Readonly<Record<string, never>> = Object.freeze({});

/** A checked node, or nothing when it has no known operator; its input references, or nothing when its `in` was malformed. */
export interface CheckedNode {
  node?: GraphNode;
  refs?: InputRef[];
}

/**
 * Checks a node and reads its input references (even when the node fails,
 * so the nodes it reads do not look unused). The node has `unsettledMark`
 * for settings that failed, and `number` as its number (the count of nodes
 * checked before it).
 */
export function checkNode(
  name: string,
  raw: unknown,
  registry: Registry,
  report: Reporter,
  failedPaths: ReadonlySet<string>,
  number: number,
): CheckedNode {
  const path = ['nodes', name];
  if (!nodeName.test(name)) {
    report.key(path, 'bad_field', `node name \`${name}\` must start with a letter and hold only letters, digits, \`-\` and \`_\``);
  }
  if (!isRecord(raw)) {
    report.value(path, 'bad_field', `node \`${name}\` must be a map with at least \`op\`, found ${kindOf(raw)}`);
    return {};
  }
  let inKey = 'in';
  // `for in`, not a list of the keys per node: a node's map is a plain object (no inherited keys).
  for (const key in raw) {
    if (nodeKeys.includes(key)) continue;
    const guess = closest(key, nodeKeys);
    report.key([...path, key], 'unknown_field', `unknown field \`${key}\` in node \`${name}\``, guess ? { suggestion: guess } : undefined);
    // A misspelt `in` is read as `in`, so that the typo is the one error it causes.
    if (guess === 'in' && raw.in === undefined) inKey = key;
  }
  // Inputs are read even when the operator is not known, so the nodes they name do not look unused.
  // An `in` too malformed to give any input was reported as such; it does not also lack an input.
  const reported = report.diagnostics.length;
  const parsed = parseInputRefs(name, inKey, raw[inKey], report);
  const refs = parsed.length > 0 || report.diagnostics.length === reported ? parsed : undefined;
  if (typeof raw.op !== 'string') {
    if (raw.op === undefined) report.key(path, 'missing_field', `node \`${name}\` has no \`op\``, 'name its operator, e.g. `op: filter`');
    else report.value([...path, 'op'], 'bad_field', `\`op\` of node \`${name}\` must be an operator name, found ${kindOf(raw.op)}`);
    return { refs };
  }
  const spec = registry.get(raw.op);
  if (!spec) {
    report.value([...path, 'op'], 'unknown_operator', `unknown operator \`${raw.op}\``, suggest(raw.op, registry.keys()) ?? 'run `streams ops` for the list');
    return { refs };
  }
  const settings = checkSettings(name, spec.name, spec.settings, raw.with, report, failedPaths);
  const fields = checkNodeFields(name, raw, report);
  const node: GraphNode = {
    name,
    op: spec.name,
    spec,
    settings: settings ? settings.value : unsettledMark,
    rawSettings: raw.with ?? noSettings,
    // Named, not spread: a spread copies through a generic path, once per node.
    place: fields.place,
    parallelism: fields.parallelism,
    onError: fields.onError,
    channel: fields.channel,
    outputTypes: untyped,
    at: report.source.locate(path, 'key'),
    number,
  };
  return { node, refs };
}

/**
 * One entry of a node's `in` as written: where it stands is kept as the
 * node, key, port and list index it was read at, and made a path only when
 * a diagnostic needs it (a valid file of a hundred thousand nodes needs none).
 */
class WrittenInput implements InputRef {
  readonly from: string;
  readonly fromPort?: string;
  readonly toPort?: string;
  readonly #node: string;
  readonly #key: string;
  readonly #index?: number;

  constructor(text: string, node: string, key: string, toPort: string | undefined, index: number | undefined) {
    const dot = text.indexOf('.');
    this.from = dot < 0 ? text : text.slice(0, dot);
    this.fromPort = dot < 0 ? undefined : text.slice(dot + 1);
    this.toPort = toPort;
    this.#node = node;
    this.#key = key;
    this.#index = index;
  }

  /** `['nodes', node, 'in']`, then the port of a map of ports, then the index in a list. */
  get path(): Path {
    const path: (string | number)[] = ['nodes', this.#node, this.#key];
    if (this.toPort !== undefined) path.push(this.toPort);
    if (this.#index !== undefined) path.push(this.#index);
    return path;
  }
}

/**
 * A node's `in` written as one node's name (`in: gen`), the common case:
 * the name and the node it is read by are all it keeps (an object half the
 * size of a {@link WrittenInput}, for every node of a large file).
 */
class SoleInput implements InputRef {
  readonly from: string;
  readonly #node: string;

  constructor(from: string, node: string) {
    this.from = from;
    this.#node = node;
  }

  get fromPort(): undefined {
    return undefined;
  }

  get toPort(): undefined {
    return undefined;
  }

  get path(): Path {
    return ['nodes', this.#node, 'in'];
  }
}

/** A node's `in` as input references: a name, `node.port`, a list of them, or a map of input ports to them. */
function parseInputRefs(name: string, key: string, raw: unknown, report: Reporter): InputRef[] {
  if (raw === undefined) return [];
  // One input, the common case, in a list of its own size (a list grown by `push` reserves room for 17).
  if (typeof raw === 'string' && inputName.test(raw)) {
    return [key === 'in' && !raw.includes('.') ? new SoleInput(raw, name) : new WrittenInput(raw, name, key, undefined, undefined)];
  }
  const refs: InputRef[] = [];
  const add = (text: unknown, toPort?: string, index?: number): void => {
    if (typeof text === 'string' && inputName.test(text)) {
      refs.push(new WrittenInput(text, name, key, toPort, index));
      return;
    }
    const found = typeof text !== 'string' ? kindOf(text) : text.trim() === '' ? 'an empty string' : `\`${text}\``;
    const at: Path = ['nodes', name, key, ...(toPort !== undefined ? [toPort] : []), ...(index !== undefined ? [index] : [])];
    report.value(at, 'bad_field', `an input of node \`${name}\` must be a node name or \`node.port\`, found ${found}`);
  };
  if (typeof raw === 'string') {
    add(raw);
  } else if (Array.isArray(raw)) {
    for (let i = 0; i < raw.length; i++) add(raw[i], undefined, i);
  } else if (isRecord(raw)) {
    // `in: {left: a, right: [b, c]}` feeds named input ports.
    for (const [port, value] of Object.entries(raw)) {
      if (!Array.isArray(value)) add(value, port);
      else for (let i = 0; i < value.length; i++) add(value[i], port, i);
    }
  } else {
    report.value(['nodes', name, key], 'bad_field', `\`in\` of node \`${name}\` must be a node name, a list of them, or a map of input ports, found ${kindOf(raw)}`);
  }
  return refs;
}

