/**
 * Diffing two checked graphs by node name, operator, settings, inputs and
 * node fields, for hot reload. Layout (order of nodes, comments, spacing,
 * key order) is not a change.
 */
import type { Graph, GraphNode } from './model.ts';

export interface GraphDiff {
  /** Nodes that keep running, untouched. */
  kept: string[];
  /** Nodes drained and replaced by their new definition. */
  replaced: string[];
  added: string[];
  removed: string[];
}

/** JSON with object keys sorted, so key order is not a difference. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

function identity(graph: Graph, node: GraphNode): string {
  const inputs = graph.edges
    .filter((e) => e.to === node.name)
    .map((e) => `${e.from}.${e.fromPort}->${e.toPort}`)
    .sort();
  return canonical({
    op: node.op,
    with: node.rawSettings,
    inputs,
    place: node.place ?? null,
    parallelism: node.parallelism,
    onError: node.onError,
    channel: node.channel,
  });
}

export function diffGraphs(before: Graph, after: Graph): GraphDiff {
  const diff: GraphDiff = { kept: [], replaced: [], added: [], removed: [] };
  for (const [name, node] of after.nodes) {
    const old = before.nodes.get(name);
    if (!old) diff.added.push(name);
    else if (identity(before, old) === identity(after, node)) diff.kept.push(name);
    else diff.replaced.push(name);
  }
  for (const name of before.nodes.keys()) if (!after.nodes.has(name)) diff.removed.push(name);
  return diff;
}

/** Whether a diff changes nothing. */
export function isEmptyDiff(diff: GraphDiff): boolean {
  return diff.replaced.length === 0 && diff.added.length === 0 && diff.removed.length === 0;
}
