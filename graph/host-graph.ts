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

/**
 * Which Kafka edges between hosts pack several records a message: `events`
 * (events and Bytes) and `media` (media packets). What the deployment
 * record's format allows (`cli/control-plane.ts`): an older host must never
 * be sent packs it would not read.
 */
export interface PackedEdges {
  readonly events: boolean;
  readonly media: boolean;
}

const packedAll: PackedEdges = { events: true, media: true };

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
 * record). `graph` may be checked from the host's share of the text alone
 * (`graph/share-text.ts`): it needs the host's nodes and the edges into and
 * out of them. Each node placed on the host becomes one engine node, whatever
 * the number of its instances there: a consumer-group member reads all the
 * partitions the group gives that host, and instances that share a process
 * would only split the same work. Node objects are the checked graph's own,
 * so a reload's diff sees an unchanged node as unchanged.
 *
 * Events and Bytes cross as `kafka.produce` writes them: events as JSON
 * objects (read back with `format: json`; a `Date` arrives as its ISO text),
 * Bytes as their bytes (their `meta` is not carried), packed several to a
 * message per partition (`packBytes`) unless `packed.events` is false (a
 * record of format 1 or 2, written before packing: its hosts send one
 * record a message). Media packets are packed likewise unless
 * `packed.media` is false (a record of format 3 or older). Every host
 * unpacks what it receives (a message without the packed header stays one
 * record), so a host still on an older record reads what an upgraded one
 * sends.
 * Media segments cross
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
export function hostGraph({ graph, plan, host, registry, packed = packedAll }: { graph: Graph; plan: Plan; host: string; registry: Registry; packed?: PackedEdges }): HostGraphResult {
  const diagnostics: Diagnostic[] = [];
  const transports: TransportNode[] = [];
  const here = new Set(plan.nodes.filter((n) => n.hosts.includes(host)).map((n) => n.name));
  const nodes = new Map<string, GraphNode>();
  for (const [name, node] of graph.nodes) if (here.has(name)) nodes.set(name, node);
  const edges: Edge[] = [];
  const byKey = new Map(graph.edges.map((e) => [edgeKey(e), e]));
  const crossingInto = new Map<string, number>();
  for (const edge of plan.edges) if (edge.transport.kind !== 'local') crossingInto.set(edge.to, (crossingInto.get(edge.to) ?? 0) + 1);
  for (const planned of plan.edges) {
    const sends = here.has(planned.from);
    const receives = here.has(planned.to);
    const { transport } = planned;
    if (transport.kind === 'local') {
      if (sends && receives) edges.push(byKey.get(edgeKey(planned))!);
      continue;
    }
    if (!sends && !receives) continue;
    // Present: a graph checked for this host's share holds the edges it sends and receives.
    const { type } = byKey.get(edgeKey(planned))!;
    // Segments and media packets cannot cross Kafka as they are: their edge is cut around a topic with a node on each side.
    let split: { wrapping: Wrapping; topic: string; brokers: string[]; partitions: number; key: string } | undefined;
    if (transport.kind === 'object-store+http-pull') {
      const kafka = graph.transports?.kafka;
      if (kafka === undefined) {
        const at = graph.nodes.get(planned.to)!.at;
        diagnostics.push({ file: graph.file, line: at.line, col: at.col, severity: 'error', code: 'unreachable_transport', message: `edge \`${planned.from}\` → \`${planned.to}\` carries ${planned.type} between hosts: the segments go through the object store and their references through Kafka, but \`transports.kafka\` is not declared`, hint: 'declare `transports: {kafka: {brokers: ${env:KAFKA_BROKERS}}}` in the pipeline or the hosts file' });
        continue;
      }
      split = { wrapping: segmentWrapping(transport), topic: topicFor(graph.name, planned), brokers: kafka.brokers, partitions: kafka.partitions ?? 1, key: 'stream' };
    } else if (transport.kind === 'kafka' && transport.carries === 'media') {
      split = { wrapping: mediaWrapping(packed.media), topic: transport.topic, brokers: transport.brokers, partitions: transport.partitions, key: transport.key ?? 'stream' };
    }
    if (split !== undefined) {
      const added = splitThroughKafka({ graph, planned, type, registry, crossingInto: crossingInto.get(planned.to)!, ...split }, split.wrapping, { sends, receives });
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
    const group = groupFor(graph.name, planned, crossingInto.get(planned.to)!);
    const settings = kafkaEndSettings({ brokers: transport.brokers, topic: transport.topic, key: transport.key, packed: packed.events, group, format: carriesBytes(type) ? 'bytes' : 'json', unpack: true });
    if (sends) {
      const name = transportNodeName('send', ends);
      nodes.set(name, transportNode(registry, 'kafka.produce', name, settings.produce, graph.nodes.get(planned.from)!, {}));
      edges.push({ from: planned.from, fromPort: planned.fromPort, to: name, toPort: 'in', type });
      transports.push({ name, end: 'send', topic: transport.topic, partitions: transport.partitions, brokers: transport.brokers, ...(transport.key !== undefined && { key: transport.key }), edge: ends });
    }
    if (receives) {
      const name = transportNodeName('receive', ends);
      nodes.set(name, transportNode(registry, 'kafka.consume', name, settings.consume, graph.nodes.get(planned.to)!, { out: type }));
      edges.push({ from: name, fromPort: 'out', to: planned.to, toPort: planned.toPort, type });
      transports.push({ name, end: 'receive', topic: transport.topic, partitions: transport.partitions, brokers: transport.brokers, group, edge: ends });
    }
  }
  if (diagnostics.length > 0) return { diagnostics, transports: [] };
  return { graph: { ...graph, nodes, edges }, diagnostics, transports };
}

/** What an edge cut in two (segments, media packets) adds to a host's share. */
interface SplitEdge {
  nodes: Array<[string, GraphNode]>;
  edges: Edge[];
  transports: TransportNode[];
}

/**
 * How an edge whose items cannot cross Kafka as they are is cut: a node
 * before the producer turns them into what crosses (`wire`, read back with
 * `format`), a node after the consumer turns that back, each with its settings.
 */
interface Wrapping {
  send: { end: 'store' | 'pack'; op: string; settings: Record<string, unknown> };
  receive: { end: 'fetch' | 'unpack'; op: string; settings: Record<string, unknown> };
  wire: PortType;
  format: 'json' | 'bytes';
  /** Whether the producer packs several records a message (see `kafkaEndSettings`). */
  packed: boolean;
  /** Whether the consumer reads packed messages back. */
  unpack: boolean;
  /** For segments: the store the wrapping nodes name, reported with the transport. */
  objects?: { store: string; prefix: string };
}

/**
 * Segments: `objects.put` / `objects.get` around a topic of references
 * (JSON events), both naming the plan's store and prefix. The writer alone
 * sweeps what is older than `retain`: one sweeper per origin, not one per edge.
 */
function segmentWrapping(transport: Extract<Transport, { kind: 'object-store+http-pull' }>): Wrapping {
  const objects = { store: transport.store, prefix: transport.prefix };
  const put = { ...objects, ...(transport.retain !== undefined && { retain: transport.retain }) };
  return { send: { end: 'store', op: 'objects.put', settings: put }, receive: { end: 'fetch', op: 'objects.get', settings: objects }, wire: parsePortType('Event'), format: 'json', packed: false, unpack: false, objects };
}

/**
 * Media packets: `media.pack` / `media.unpack` around a topic of Bytes,
 * packed several to a message (`packBytes`) when `packed`, else one a
 * message. 30 fps video and its audio are some 80 packets a second a
 * stream: packing cuts the topic's messages about nine times, for the same
 * CPU a packet (bench/media-hop.ts; kilobyte packets cost per byte and per
 * request more than per message). A packet larger than `packBytes` (a
 * keyframe) goes alone, as it would unpacked. The consumer always unpacks.
 */
function mediaWrapping(packed: boolean): Wrapping {
  return { send: { end: 'pack', op: 'media.pack', settings: {} }, receive: { end: 'unpack', op: 'media.unpack', settings: {} }, wire: parsePortType('Bytes'), format: 'bytes', packed, unpack: true };
}

/**
 * Cuts an edge in two around its Kafka topic, keyed by `key` (`stream`, so
 * a stream's items stay in one partition, in order): the sending host gets
 * the wrapping's send node then `kafka.produce`, the receiving one
 * `kafka.consume` then the wrapping's receive node.
 */
function splitThroughKafka(
  { graph, planned, type, registry, crossingInto, topic, brokers, partitions, key }: { graph: Graph; planned: PlannedEdge; type: PortType; registry: Registry; crossingInto: number; topic: string; brokers: string[]; partitions: number; key: string },
  wrapping: Wrapping,
  { sends, receives }: { sends: boolean; receives: boolean },
): SplitEdge {
  const ends = { from: planned.from, fromPort: planned.fromPort, to: planned.to, toPort: planned.toPort };
  const { wire } = wrapping;
  const added: SplitEdge = { nodes: [], edges: [], transports: [] };
  const group = groupFor(graph.name, planned, crossingInto);
  const settings = kafkaEndSettings({ brokers, topic, key, packed: wrapping.packed, group, format: wrapping.format, unpack: wrapping.unpack });
  if (sends) {
    const before = transportNodeName(wrapping.send.end, ends);
    const send = transportNodeName('send', ends);
    const beside = graph.nodes.get(planned.from)!;
    added.nodes.push([before, transportNode(registry, wrapping.send.op, before, { ...wrapping.send.settings }, beside, {})]);
    added.nodes.push([send, transportNode(registry, 'kafka.produce', send, settings.produce, beside, {})]);
    added.edges.push({ from: planned.from, fromPort: planned.fromPort, to: before, toPort: 'in', type });
    added.edges.push({ from: before, fromPort: 'out', to: send, toPort: 'in', type: wire });
    added.transports.push({ name: send, end: 'send', topic, partitions, brokers, key, ...(wrapping.objects && { objects: { ...wrapping.objects, node: before } }), edge: ends });
  }
  if (receives) {
    const receive = transportNodeName('receive', ends);
    const after = transportNodeName(wrapping.receive.end, ends);
    const beside = graph.nodes.get(planned.to)!;
    added.nodes.push([receive, transportNode(registry, 'kafka.consume', receive, settings.consume, beside, { out: wire })]);
    added.nodes.push([after, transportNode(registry, wrapping.receive.op, after, { ...wrapping.receive.settings }, beside, { out: type })]);
    added.edges.push({ from: receive, fromPort: 'out', to: after, toPort: 'in', type: wire });
    added.edges.push({ from: after, fromPort: 'out', to: planned.to, toPort: planned.toPort, type });
    added.transports.push({ name: receive, end: 'receive', topic, partitions, brokers, group, ...(wrapping.objects && { objects: { ...wrapping.objects, node: after } }), edge: ends });
  }
  return added;
}

/**
 * The settings of the two ends of an edge through a Kafka topic, in one
 * place so that they agree: the `kafka.produce` on the sending host (keyed
 * by `key` when given; several records a message when `packed`) and the
 * `kafka.consume` on the receiving one (in `group`, from the group's
 * committed offset, reading `format`, unpacking packed messages when
 * `unpack`: one without the packed header stays one record).
 */
function kafkaEndSettings(edge: { brokers: string[]; topic: string; key?: string; packed: boolean; group: string; format: 'json' | 'bytes'; unpack: boolean }): { produce: Record<string, unknown>; consume: Record<string, unknown> } {
  const { brokers, topic, key, group, format } = edge;
  return {
    produce: { brokers, topic, ...(key !== undefined && { key }), ...(edge.packed && { pack_bytes: packBytes }) },
    consume: { brokers, topics: [topic], group, from: 'committed', format, ...(edge.unpack && { unpack: true }), session_timeout: receiveSessionTimeout },
  };
}

/**
 * How long the group waits for a silent member of a transport's consumer
 * group: the broker's smallest by default (`group.min.session.timeout.ms`),
 * so a dead host's partitions move to the others within about 6 s.
 */
const receiveSessionTimeout = '6s';

/**
 * How many bytes of records an edge of events, Bytes or media packets
 * packs into one Kafka message (`kafka.produce`'s `pack_bytes`; its
 * `kafka.consume` unpacks): the client's cost is per message, and W1 over
 * one worker spent most of its CPU there with a record per message. 64 KiB,
 * the producer's request size, keeps a pack far below the broker's 1 MiB
 * `message.max.bytes`; a record larger than this (a keyframe) goes alone,
 * unpacked, the size it would be without packing.
 */
const packBytes = 64 * 1024;

/** An edge's ends as one Map key. */
export function edgeKey(edge: { from: string; fromPort: string; to: string; toPort: string }): string {
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
