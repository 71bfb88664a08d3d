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

/** Node names in an order where every node comes after its inputs. */
export function topologicalOrder(graph: Graph): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const edge of graph.edges) if (edge.to === name) visit(edge.from);
    order.push(name);
  };
  for (const name of graph.nodes.keys()) visit(name);
  return order;
}
