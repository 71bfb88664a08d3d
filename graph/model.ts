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

export interface Host {
  name: string;
  role?: string;
  region?: string;
  labels: Record<string, string>;
  /** Capabilities; an undeclared list means the implicit local host, which offers all. */
  offers: readonly Requirement[];
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
}

export interface Graph {
  file: string;
  name: string;
  /** In file order. */
  nodes: Map<string, GraphNode>;
  edges: Edge[];
  hosts: Host[];
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

/**
 * Node names in an order where every node comes after its inputs. Linear:
 * edges are indexed by their target once, and the walk keeps its own stack,
 * as a long chain would overflow the call stack.
 */
export function topologicalOrder(graph: Graph): string[] {
  const incoming = new Map<string, string[]>();
  for (const edge of graph.edges) {
    const list = incoming.get(edge.to);
    if (list) list.push(edge.from);
    else incoming.set(edge.to, [edge.from]);
  }
  const order: string[] = [];
  const seen = new Set<string>();
  for (const root of graph.nodes.keys()) {
    if (seen.has(root)) continue;
    seen.add(root);
    const frames: { name: string; next: number }[] = [{ name: root, next: 0 }];
    while (frames.length > 0) {
      const frame = frames[frames.length - 1];
      const inputs = incoming.get(frame.name) ?? [];
      if (frame.next === inputs.length) {
        frames.pop();
        order.push(frame.name);
        continue;
      }
      const from = inputs[frame.next++];
      if (!seen.has(from)) {
        seen.add(from);
        frames.push({ name: from, next: 0 });
      }
    }
  }
  return order;
}
