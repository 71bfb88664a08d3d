/**
 * One host's share of a plan as a graph its engine runs: the nodes placed
 * there, the edges between them as they are, and every edge that crosses
 * hosts cut in two: a `kafka.produce` node on the sending host writes the
 * edge's topic, a `kafka.consume` node on the receiving host reads it in
 * the downstream node's consumer group. Pure, like the planner: every worker
 * computes the same share from the same record. The rules are in
 * `docs/many-hosts.md`.
 */
import type { Diagnostic } from './diagnostics.ts';
import type { Edge, Graph, GraphNode } from './model.ts';
import type { Registry } from './operator-spec.ts';
import type { Plan, PlannedEdge } from './plan.ts';
import type { PortType } from './port-types.ts';

/** The result of `hostGraph`: the host's graph, or the diagnostics that stop it (an edge kind the worker cannot carry yet). */
export interface HostGraphResult {
  /** Present when there are no errors; empty (no nodes) when the host has no share. */
  graph?: Graph;
  diagnostics: Diagnostic[];
  /** The transport nodes added, by name: what they carry, for logs and tests. */
  transports: TransportNode[];
}

/** A `kafka.produce` or `kafka.consume` node standing for one end of a cross-host edge. */
export interface TransportNode {
  name: string;
  end: 'send' | 'receive';
  topic: string;
  partitions: number;
  brokers: string[];
  /** The consumer group (receiving end). */
  group?: string;
  /** The key expression (sending end, keyed edges). */
  key?: string;
  edge: { from: string; fromPort: string; to: string; toPort: string };
}

/**
 * The name of a transport node. Checked node names hold only letters,
 * digits, `-` and `_`, so a name with `~` and `:` never clashes with one.
 */
export function transportNodeName(end: 'send' | 'receive', edge: { from: string; fromPort: string; to: string; toPort: string }): string {
  return `~${end}:${edge.from}:${edge.fromPort}:${edge.to}:${edge.toPort}`;
}

/**
 * The consumer group that reads a cross-host edge: `streams.GRAPH.NODE`, one
 * per downstream node, so its instances on several hosts share the topic's
 * partitions and a dead host's partitions move to the others. A node fed by
 * several cross-host edges gets a group per edge (`.FROM.PORT.TOPORT` added),
 * as members of one group should subscribe to the same topics.
 */
export function groupFor(graph: string, edge: PlannedEdge, crossingInto: number): string {
  const base = `streams.${graph}.${edge.to}`;
  return crossingInto > 1 ? `${base}.${edge.from}.${edge.fromPort}.${edge.toPort}` : base;
}

/**
 * The graph host `host` runs for `plan` of `graph` (both from the same
 * record). Each node placed on the host becomes one engine node, whatever
 * the number of its instances there: a consumer-group member reads all the
 * partitions the group gives that host, and instances that share a process
 * would only split the same work. Node objects are the checked graph's own,
 * so a reload's diff sees an unchanged node as unchanged.
 *
 * Events and Bytes cross as `kafka.produce` writes them: events as JSON
 * objects (read back with `format: json`; a `Date` arrives as its ISO text),
 * Bytes as their bytes (their `meta` is not carried). Media packets and
 * segments between hosts are errors here, located at the downstream node:
 * the worker does not carry them yet.
 *
 * @example
 * const { graph: share } = hostGraph({ graph, plan, host: 'b', registry });
 */
