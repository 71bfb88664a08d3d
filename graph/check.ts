/**
 * The checker: from a pipeline file's text to a typed, validated graph, or to
 * every diagnostic that stops it. Pure: the registry and environment come in
 * as data.
 */
import { hasErrors, sortDiagnostics, suggest, type Diagnostic } from './diagnostics.ts';
import type { Registry } from './operator-spec.ts';
import { parseSource } from './source.ts';
import { resolveReferences } from './resolve.ts';
import type { Graph, GraphNode } from './model.ts';
import { checkEdges, NodeInputs } from './check-edges.ts';
import { checkNode, unsettledMark } from './check-node.ts';
import { checkPlacement, parseHosts } from './placement.ts';
import { parseTransports } from './transports.ts';
import type { Deployment } from './hosts-file.ts';
import { checkExpressionTypes } from './check-expressions.ts';
import { isRecord, kindOf, Reporter } from './reporter.ts';

export const formatVersion = 1;

const topLevelKeys = ['streams', 'name', 'description', 'nodes', 'hosts', 'transports', 'params'];

export interface CheckInput {
  file: string;
  text: string;
  registry: Registry;
  env?: Readonly<Record<string, string | undefined>>;
  params?: Readonly<Record<string, unknown>>;
  /**
   * Hosts and transports from a hosts file (`--hosts`), checked by
   * `parseHostsFile`: its hosts replace the pipeline's `hosts:` (placement
   * is checked against them) and each transport it declares replaces the
   * pipeline's of the same kind.
   */
  deployment?: Deployment;
}

export interface CheckResult {
  /** Present when there are no errors (warnings allowed). */
  graph?: Graph;
  diagnostics: Diagnostic[];
}

/** Checks a pipeline file: parse, resolve references, check nodes, settings, edges, types and placement. */
export function checkPipeline(input: CheckInput): CheckResult {
  const parsed = parseSource(input.file, input.text);
  const report = new Reporter(parsed.source);
  // Appended one by one: spreading a list of a hundred thousand diagnostics overflows the call stack.
  for (const d of parsed.diagnostics) report.diagnostics.push(d);
  if (parsed.source.data === undefined) return { diagnostics: sortDiagnostics(report.diagnostics) };

  const resolved = resolveReferences({ source: parsed.source, env: input.env ?? {}, params: input.params });
  for (const d of resolved.diagnostics) report.diagnostics.push(d);
  const doc = resolved.data;
  if (!isRecord(doc)) {
    report.at({ line: 1, col: 1 }, 'bad_document', `a pipeline file must be a map with \`streams\`, \`name\` and \`nodes\`, found ${kindOf(doc)}`);
    return { diagnostics: sortDiagnostics(report.diagnostics) };
  }

  for (const key of Object.keys(doc)) {
    if (!topLevelKeys.includes(key)) report.key([key], 'unknown_field', `unknown top-level field \`${key}\``, suggest(key, topLevelKeys));
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

  const hosts = input.deployment?.hosts ?? parseHosts(doc.hosts, report);
  if (input.deployment && doc.hosts !== undefined) parseHosts(doc.hosts, report);
  const transports = { ...parseTransports(doc.transports, report), ...input.deployment?.transports };
  if (!('nodes' in doc)) {
    report.at({ line: 1, col: 1 }, 'missing_field', 'missing `nodes` (the map of named operators)');
    return { diagnostics: sortDiagnostics(report.diagnostics) };
  }
  // The names listed once: a map of a hundred thousand nodes takes a while to list.
  const allNames = isRecord(doc.nodes) ? Object.keys(doc.nodes) : [];
  if (allNames.length === 0) {
    report.value(['nodes'], 'bad_field', `\`nodes\` must be a map of node names to nodes, found ${isRecord(doc.nodes) ? 'an empty map' : kindOf(doc.nodes)}`);
    return { diagnostics: sortDiagnostics(report.diagnostics) };
  }
  const nodeMaps = doc.nodes as Record<string, unknown>;

  const nodes = new Map<string, GraphNode>();
  const unsettled = new Set<string>();
  const inputs = new NodeInputs(allNames.length);
  for (const name of allNames) {
    const checked = checkNode(name, nodeMaps[name], input.registry, report, resolved.failedPaths, nodes.size);
    inputs.add(checked.refs);
    const node = checked.node;
    if (!node) continue;
    nodes.set(name, node);
    if (node.settings === unsettledMark) unsettled.add(name);
  }
  for (const path of resolved.envPaths) {
    const node = path[0] === 'nodes' && path[2] === 'with' ? nodes.get(String(path[1])) : undefined;
    if (node) (node.envSettings ??= []).push(path.slice(3));
  }
  const { edges, numbered } = checkEdges({ nodes, inputs, allNames, unsettled, report });
  checkExpressionTypes({ numbered, unsettled, report });
  checkPlacement({ nodes, hosts, unsettled, report });

  const diagnostics = sortDiagnostics(report.diagnostics);
  if (hasErrors(diagnostics) || nodes.size !== allNames.length || unsettled.size > 0) return { diagnostics };
  const graph: Graph = { file: input.file, name: doc.name as string, nodes, edges, hosts, transports, params: resolved.params };
  return { graph, diagnostics };
}
