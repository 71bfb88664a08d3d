/**
 * The visualiser's protocol, version 1: the events sent over the WebSocket
 * `/api/live` and the shapes of the JSON endpoints. Documented in
 * `docs/visualiser-protocol.md`; the page (`ui/`) imports these types.
 * Sizes and counts only: records appear only in a tap that is asked for.
 */
import type { Diagnostic } from '../../graph/diagnostics.ts';
import type { Graph } from '../../graph/model.ts';
import { outputsOf } from '../../graph/operator-spec.ts';
import { formatPortType, parsePortType } from '../../graph/port-types.ts';
import { localHost, selects } from '../../graph/placement.ts';
import { planGraph, type Plan, type PlannedEdge } from '../../graph/plan.ts';
import { redactSettings } from './redaction.ts';

/** Bumped when an event changes in a way an old page cannot read; fields are only ever added within a version. */
export const protocolVersion = 1;

/** What every event carries: the protocol version, the graph's name, and when (ms since the epoch). */
export interface EventBase {
  v: typeof protocolVersion;
  graph: string;
  time: number;
}

/** A port of a node, with its type as written in `streams ops` (`Event`, `Media<video/h264>`). */
export interface PlanPort {
  port: string;
  type: string;
}

/** A node as the page draws it. */
export interface PlanNode {
  id: string;
  op: string;
  inputs: PlanPort[];
  outputs: PlanPort[];
  /** The settings as written, redacted (secret-named keys, values from `${env:...}`). */
  settings: unknown;
  place?: Record<string, unknown>;
  /** The host the node runs on: the first of `hosts`. */
  host: string;
  /** Every host an instance of the node runs on, as planned (a node with `parallelism` may run on several); `[host]` when no plan could be made. */
  hosts: string[];
  /** The role of `host`. */
  role?: string;
  /** Where the node is written: file, line and column of its name. */
  source: { file: string; line: number; col: number };
  /** True for nodes that read from outside the graph (no inputs). */
  source_node: boolean;
}

/** An edge: from a node's port to another node, with the type that flows. */
export interface PlanEdge {
  /** `from.port->to`, stable across reloads while the edge exists. */
  id: string;
  from: string;
  fromPort: string;
  to: string;
  toPort: string;
  type: string;
  /** How the edge crosses hosts, as planned; absent for an edge inside one host. */
  transport?: PlanTransport;
}

/** What carries an edge between hosts. Brokers are left out: they may come from `${env:...}`. */
export interface PlanTransport {
  kind: 'kafka' | 'object-store+http-pull';
  /** What the page writes on the edge: `kafka streams.P.a.out.b.in`, `object-store s3 live/`. */
  label: string;
  topic?: string;
  partitions?: number;
  store?: string;
  prefix?: string;
}

/** A declared host, for the page's host groups. */
export interface PlanHost {
  name: string;
  role?: string;
  region?: string;
}

/** `running`, `draining`, `restarting` (in backoff after a failure, with the error), `stopped`, `failed`, `starting`. */
export type NodeState = 'starting' | 'running' | 'draining' | 'restarting' | 'stopped' | 'failed';

/** The diff of a reload. */
export interface ReloadDiff {
  kept: string[];
  replaced: string[];
  added: string[];
  removed: string[];
}

/** One entry of the reload history (`GET /api/reloads`), as `reload.applied` / `reload.rejected` carry it. */
export type ReloadRecord =
  | {
      status: 'applied';
      time: number;
      took_ms: number;
      diff: ReloadDiff;
      via: 'api' | 'watch';
      /** How it was applied, when the user should know: a window and its aggregate whose fusion changed. */
      warnings?: string[];
    }
  | { status: 'rejected' | 'rolled_back'; time: number; took_ms: number; diagnostics: Diagnostic[]; cause?: string; diff?: ReloadDiff; via: 'api' | 'watch' };

