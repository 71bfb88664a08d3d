/**
 * One host's share of a plan as a graph its engine runs: the nodes placed
 * there, the edges between them as they are, and every edge that crosses
 * hosts cut in two: a `kafka.produce` node on the sending host writes the
 * edge's topic, a `kafka.consume` node on the receiving host reads it in
 * the downstream node's consumer group. An edge of media segments crosses
 * as objects plus references: `objects.put` then `kafka.produce` on the
 * sending host, `kafka.consume` then `objects.get` on the receiving one
 * (`docs/object-storage.md`). Pure, like the planner: every worker computes
 * the same share from the same record. The rules are in
 * `docs/many-hosts.md`.
 */
import type { Diagnostic } from './diagnostics.ts';
import type { Edge, Graph, GraphNode } from './model.ts';
import type { Registry } from './operator-spec.ts';
import type { Plan, PlannedEdge } from './plan.ts';
import { topicFor, type Transport } from './plan-edges.ts';
import { parsePortType, type PortType } from './port-types.ts';

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
  /**
   * For an edge of media segments: the object store the segments go through
   * (the plan's, with the key prefix `objects.put` and `objects.get` use);
   * the Kafka topic then carries references to them.
   */
  objects?: { store: string; prefix: string; node: string };
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
export function transportNodeName(end: 'send' | 'receive' | 'store' | 'fetch' | 'pack' | 'unpack', edge: { from: string; fromPort: string; to: string; toPort: string }): string {
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
 * Bytes as their bytes (their `meta` is not carried). Media segments cross
 * through the plan's object store (`objects.put` `~store:...` before the
 * producer, `objects.get` `~fetch:...` after the consumer) with references
 * on the edge's topic, keyed by stream so a stream's items stay in order;
 * that needs `transports.kafka` too. Media packets cross as Bytes on the
 * edge's topic, keyed by stream: `media.pack` (`~pack:...`) before the
 * producer, `media.unpack` (`~unpack:...`) after the consumer.
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
    if (transport.kind === 'object-store+http-pull') {
      const kafka = graph.transports?.kafka;
      if (kafka === undefined) {
        const at = graph.nodes.get(planned.to)!.at;
        diagnostics.push({ file: graph.file, line: at.line, col: at.col, severity: 'error', code: 'unreachable_transport', message: `edge \`${planned.from}\` → \`${planned.to}\` carries ${planned.type} between hosts: the segments go through the object store and their references through Kafka, but \`transports.kafka\` is not declared`, hint: 'declare `transports: {kafka: {brokers: ${env:KAFKA_BROKERS}}}` in the pipeline or the hosts file' });
        continue;
      }
      const cut = { graph, planned, type, transport, brokers: kafka.brokers, partitions: kafka.partitions ?? 1, registry, crossingInto: crossingInto.get(planned.to)! };
      const added = segmentEnds(cut, { sends, receives });
      for (const [name, node] of added.nodes) nodes.set(name, node);
      edges.push(...added.edges);
      transports.push(...added.transports);
      continue;
    }
    if (transport.kind === 'kafka' && transport.carries === 'media') {
      const added = mediaEnds({ graph, planned, type, transport, registry, crossingInto: crossingInto.get(planned.to)! }, { sends, receives });
      for (const [name, node] of added.nodes) nodes.set(name, node);
      edges.push(...added.edges);
      transports.push(...added.transports);
      continue;
    }
    if (transport.kind !== 'kafka' || transport.carries !== 'events') {
      const at = graph.nodes.get(planned.to)!.at;
      diagnostics.push({ file: graph.file, line: at.line, col: at.col, severity: 'error', code: 'unsupported_transport', message: `edge \`${planned.from}\` → \`${planned.to}\` carries ${planned.type} between hosts, which \`streams worker\` does not carry yet (events, Bytes, media packets and segments cross hosts)`, hint: 'place both nodes on one host' });
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

/** The type of the references `objects.put` emits, as the consumer of a segment edge declares its output. */
const referenceType: PortType = parsePortType('Event');

/** What an edge cut in two (segments, media packets) adds to a host's share. */
interface SplitEdge {
  nodes: Array<[string, GraphNode]>;
  edges: Edge[];
  transports: TransportNode[];
}

/**
 * Cuts an edge of media segments in two: `objects.put` and `kafka.produce`
 * on the sending host, `kafka.consume` and `objects.get` on the receiving
 * one. Both object nodes name the plan's store and prefix, so what one
 * writes the other finds; the topic is the edge's, keyed by stream.
 */
function segmentEnds(
  { graph, planned, type, transport, brokers, partitions, registry, crossingInto }: { graph: Graph; planned: PlannedEdge; type: PortType; transport: Extract<Transport, { kind: 'object-store+http-pull' }>; brokers: string[]; partitions: number; registry: Registry; crossingInto: number },
  { sends, receives }: { sends: boolean; receives: boolean },
): SplitEdge {
  const ends = { from: planned.from, fromPort: planned.fromPort, to: planned.to, toPort: planned.toPort };
  const topic = topicFor(graph.name, ends);
  const objects = { store: transport.store, prefix: transport.prefix };
  const added: SplitEdge = { nodes: [], edges: [], transports: [] };
  if (sends) {
    const store = transportNodeName('store', ends);
    const send = transportNodeName('send', ends);
    const beside = graph.nodes.get(planned.from)!;
    added.nodes.push([store, transportNode(registry, 'objects.put', store, { ...objects }, beside, {})]);
    added.nodes.push([send, transportNode(registry, 'kafka.produce', send, { brokers, topic, key: 'stream' }, beside, {})]);
    added.edges.push({ from: planned.from, fromPort: planned.fromPort, to: store, toPort: 'in', type });
    added.edges.push({ from: store, fromPort: 'out', to: send, toPort: 'in', type: referenceType });
    added.transports.push({ name: send, end: 'send', topic, partitions, brokers, key: 'stream', objects: { ...objects, node: store }, edge: ends });
  }
  if (receives) {
    const receive = transportNodeName('receive', ends);
    const fetch = transportNodeName('fetch', ends);
    const beside = graph.nodes.get(planned.to)!;
    const group = groupFor(graph.name, planned, crossingInto);
    const settings = { brokers, topics: [topic], group, from: 'committed', format: 'json', session_timeout: receiveSessionTimeout };
    added.nodes.push([receive, transportNode(registry, 'kafka.consume', receive, settings, beside, { out: referenceType })]);
    added.nodes.push([fetch, transportNode(registry, 'objects.get', fetch, { ...objects }, beside, { out: type })]);
    added.edges.push({ from: receive, fromPort: 'out', to: fetch, toPort: 'in', type: referenceType });
    added.edges.push({ from: fetch, fromPort: 'out', to: planned.to, toPort: planned.toPort, type });
    added.transports.push({ name: receive, end: 'receive', topic, partitions, brokers, group, objects: { ...objects, node: fetch }, edge: ends });
  }
  return added;
}

/** Bytes, as `media.pack` emits them and the consumer of a media edge declares its output. */
const bytesType: PortType = parsePortType('Bytes');

/**
 * Cuts an edge of media packets in two: `media.pack` and `kafka.produce`
 * on the sending host, `kafka.consume` (Bytes) and `media.unpack` on the
 * receiving one. The topic is the plan's, keyed by stream so a stream's
 * packets stay in one partition, in order.
 */
function mediaEnds(
  { graph, planned, type, transport, registry, crossingInto }: { graph: Graph; planned: PlannedEdge; type: PortType; transport: Extract<Transport, { kind: 'kafka' }>; registry: Registry; crossingInto: number },
  { sends, receives }: { sends: boolean; receives: boolean },
): SplitEdge {
  const ends = { from: planned.from, fromPort: planned.fromPort, to: planned.to, toPort: planned.toPort };
  const { topic, brokers, partitions } = transport;
  const key = transport.key ?? 'stream';
  const added: SplitEdge = { nodes: [], edges: [], transports: [] };
  if (sends) {
    const pack = transportNodeName('pack', ends);
    const send = transportNodeName('send', ends);
    const beside = graph.nodes.get(planned.from)!;
    added.nodes.push([pack, transportNode(registry, 'media.pack', pack, {}, beside, {})]);
    added.nodes.push([send, transportNode(registry, 'kafka.produce', send, { brokers, topic, key }, beside, {})]);
    added.edges.push({ from: planned.from, fromPort: planned.fromPort, to: pack, toPort: 'in', type });
    added.edges.push({ from: pack, fromPort: 'out', to: send, toPort: 'in', type: bytesType });
    added.transports.push({ name: send, end: 'send', topic, partitions, brokers, key, edge: ends });
  }
  if (receives) {
    const receive = transportNodeName('receive', ends);
    const unpack = transportNodeName('unpack', ends);
    const beside = graph.nodes.get(planned.to)!;
    const group = groupFor(graph.name, planned, crossingInto);
    const settings = { brokers, topics: [topic], group, from: 'committed', format: 'bytes', session_timeout: receiveSessionTimeout };
    added.nodes.push([receive, transportNode(registry, 'kafka.consume', receive, settings, beside, { out: bytesType })]);
    added.nodes.push([unpack, transportNode(registry, 'media.unpack', unpack, {}, beside, { out: type })]);
    added.edges.push({ from: receive, fromPort: 'out', to: unpack, toPort: 'in', type: bytesType });
    added.edges.push({ from: unpack, fromPort: 'out', to: planned.to, toPort: planned.toPort, type });
    added.transports.push({ name: receive, end: 'receive', topic, partitions, brokers, group, edge: ends });
  }
  return added;
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