export function hostGraph({ graph, plan, host, registry }: { graph: Graph; plan: Plan; host: string; registry: Registry }): HostGraphResult {
  const diagnostics: Diagnostic[] = [];
  const transports: TransportNode[] = [];
  const here = new Set(plan.nodes.filter((n) => n.hosts.includes(host)).map((n) => n.name));
  const nodes = new Map<string, GraphNode>();
  for (const [name, node] of graph.nodes) if (here.has(name)) nodes.set(name, node);
  const edges: Edge[] = [];
  const typeOf = new Map(graph.edges.map((e) => [edgeKey(e), e.type]));
  const crossingInto = new Map<string, number>();
  for (const edge of plan.edges) if (edge.transport.kind !== 'local') crossingInto.set(edge.to, (crossingInto.get(edge.to) ?? 0) + 1);
  for (const planned of plan.edges) {
    const type = typeOf.get(edgeKey(planned))!;
    const sends = here.has(planned.from);
    const receives = here.has(planned.to);
    const { transport } = planned;
    if (transport.kind === 'local') {
      if (sends && receives) edges.push(graph.edges.find((e) => edgeKey(e) === edgeKey(planned))!);
      continue;
    }
    if (!sends && !receives) continue;
    if (transport.kind !== 'kafka' || transport.carries !== 'events') {
      const at = graph.nodes.get(planned.to)!.at;
      diagnostics.push({ file: graph.file, line: at.line, col: at.col, severity: 'error', code: 'unsupported_transport', message: `edge \`${planned.from}\` → \`${planned.to}\` carries ${planned.type} between hosts, which \`streams worker\` does not carry yet (only events and Bytes cross hosts)`, hint: 'place both nodes on one host' });
      continue;
    }
    const ends = { from: planned.from, fromPort: planned.fromPort, to: planned.to, toPort: planned.toPort };
    if (sends) {
      const name = transportNodeName('send', ends);
      const settings = { brokers: transport.brokers, topic: transport.topic, ...(transport.key !== undefined && { key: transport.key }) };
      nodes.set(name, transportNode(registry, 'kafka.produce', name, settings, graph.nodes.get(planned.from)!, {}));
      edges.push({ from: planned.from, fromPort: planned.fromPort, to: name, toPort: 'in', type });
      transports.push({ name, end: 'send', topic: transport.topic, partitions: transport.partitions, brokers: transport.brokers, ...(transport.key !== undefined && { key: transport.key }), edge: ends });
    }
    if (receives) {
      const name = transportNodeName('receive', ends);
      const group = groupFor(graph.name, planned, crossingInto.get(planned.to)!);
      const format = carriesBytes(type) ? 'bytes' : 'json';
      const settings = { brokers: transport.brokers, topics: [transport.topic], group, from: 'committed', format, session_timeout: receiveSessionTimeout };
      nodes.set(name, transportNode(registry, 'kafka.consume', name, settings, graph.nodes.get(planned.to)!, { out: type }));
      edges.push({ from: name, fromPort: 'out', to: planned.to, toPort: planned.toPort, type });
      transports.push({ name, end: 'receive', topic: transport.topic, partitions: transport.partitions, brokers: transport.brokers, group, edge: ends });
    }
  }
  if (diagnostics.length > 0) return { diagnostics, transports: [] };
  return { graph: { ...graph, nodes, edges }, diagnostics, transports };
}

/**
 * How long the group waits for a silent member of a transport's consumer
 * group: the broker's smallest by default (`group.min.session.timeout.ms`),
 * so a dead host's partitions move to the others within about 6 s.
 */
const receiveSessionTimeout = '6s';

function edgeKey(edge: { from: string; fromPort: string; to: string; toPort: string }): string {
  return `${edge.from}\u0000${edge.fromPort}\u0000${edge.to}\u0000${edge.toPort}`;
}

/** Bytes cross as their bytes; anything else (events, objects) as JSON. */
function carriesBytes(type: PortType): boolean {
  return type.kind === 'bytes' || (type.kind === 'var' && type.bound?.kind === 'bytes');
}

/**
 * A node the checker never saw, built as it would: settings validated by the
 * operator's schema (a failure here is a bug in this file, not a user's
 * mistake), placed where the node it stands beside was written.
 */
function transportNode(registry: Registry, op: string, name: string, raw: Record<string, unknown>, beside: GraphNode, outputTypes: Record<string, PortType>): GraphNode {
  const spec = registry.get(op);
  if (!spec) throw new Error(`operator \`${op}\` is not in the registry: a worker needs it for edges between hosts`);
  return { name, op, spec, settings: spec.settings.parse(raw), rawSettings: raw, parallelism: 1, onError: 'dlq', channel: {}, outputTypes, at: beside.at };
}
