/**
 * The checked graph: what `check` produces and `plan`, `run` and `diff` consume.
 */
import type { SourcePosition } from './diagnostics.ts';
import type { OperatorSpec, Requirement } from './operator-spec.ts';
import type { PortType } from './port-types.ts';
import type { OnError, WhenFull } from './node-fields.ts';

export type { OnError, WhenFull };

/** A selector over hosts. */
export interface Placement {
  host?: string;
  role?: string;
  region?: string;
  labels?: Record<string, string>;
}

/** A place in a named file: where a host or a transport was declared, for diagnostics about it. */
export interface Located {
  file: string;
  line: number;
  col: number;
}

export interface Host {
  name: string;
  role?: string;
  region?: string;
  labels: Record<string, string>;
  /** Capabilities; an undeclared list means the implicit local host, which offers all. */
  offers: readonly Requirement[];
  /** Addresses the host's listeners may bind or be reached at (`10.0.0.2`, `0.0.0.0`). */
  listen?: readonly string[];
  /** Where the host's worker is reached (`http://10.0.0.2:7070`); edges pull segments from it. */
  url?: string;
  /** Where the host's name stands in the pipeline or hosts file. */
  at?: Located;
  /** Where its `offers` list stands, when written. */
  offersAt?: Located;
}

/** A shared service a transport runs through, as `transports:` declares it. */
export interface TransportEndpoint {
  /** Host names that reach it; absent, every host does. */
  reachableFrom?: readonly string[];
  /** Where it is declared. */
  at: Located;
  /** Where its `reachable_from` list stands, when written. */
  reachableAt?: Located;
}

/** `transports:`: the Kafka brokers events cross hosts through, and the object store segments do. */
export interface Transports {
  kafka?: TransportEndpoint & { brokers: string[]; partitions?: number };
  /** `retain` is the duration as written (`10m`), handed to `objects.put` as its own setting. */
  objects?: TransportEndpoint & { url: string; retain?: string };
}

/** A connection from one node's output port to another's input port. */
export interface Edge {
  from: string;
  fromPort: string;
  to: string;
  toPort: string;
  type: PortType;
}

/** How the channels into a node are sized, when the node says so. */
export interface ChannelSettings {
  capacity?: number;
  capacityBytes?: number;
  whenFull?: WhenFull;
}

export interface GraphNode {
  name: string;
  op: string;
  spec: OperatorSpec<any>;
  /** Settings after validation (durations in ms, sizes in bytes, defaults applied). */
  settings: unknown;
  /** Settings as written (after substitution), for diffing. */
  rawSettings: unknown;
  place?: Placement;
  parallelism: number;
  onError: OnError;
  channel: ChannelSettings;
  /** Types of this node's outputs, by port. */
  outputTypes: Record<string, PortType>;
  /** Where the node's name stands in the file. */
  at: SourcePosition;
  /** Paths inside `with` whose values came from `${env:...}`: secrets, never shown. */
  envSettings?: (string | number)[][];
}

export interface Graph {
  file: string;
  name: string;
  /** In file order. */
  nodes: Map<string, GraphNode>;
  edges: Edge[];
  hosts: Host[];
  /** `transports:` from the pipeline or the hosts file; absent when neither declares any. */
  transports?: Transports;
  params: Record<string, unknown>;
}

/** Edges into a node, in the order its `in` lists them. */
export function inputsOf(graph: Graph, node: string): Edge[] {
  return graph.edges.filter((e) => e.to === node);
}

/** Edges out of a node. */
export function outputsFrom(graph: Graph, node: string): Edge[] {
  return graph.edges.filter((e) => e.from === node);
}

/** Edges into each node, in the order its `in` lists them: built once, read by every walk. */
export function incomingEdges<E extends { to: string }>(edges: readonly E[]): Map<string, E[]> {
  const incoming = new Map<string, E[]>();
  for (const edge of edges) {
    const list = incoming.get(edge.to);
    if (list) list.push(edge);
    else incoming.set(edge.to, [edge]);
  }
  return incoming;
}

/** What `walkDependencies` finds. */
export interface DependencyWalk<E> {
  /** Every node, each after its inputs (an input on a cycle with it aside). */
  order: string[];
  /**
   * Each cycle once: the edge that closes it (its `from` is `nodes[0]`) and
   * the nodes on it, each reading from the next, in the order the walk met them.
   */
  cycles: { closing: E; nodes: string[] }[];
}

/**
 * The one walk of a graph's dependencies: an order in which every node comes
 * after its inputs, and the cycles that prevent one. Linear; it keeps its own
 * stack, as a long chain written sink first would overflow the call stack.
 *
 * @example
 * const { order, cycles } = walkDependencies(graph.nodes.keys(), incomingEdges(graph.edges));
 */
export function walkDependencies<E extends { from: string }>(names: Iterable<string>, incoming: ReadonlyMap<string, readonly E[]>): DependencyWalk<E> {
  // A node's place on the path being walked while it is visited, `done` once it is ordered; absent, not met yet.
  const state = new Map<string, number>();
  const done = -1;
  // The path being walked, and for each node on it its input edges and the next one to follow: parallel lists, no object per node.
  const stack: string[] = [];
  const stackEdges: (readonly E[])[] = [];
  const stackNext: number[] = [];
  const order: string[] = [];
  const cycles: { closing: E; nodes: string[] }[] = [];
  const enter = (name: string): void => {
    state.set(name, stack.length);
    stack.push(name);
    stackEdges.push(incoming.get(name) ?? noInputs);
    stackNext.push(0);
  };
  for (const root of names) {
    if (state.has(root)) continue;
    enter(root);
    while (stack.length > 0) {
      const top = stack.length - 1;
      const edges = stackEdges[top];
      const next = stackNext[top];
      if (next === edges.length) {
        const name = stack.pop()!;
        stackEdges.pop();
        stackNext.pop();
        state.set(name, done);
        order.push(name);
        continue;
      }
      stackNext[top] = next + 1;
      const edge = edges[next];
      const seen = state.get(edge.from);
      if (seen === undefined) enter(edge.from);
      else if (seen !== done) cycles.push({ closing: edge, nodes: stack.slice(seen) });
    }
  }
  return { order, cycles };
}

/** The input edges of a node with none. */
const noInputs: readonly never[] = [];

/** Node names in an order where every node comes after its inputs. */
export function topologicalOrder(graph: Graph): string[] {
  return walkDependencies(graph.nodes.keys(), incomingEdges(graph.edges)).order;
}
