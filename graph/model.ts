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
  /**
   * The node's number, set by the checker: its place among the checked nodes
   * of its file, in file order. The checker's later phases find a node's
   * number through it, not through a map of every name. Only the checker
   * reads it, and only on the graph it is building: nodes made elsewhere
   * (host-graph transports, test subgraphs) have none, and a host's share is
   * numbered within the share.
   */
  number?: number;
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
 * A graph's dependencies by node number, as the walk reads them: the input
 * edges of node `i` are numbers `firstEdge[i]` to `firstEdge[i + 1] - 1`,
 * and edge `e` comes from node `edgeFrom[e]`.
 */
export interface NumberedInputs {
  /** Nodes, numbered 0 to `count - 1`. */
  count: number;
  firstEdge: ArrayLike<number>;
  edgeFrom: ArrayLike<number>;
}

/** What `walkNumbered` finds: `DependencyWalk` in numbers (nodes, and each cycle's closing edge). */
export interface NumberedWalk {
  order: number[];
  cycles: { closing: number; nodes: number[] }[];
}

/**
 * The one walk of a graph's dependencies, over node numbers: an order in
 * which every node comes after its inputs, and the cycles that prevent one,
 * walking from nodes `0` to `roots - 1` (every node by default; the others
 * are met through edges). Linear, in typed arrays; it keeps its own stack,
 * as a long chain written sink first would overflow the call stack. The
 * checker walks its numbered nodes with it; `walkDependencies`, names.
 */
export function walkNumbered({ count, firstEdge, edgeFrom }: NumberedInputs, roots = count): NumberedWalk {
  // 0: not met; -1: ordered; d + 1: on the path being walked, at depth d.
  const state = new Int32Array(count);
  const stack = new Int32Array(count);
  // For each node on the path, the next of its input edges to follow.
  const next = new Int32Array(count);
  let top = 0;
  const order: number[] = [];
  const cycles: NumberedWalk['cycles'] = [];
  const enter = (i: number): void => {
    state[i] = top + 1;
    stack[top] = i;
    next[top++] = firstEdge[i];
  };
  for (let root = 0; root < roots; root++) {
    if (state[root] !== 0) continue;
    enter(root);
    while (top > 0) {
      const i = stack[top - 1];
      const e = next[top - 1];
      if (e === firstEdge[i + 1]) {
        top--;
        state[i] = -1;
        order.push(i);
        continue;
      }
      next[top - 1] = e + 1;
      const from = edgeFrom[e];
      const seen = state[from];
      if (seen === 0) enter(from);
      else if (seen > 0) cycles.push({ closing: e, nodes: Array.from(stack.subarray(seen - 1, top)) });
    }
  }
  return { order, cycles };
}

/**
 * `walkNumbered` over names: every node of `names`, and every node above
 * them through `incoming`, after its inputs, and the cycles among them.
 *
 * @example
 * const { order, cycles } = walkDependencies(graph.nodes.keys(), incomingEdges(graph.edges));
 */
export function walkDependencies<E extends { from: string }>(names: Iterable<string>, incoming: ReadonlyMap<string, readonly E[]>): DependencyWalk<E> {
  const numbers = new Map<string, number>();
  const named: string[] = [];
  const numberOf = (name: string): number => {
    let n = numbers.get(name);
    if (n === undefined) {
      n = named.length;
      numbers.set(name, n);
      named.push(name);
    }
    return n;
  };
  for (const name of names) numberOf(name);
  const roots = named.length;
  // Numbered as met: the nodes above the roots join `named` while it is read, so each gets its edges.
  const firstEdge: number[] = [];
  const edgeFrom: number[] = [];
  const edges: E[] = [];
  for (let i = 0; i < named.length; i++) {
    firstEdge.push(edges.length);
    for (const edge of incoming.get(named[i]) ?? noInputs) {
      edgeFrom.push(numberOf(edge.from));
      edges.push(edge);
    }
  }
  firstEdge.push(edges.length);
  const walk = walkNumbered({ count: named.length, firstEdge, edgeFrom }, roots);
  return {
    order: walk.order.map((n) => named[n]),
    cycles: walk.cycles.map(({ closing, nodes }) => ({ closing: edges[closing], nodes: nodes.map((n) => named[n]) })),
  };
}

/** The input edges of a node with none. */
const noInputs: readonly never[] = [];

/** Node names in an order where every node comes after its inputs. */
export function topologicalOrder(graph: Graph): string[] {
  return walkDependencies(graph.nodes.keys(), incomingEdges(graph.edges)).order;
}