/** Per-node numbers, once a second: rates over the last second, counters since the node started. */
export interface NodeNumbers {
  records_in_per_s: number;
  records_out_per_s: number;
  /**
   * Bytes per second in and out. A node that counts its own bytes (a
   * source's reads, a sink's writes) reports those; any other side is the
   * sum of its edges' (a transform's input and output edges).
   */
  bytes_in_per_s: number;
  bytes_out_per_s: number;
  /** True when a side's bytes come from an edge of events, whose bytes are estimated (see `EdgeNumbers`). */
  bytes_estimated: boolean;
  /**
   * Present when a side's bytes come from edges and one of them is fused
   * away (`EdgeNumbers.fused`): a window's output into the aggregate it runs,
   * and that aggregate's input. That edge's bytes are not measured, so the
   * side's figure counts only its other edges (none for a fused aggregate's
   * input): read it as "not measured", not as idle.
   */
  bytes_in_fused?: true;
  bytes_out_fused?: true;
  records_in: number;
  records_out: number;
  errors: number;
  dead_letters: number;
  /** Records dropped on purpose, by reason. */
  drops: Record<string, number>;
  restarts: number;
  /** Processing time per batch over the last second, when batches were timed. */
  p50_ms?: number;
  p99_ms?: number;
}

/** Per-edge numbers, once a second. */
export interface EdgeNumbers {
  /** Records pushed into the channel per second: the same as `records_in_per_s`, kept for pages of the first release. */
  records_per_s: number;
  /** Records pushed into the channel per second. */
  records_in_per_s: number;
  /** Records handed to the consumer per second. */
  records_out_per_s: number;
  /**
   * Bytes per second pushed and handed on: counted for Bytes and Media
   * items; for events, estimated (`bytes_estimated`) as the record rate
   * times the mean JSON size of a few records sampled once a second.
   */
  bytes_in_per_s: number;
  bytes_out_per_s: number;
  bytes_estimated: boolean;
  records: number;
  /** Records waiting in the channel, against its capacity. */
  depth: number;
  capacity: number;
  queued_bytes: number;
  /** Records the channel dropped because it was full (`when_full: drop_*`). */
  drops: number;
  /**
   * Present on an edge fused away (a window with its aggregate): it has no
   * channel, the consumer runs inside the producer. Its records are counted
   * as the fused node emits them; nothing queues (`depth` and `capacity`
   * 0), and no records exist between the two to size, so its bytes are 0
   * and mean "not measured", not "idle".
   */
  fused?: true;
}

/** Every event of `/api/live`. */
export type LiveEvent =
  | (EventBase & { type: 'hello'; protocol: typeof protocolVersion })
  | (EventBase & {
      type: 'graph.plan';
      file: string;
      nodes: PlanNode[];
      edges: PlanEdge[];
      /** The declared hosts, in their order; absent when the pipeline declares none (it runs on the one local host). */
      hosts?: PlanHost[];
      /** The host this process runs (`streams worker --host`): only its nodes are live, the others are drawn greyed. Absent when every node runs here. */
      here?: string;
      /** True when nothing runs (`streams plan --ui`): the plan only, without numbers. */
      plan_only?: boolean;
    })
  | (EventBase & { type: 'node.state'; node: string; state: NodeState; error?: string })
  | (EventBase & { type: 'node.stats'; node: string } & NodeNumbers)
  | (EventBase & { type: 'edge.stats'; edge: string; from: string; to: string } & EdgeNumbers)
  | (EventBase & { type: 'reload.applied'; reload: Extract<ReloadRecord, { status: 'applied' }> })
  | (EventBase & { type: 'reload.rejected'; reload: Exclude<ReloadRecord, { status: 'applied' }> })
  | (EventBase & { type: 'diagnostic'; diagnostic: Diagnostic });

/** The id of an edge. */
export function edgeId(from: string, fromPort: string, to: string): string {
  return `${from}.${fromPort}->${to}`;
}

/** A type string as shown: parsed and formatted, so `T: Event` shows as the graph resolved it. */
function shownType(text: string): string {
  try {
    return formatPortType(parsePortType(text));
  } catch {
    return text;
  }
}

