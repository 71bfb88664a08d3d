/**
 * The planner's second half: what each edge runs through once its two ends
 * are placed. An edge whose ends share their host stays in the process; one
 * that crosses hosts becomes a Kafka topic (events and media packets) or
 * object storage plus an HTTP pull (media segments, origin to edge).
 */
import type { Graph, Host, TransportEndpoint } from './model.ts';
import type { PartitionBy } from './operator-spec.ts';
import type { PlanLocator, PlannedNode } from './plan.ts';
import { formatPortType, type PortType } from './port-types.ts';

/** How records cross an edge. */
export type Transport =
  /** Both ends on one host (or, for an unkeyed node, each instance fed by the upstream on its own host): an in-process channel. */
  | { kind: 'local' }
  /**
   * A Kafka topic, one per edge. `key` is the CEL expression the producer
   * partitions by (the downstream node's key), absent for round-robin;
   * media packets are keyed by their `stream` so a stream stays in order.
   */
  | { kind: 'kafka'; carries: 'events' | 'media'; topic: string; partitions: number; key?: string; brokers: string[] }
  /**
   * Media segments and playlists written to an object store under `prefix`;
   * the downstream pulls them over HTTP from the upstream hosts' workers.
   * With `retain` (a duration as written), the writer deletes them once older.
   */
  | { kind: 'object-store+http-pull'; store: string; prefix: string; pullFrom: string[]; retain?: string };

/** One edge of the plan, with the hosts of its ends and its transport. */
export interface PlannedEdge {
  from: string;
  fromPort: string;
  to: string;
  toPort: string;
  /** The port type as written (`Event<{...}>`, `Media<video/h264>`, `Segment<hls>`). */
  type: string;
  transport: Transport;
}

/** Kafka's longest topic name. */
const maxTopicLength = 249;

/**
 * The topic of an edge: `streams.GRAPH.FROM.PORT.TO.PORT`. Node and port
 * names hold no dot, so it reads back unambiguously from the right; a name
 * past Kafka's limit is cut and ends in a hash of the whole.
 */
export function topicFor(graph: string, edge: { from: string; fromPort: string; to: string; toPort: string }): string {
  const topic = `streams.${graph}.${edge.from}.${edge.fromPort}.${edge.to}.${edge.toPort}`;
  if (topic.length <= maxTopicLength) return topic;
  return `${topic.slice(0, maxTopicLength - 9)}.${fnv1a(topic)}`;
}

/** FNV-1a, 32 bits, as 8 hex digits: a short stable hash with no dependency. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/** What a port type is carried as across hosts. */
function carriage(type: PortType): 'events' | 'media' | 'segments' {
  const kind = type.kind === 'var' ? (type.bound?.kind ?? 'event') : type.kind;
  if (kind === 'segment') return 'segments';
  return kind === 'media' ? 'media' : 'events';
}

/** A URL with any `user:password@` taken out: a plan is printed and published, and must carry no secret. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

/**
 * Whether a keyed node's records already arrive partitioned by its key: it
 * reads the key field of a keyed node's output (an `aggregate` reading a
 * window's panes) and has that node's instances in the same order, so
 * instance i feeds instance i.
 */
function partitionedAlike(up: PlannedNode, down: PlannedNode, by: PartitionBy | undefined): boolean {
  return up.key !== undefined && by !== undefined && 'field' in by && up.instances.length === down.instances.length && up.instances.every((h, i) => down.instances[i] === h);
}

function sameHosts(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((h) => b.includes(h));
}

/**
 * Plans every edge whose two ends were placed; reports an edge between
 * hosts whose transport is not declared, or which a host at either end does
 * not reach.
 */
