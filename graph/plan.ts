/**
 * The planner: which host runs each instance of each node of a checked
 * graph, and what every edge between hosts runs through. Pure and
 * deterministic: the same graph and hosts give the same plan, so every
 * worker computing or reading it agrees. The rules are in `docs/plan.md`.
 */
import { hasErrors, sortDiagnostics, type Diagnostic, type DiagnosticCode, type Hint } from './diagnostics.ts';
import { incomingEdges, topologicalOrder, type Edge, type Graph, type GraphNode, type Host } from './model.ts';
import { requirementsOf } from './operator-spec.ts';
import { describeHost, selects } from './placement.ts';
import { planEdges, type PlannedEdge } from './plan-edges.ts';
import { Reporter } from './reporter.ts';
import { parseSource, type Path } from './source.ts';

export type { PlannedEdge, Transport } from './plan-edges.ts';

/** The version of the plan's JSON form (`streams plan --format json`, the control plane's record). */
export const planVersion = 1;

/** One node as planned: the host of each of its instances. */
export interface PlannedNode {
  name: string;
  op: string;
  /** The host of each instance, by instance index; as long as the node's `parallelism`. */
  instances: string[];
  /** The distinct hosts it runs on, in the order of its instances. */
  hosts: string[];
  /** Where its records are partitioned to its instances: the key expression, when the node is keyed. */
  key?: string;
}

/** A host as a plan lists it: what the planner knew of it. */
export interface PlannedHost {
  name: string;
  role?: string;
  region?: string;
  labels: Record<string, string>;
  offers: string[];
  listen?: string[];
  url?: string;
}

/** Which host runs what, and how the edges between hosts are carried. */
export interface Plan {
  version: typeof planVersion;
  /** The pipeline's `name`. */
  graph: string;
  /** In the graph's file order. */
  nodes: PlannedNode[];
  /** Every edge, in the graph's order; `transport.kind` is `local` when both ends share their host. */
  edges: PlannedEdge[];
  hosts: PlannedHost[];
}

export interface PlanInput {
  graph: Graph;
  /** The pipeline's text, to locate diagnostics at a node's `place` or `parallelism`; without it they stand at the node's name. */
  text?: string;
  /** Hosts to plan over instead of the graph's (after `mergeReportedCapabilities`, say). */
  hosts?: readonly Host[];
}

export interface PlanResult {
  /** Present when there are no errors. */
  plan?: Plan;
  diagnostics: Diagnostic[];
}

/**
 * Plans a checked graph over its hosts. Errors, each located in the
 * pipeline (or the hosts file, for a host or transport): a node no host can
 * run (`unplaceable`, `unmet_requirement`), a keyed node with `parallelism`
 * but no key (`missing_key`), an edge between hosts whose transport is not
 * declared or not reachable from its hosts (`unreachable_transport`).
 *
 * @example
 * const { plan, diagnostics } = planGraph({ graph, text });
 */
export function planGraph(input: PlanInput): PlanResult {
  const { graph } = input;
  const hosts = input.hosts ?? graph.hosts;
  const locator = new PlanLocator(graph, input.text);
  const incoming = incomingEdges(graph.edges);
  const load = new Map(hosts.map((h) => [h.name, 0]));
  const placed = new Map<string, PlannedNode>();
  for (const name of topologicalOrder(graph)) {
    const node = graph.nodes.get(name)!;
    const inputs = incoming.get(name) ?? [];
    const key = keyOf(node, inputs, locator);
    const candidates = candidatesFor(node, hosts, locator);
    if (candidates.length === 0) continue;
    const instances = alongsideKeyedInput(node, inputs, candidates, placed)
      ?? (node.parallelism === 1 ? [hostForSingle(inputs, candidates, placed, load)] : spread(node.parallelism, candidates, load));
    for (const host of instances) load.set(host, load.get(host)! + 1);
    placed.set(name, { name, op: node.op, instances, hosts: [...new Set(instances)], ...(key !== undefined && { key }) });
  }
  const edges = planEdges({ graph, placed, hosts, locator });
  const diagnostics = sortDiagnostics(locator.diagnostics);
  if (hasErrors(diagnostics) || placed.size !== graph.nodes.size) return { diagnostics };
  const nodes = [...graph.nodes.keys()].map((name) => placed.get(name)!);
  return { plan: { version: planVersion, graph: graph.name, nodes, edges, hosts: hosts.map(plannedHost) }, diagnostics };
}