/** What `planOf` is told beyond the graph. */
export interface PlanOfOptions {
  /** The plan to show (a worker's, made over its hosts' reported capabilities); by default the graph is planned over its declared hosts. */
  plan?: Plan;
  /** The host this process runs; see `graph.plan`'s `here`. */
  here?: string;
  /** Nothing runs: see `graph.plan`'s `plan_only`. */
  planOnly?: boolean;
}

/** Whether the graph declares hosts, rather than running on the implicit local one. */
function declaresHosts(graph: Graph): boolean {
  return !(graph.hosts.length === 1 && graph.hosts[0].name === localHost.name && graph.hosts[0].role === localHost.role);
}

/** The transport of a planned edge as the page shows it; none for a local one. */
function shownTransport(transport: PlannedEdge['transport']): PlanTransport | undefined {
  switch (transport.kind) {
    case 'local':
      return undefined;
    case 'kafka':
      return { kind: 'kafka', label: `kafka ${transport.topic}`, topic: transport.topic, partitions: transport.partitions };
    case 'object-store+http-pull':
      return { kind: transport.kind, label: `object-store ${transport.store} ${transport.prefix}`, store: transport.store, prefix: transport.prefix };
  }
}

/**
 * The `graph.plan` of a checked graph: what the page draws. Settings are
 * redacted here, once. A graph with hosts is planned (unless a plan is
 * given), so each node carries its hosts and each edge between hosts its
 * transport; a graph the planner refuses is shown with each node on the
 * first host its `place` selects and no transports.
 */
export function planOf(graph: Graph, time: number, options: PlanOfOptions = {}): Extract<LiveEvent, { type: 'graph.plan' }> {
  const declared = declaresHosts(graph);
  const plan = options.plan ?? (declared ? planGraph({ graph }).plan : undefined);
  const hostInfo = new Map((plan?.hosts ?? graph.hosts).map((h) => [h.name, h]));
  const placed = new Map(plan?.nodes.map((n) => [n.name, n.hosts]));
  const transports = new Map(plan?.edges.map((e) => [edgeId(e.from, e.fromPort, e.to), shownTransport(e.transport)]));
  const hosts = graph.hosts.length > 0 ? graph.hosts : [localHost];
  const nodes: PlanNode[] = [...graph.nodes.values()].map((node) => {
    const on = placed.get(node.name) ?? [(hosts.find((h) => selects(node.place, h)) ?? hosts[0]).name];
    const role = hostInfo.get(on[0])?.role;
    const outputs = Object.entries(outputsOf(node.spec)).map(([port, spec]) => ({
      port,
      type: node.outputTypes[port] ? formatPortType(node.outputTypes[port]) : shownType(spec.type),
    }));
    return {
      id: node.name,
      op: node.op,
      inputs: Object.entries(node.spec.inputs).map(([port, spec]) => ({ port, type: shownType(spec.type) })),
      outputs,
      settings: redactSettings(node.rawSettings, node.envSettings),
      ...(node.place ? { place: { ...node.place } } : {}),
      host: on[0],
      hosts: on,
      ...(role ? { role } : {}),
      source: { file: graph.file, line: node.at.line, col: node.at.col },
      source_node: Object.keys(node.spec.inputs).length === 0,
    };
  });
  const edges: PlanEdge[] = graph.edges.map((e) => {
    const id = edgeId(e.from, e.fromPort, e.to);
    const transport = transports.get(id);
    return { id, from: e.from, fromPort: e.fromPort, to: e.to, toPort: e.toPort, type: formatPortType(e.type), ...(transport && { transport }) };
  });
  const shownHosts = declared ? (plan?.hosts ?? graph.hosts).map((h): PlanHost => ({ name: h.name, ...(h.role !== undefined && { role: h.role }), ...(h.region !== undefined && { region: h.region }) })) : undefined;
  return {
    v: protocolVersion,
    type: 'graph.plan',
    graph: graph.name,
    time,
    file: graph.file,
    nodes,
    edges,
    ...(shownHosts && { hosts: shownHosts }),
    ...(options.here !== undefined && { here: options.here }),
    ...(options.planOnly && { plan_only: true }),
  };
}
