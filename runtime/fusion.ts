/**
 * Which nodes of a graph run fused: a node whose only consumer is an
 * operator it fuses with runs the two as one node (a window followed by an
 * aggregate; in a fixed graph, `file.read` with its `decode.json`). The
 * engine fuses by this at start and after every reload, and a reload compares
 * it before and after to replace a pair whose fusion changes.
 */
import { inputsOf, type Graph } from '../graph/model.ts';
import { defaultPortOf, type OperatorDefinition } from './types.ts';

/**
 * The fused pairs of `graph`: producer name to the consumer it absorbs.
 * `fixed` allows a source to absorb its consumer (see `EngineOptions.fixed`).
 *
 * @example
 * fusedPairs(graph, registry, false) // Map { 'per-second' => 'stats' }
 */
export function fusedPairs(graph: Graph, registry: ReadonlyMap<string, OperatorDefinition>, fixed: boolean): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const node of graph.nodes.values()) {
    const definition = registry.get(node.op);
    const fuse = definition?.fuse;
    if (!fuse) continue;
    if (Object.keys(definition.inputs).length === 0 && !fixed) continue;
    const port = defaultPortOf(definition);
    const outgoing = graph.edges.filter((e) => e.from === node.name && e.fromPort === port);
    if (outgoing.length !== 1) continue;
    const consumer = graph.nodes.get(outgoing[0].to)!;
    if (!fuse[consumer.op]) continue;
    if (inputsOf(graph, consumer.name).length !== 1) continue;
    pairs.set(node.name, consumer.name);
  }
  return pairs;
}