export function planEdges({ graph, placed, hosts, locator }: { graph: Graph; placed: ReadonlyMap<string, PlannedNode>; hosts: readonly Host[]; locator: PlanLocator }): PlannedEdge[] {
  const transports = graph.transports ?? {};
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const planned: PlannedEdge[] = [];
  const warned = new Set<string>();
  for (const edge of graph.edges) {
    const up = placed.get(edge.from);
    const down = placed.get(edge.to);
    if (!up || !down) continue;
    const base = { from: edge.from, fromPort: edge.fromPort, to: edge.to, toPort: edge.toPort, type: formatPortType(edge.type) };
    // An unkeyed node fed by an upstream on exactly its hosts reads the instance beside it; a keyed one spread over hosts needs its key's records brought together.
    const keyedSpread = down.key !== undefined && down.hosts.length > 1 && !partitionedAlike(up, down, graph.nodes.get(edge.to)!.spec.partitionBy);
    if (sameHosts(up.hosts, down.hosts) && !keyedSpread) {
      planned.push({ ...base, transport: { kind: 'local' } });
      continue;
    }
    const what = carriage(edge.type);
    const crossing = `edge \`${edge.from}\` → \`${edge.to}\` crosses hosts (${up.hosts.join(', ')} → ${down.hosts.join(', ')})`;
    const ends = [...new Set([...up.hosts, ...down.hosts])];
    if (what === 'segments') {
      const objects = transports.objects;
      if (objects) checkReach(objects, 'objects', ends, crossing, locator);
      else if (!warned.has('objects')) {
        warned.add('objects');
        locator.node(edge.to, ['in'], 'unreachable_transport', `${crossing} and carries media segments, but \`transports.objects\` is not declared: segments go to the folder \`objects\` beside the pipeline, which every host must share`, 'declare `transports: {objects: {url: s3://bucket/prefix}}`', 'warning');
      }
      for (const name of up.hosts) {
        const host = byName.get(name);
        if (host?.url === undefined && !warned.has(`url:${name}`)) {
          warned.add(`url:${name}`);
          const where = host?.at;
          const message = `${crossing}: the edge pulls segments from host \`${name}\`, which has no \`url\``;
          if (where) locator.at(where, 'unreachable_transport', message, 'give the host the `url` its worker serves at');
          else locator.node(edge.to, ['in'], 'unreachable_transport', message);
        }
      }
      planned.push({ ...base, transport: { kind: 'object-store+http-pull', store: withoutCredentials(objects?.url ?? 'objects'), prefix: `${graph.name}/${edge.from}/`, pullFrom: up.hosts.map((h) => byName.get(h)?.url ?? h), ...(objects?.retain !== undefined && { retain: objects.retain }) } });
      continue;
    }
    const kafka = transports.kafka;
    if (!kafka) {
      locator.node(edge.to, down.key !== undefined ? ['parallelism'] : ['in'], 'unreachable_transport', `${crossing} and needs a Kafka topic, but \`transports.kafka\` is not declared`, 'declare `transports: {kafka: {brokers: ${env:KAFKA_BROKERS}}}` in the pipeline or the hosts file');
      continue;
    }
    checkReach(kafka, 'kafka', ends, crossing, locator);
    const partitions = Math.max(kafka.partitions ?? 1, down.instances.length);
    const key = what === 'media' ? 'stream' : down.key;
    planned.push({ ...base, transport: { kind: 'kafka', carries: what, topic: topicFor(graph.name, edge), partitions, ...(key !== undefined && { key }), brokers: kafka.brokers } });
  }
  return planned;
}

/** Reports the hosts at an edge's ends that a transport's `reachable_from` leaves out, at that list. */
function checkReach(endpoint: TransportEndpoint, name: string, ends: readonly string[], crossing: string, locator: PlanLocator): void {
  if (!endpoint.reachableFrom) return;
  const unreached = ends.filter((h) => !endpoint.reachableFrom!.includes(h));
  if (unreached.length === 0) return;
  const list = unreached.map((h) => `\`${h}\``).join(', ');
  locator.at(endpoint.reachableAt ?? endpoint.at, 'unreachable_transport', `${crossing} through \`transports.${name}\`, which ${unreached.length > 1 ? 'hosts' : 'host'} ${list} cannot reach (not in \`reachable_from\`)`, `add ${list} to \`reachable_from\`, or place the nodes on hosts that reach it`);
}