/**
 * Locates the planner's diagnostics: in the pipeline, parsed again only
 * when something is wrong (as `checkPaths` does), or at a host's or
 * transport's own place, which may be another file.
 */
export class PlanLocator {
  readonly diagnostics: Diagnostic[] = [];
  #reporter: Reporter | undefined;
  readonly #graph: Graph;
  readonly #text: string | undefined;
  constructor(graph: Graph, text: string | undefined) {
    this.#graph = graph;
    this.#text = text;
  }

  /** Reports at a path of the pipeline; without its text, at the node's name. */
  node(node: string, path: Path, code: DiagnosticCode, message: string, hint?: Hint, severity: 'error' | 'warning' = 'error'): void {
    if (this.#text === undefined) {
      const at = this.#graph.nodes.get(node)!.at;
      this.at({ file: this.#graph.file, ...at }, code, message, typeof hint === 'string' ? hint : undefined, severity);
      return;
    }
    this.#reporter ??= new Reporter(parseSource(this.#graph.file, this.#text).source);
    this.#reporter.key(['nodes', node, ...path], code, message, hint, severity);
    this.diagnostics.push(this.#reporter.diagnostics.pop()!);
  }

  /** Reports at a place already known (a host's, a transport's). */
  at(at: { file: string; line: number; col: number }, code: DiagnosticCode, message: string, hint?: string, severity: 'error' | 'warning' = 'error'): void {
    this.diagnostics.push({ file: at.file, line: at.line, col: at.col, severity, code, message, ...(hint !== undefined && { hint }) });
  }
}

/** The hosts `place` selects that offer all the operator needs; none is an error at `place` (or at `op`). */
function candidatesFor(node: GraphNode, hosts: readonly Host[], locator: PlanLocator): Host[] {
  const selected = hosts.filter((h) => selects(node.place, h));
  const needs = requirementsOf(node.spec, node.settings);
  const able = selected.filter((h) => needs.every((need) => h.offers.includes(need)));
  const address = boundAddress(node);
  const binding = able.filter((h) => canBind(h, address));
  if (binding.length > 0) return binding;
  const where = node.place ? ['place'] : ['op'];
  if (able.length > 0) {
    locator.node(node.name, ['with', 'listen'], 'unplaceable', `node \`${node.name}\` listens on \`${address}\`, which no host ${node.place ? 'its `place` selects ' : ''}lists in its \`listen\` addresses`, `hosts: ${able.map((h) => `\`${h.name}\` (listen ${(h.listen ?? []).join(', ')})`).join('; ')}`);
    return [];
  }
  if (selected.length === 0) {
    locator.node(node.name, where, 'unplaceable', `no host satisfies the \`place\` of node \`${node.name}\``, `hosts: ${hosts.map(describeHost).join('; ')}`);
  } else {
    const list = needs.map((n) => `\`${n}\``).join(', ');
    locator.node(node.name, where, 'unmet_requirement', `node \`${node.name}\` (\`${node.op}\`) needs ${list} but no host ${node.place ? 'its `place` selects ' : ''}offers ${needs.length > 1 ? 'them all' : 'it'}`, `hosts: ${selected.map(describeHost).join('; ')}`);
  }
  return [];
}

/** Addresses any host can bind: every interface, or its own loopback. */
const anyHostAddresses = new Set(['', '0.0.0.0', '::', '127.0.0.1', '::1', 'localhost']);

/** The address in a node's `listen` setting (`10.0.0.2:1935` gives `10.0.0.2`); none for a port alone or no setting. */
function boundAddress(node: GraphNode): string | undefined {
  const listen = (node.rawSettings as Record<string, unknown> | undefined)?.listen;
  if (typeof listen !== 'string' || !listen.includes(':')) return undefined;
  return listen.slice(0, listen.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
}

/** Whether a host can bind an address: any can bind a wildcard or loopback, and a host that lists no `listen` addresses is not held to them. */
function canBind(host: Host, address: string | undefined): boolean {
  return address === undefined || anyHostAddresses.has(address) || host.listen === undefined || host.listen.includes(address);
}

/**
 * The key a node's input is partitioned by, when the node keeps state per
 * key. With `parallelism` above 1 a keyed node needs one: without it, each
 * instance would hold a part of what must be one state.
 */
function keyOf(node: GraphNode, inputs: readonly Edge[], locator: PlanLocator): string | undefined {
  const by = node.spec.partitionBy;
  if (!by) return undefined;
  if ('setting' in by) {
    const key = (node.rawSettings as Record<string, unknown> | undefined)?.[by.setting];
    if (typeof key === 'string') return key;
    if (node.parallelism > 1) {
      locator.node(node.name, ['parallelism'], 'missing_key', `node \`${node.name}\` (\`${node.op}\`) keeps state per key and runs with \`parallelism: ${node.parallelism}\` but has no \`${by.setting}\`: its instances would each hold part of one state`, `set \`${by.setting}\` under \`with:\`, or remove \`parallelism\``);
    }
    return undefined;
  }
  const keyed = inputs.length > 0 && inputs.every((edge) => edge.type.kind === 'event' && edge.type.schema !== undefined && by.field in edge.type.schema);
  if (keyed) return by.field;
  if (node.parallelism > 1) {
    locator.node(node.name, ['parallelism'], 'missing_key', `node \`${node.name}\` (\`${node.op}\`) runs with \`parallelism: ${node.parallelism}\` but its input has no \`${by.field}\` field to partition by: it keeps one state over all its records`, 'feed it from a window with a `key`, or remove `parallelism`');
  }
  return undefined;
}

/**
 * The host of a single-instance node: its first input's host when that can
 * run it (an edge that stays on one host needs no transport), else the
 * least loaded candidate, the first in file order on a tie.
 */
function hostForSingle(inputs: readonly Edge[], candidates: readonly Host[], placed: ReadonlyMap<string, PlannedNode>, load: ReadonlyMap<string, number>): string {
  for (const edge of inputs) {
    const upstream = placed.get(edge.from);
    if (upstream?.hosts.length === 1 && candidates.some((c) => c.name === upstream.hosts[0])) return upstream.hosts[0];
  }
  return leastLoaded(candidates, load).name;
}

/**
 * The instances of a node keyed by a field of what a keyed node sends it
 * (an `aggregate` after a window), when it has that node's parallelism and
 * can run on its hosts: the same hosts in the same order. Instance i then
 * reads only instance i, whose panes carry keys already partitioned the
 * same way, so the edge stays in the process (and the runtime can fuse
 * the two).
 */
function alongsideKeyedInput(node: GraphNode, inputs: readonly Edge[], candidates: readonly Host[], placed: ReadonlyMap<string, PlannedNode>): string[] | undefined {
  if (!node.spec.partitionBy || !('field' in node.spec.partitionBy) || inputs.length !== 1) return undefined;
  const upstream = placed.get(inputs[0].from);
  if (upstream?.key === undefined || upstream.instances.length !== node.parallelism) return undefined;
  return upstream.hosts.every((h) => candidates.some((c) => c.name === h)) ? [...upstream.instances] : undefined;
}

/** `parallelism` instances round-robin over the candidates, starting at the least loaded, so N instances land on N hosts when there are N. */
function spread(count: number, candidates: readonly Host[], load: ReadonlyMap<string, number>): string[] {
  const start = candidates.indexOf(leastLoaded(candidates, load));
  return Array.from({ length: count }, (_, i) => candidates[(start + i) % candidates.length].name);
}

function leastLoaded(candidates: readonly Host[], load: ReadonlyMap<string, number>): Host {
  let best = candidates[0];
  for (const host of candidates) if (load.get(host.name)! < load.get(best.name)!) best = host;
  return best;
}

function plannedHost(host: Host): PlannedHost {
  return {
    name: host.name,
    ...(host.role !== undefined && { role: host.role }),
    ...(host.region !== undefined && { region: host.region }),
    labels: host.labels,
    offers: [...host.offers],
    ...(host.listen !== undefined && { listen: [...host.listen] }),
    ...(host.url !== undefined && { url: host.url }),
  };
}

/**
 * One host's share of a plan, for its worker: the nodes with an instance
 * there (and which instance indexes), and the transports it reads from or
 * writes to.
 *
 * @example
 * const share = shareOf(plan, 'gpu1'); // share.nodes: [{name: 'encode', instances: [0]}]
 */
export function shareOf(plan: Plan, host: string): { nodes: { name: string; instances: number[] }[]; inbound: PlannedEdge[]; outbound: PlannedEdge[] } {
  const nodes = plan.nodes
    .map((node) => ({ name: node.name, instances: node.instances.flatMap((h, i) => (h === host ? [i] : [])) }))
    .filter((node) => node.instances.length > 0);
  const here = new Set(nodes.map((n) => n.name));
  const crossing = plan.edges.filter((edge) => edge.transport.kind !== 'local');
  return {
    nodes,
    inbound: crossing.filter((edge) => here.has(edge.to)),
    outbound: crossing.filter((edge) => here.has(edge.from)),
  };
}
