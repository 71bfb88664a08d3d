/**
 * The text one host checks: a planned pipeline with the lines of every node
 * the host does not need blanked, so checking it costs the host's share of
 * the graph and not the whole, while every diagnostic keeps its line and
 * column. `streams deploy` records where each node's lines are
 * (`nodeLines`); a worker keeps its own nodes, the nodes they send to on
 * other hosts (the types of those edges), and everything upstream of both
 * (what their types are inferred from), and blanks the rest (`shareText`).
 * Pure, like the planner.
 */
import { incomingEdges, walkDependencies, type Graph } from './model.ts';
import type { Plan } from './plan.ts';

/** Node name → its first and last line (1-based, inclusive) in the pipeline's text. */
export type NodeLines = Record<string, [number, number]>;

/**
 * Where each node of a checked graph is written: from its name's line to
 * the line before the next node's, the last one ending before the next
 * top-level key (or the file's end). Undefined when the nodes are not one
 * block map of one node a line (a flow map `nodes: {a: ..., b: ...}`, or
 * two nodes on a line): such a file cannot be cut by lines, and a worker
 * checks it whole.
 *
 * @example
 * nodeLines(graph, text) // { src: [4, 8], out: [9, 10] }
 */
export function nodeLines(graph: Graph, text: string): NodeLines | undefined {
  const starts = [...graph.nodes.values()].map((n) => ({ name: n.name, line: n.at.line, col: n.at.col })).sort((a, b) => a.line - b.line);
  if (starts.length === 0) return undefined;
  const col = starts[0].col;
  // Nodes sharing a line, or at different indentations (a flow map over several lines), cannot be cut by lines.
  if (col < 2) return undefined;
  for (let i = 1; i < starts.length; i++) if (starts[i].line === starts[i - 1].line || starts[i].col !== col) return undefined;
  const lines = text.split('\n');
  // A line that starts at column 1 (not a comment) is a top-level key: the nodes' map ends before it.
  const topLevel = (line: number): boolean => /^[^\s#]/.test(lines[line - 1] ?? '');
  // The map itself must be a block one: a flow map's braces would be blanked with the nodes around them.
  let key = starts[0].line - 1;
  while (key > 0 && !topLevel(key)) key--;
  if (!/^["']?nodes["']?\s*:\s*(#.*)?$/.test(lines[key - 1] ?? '')) return undefined;
  let end = starts[starts.length - 1].line;
  while (end < lines.length && !topLevel(end + 1)) end++;
  while (end > starts[starts.length - 1].line && lines[end - 1].trim() === '') end--;
  const found: NodeLines = {};
  for (let i = 0; i < starts.length; i++) {
    const to = i + 1 < starts.length ? starts[i + 1].line - 1 : end;
    for (let line = starts[i].line + 1; line <= to; line++) if (topLevel(line)) return undefined;
    found[starts[i].name] = [starts[i].line, to];
  }
  return found;
}

/**
 * The nodes host `host` checks: the nodes it runs, the nodes they send to
 * on other hosts, and every node upstream of either, in dependency order.
 */
export function shareNodes(plan: Plan, host: string): Set<string> {
  const own = plan.nodes.filter((n) => n.hosts.includes(host)).map((n) => n.name);
  const mine = new Set(own);
  const seeds = new Set(own);
  for (const edge of plan.edges) if (mine.has(edge.from)) seeds.add(edge.to);
  return new Set(walkDependencies(seeds, incomingEdges(plan.edges)).order);
}

/**
 * The pipeline's text with the lines of every node not in `keep` made
 * empty: the line count and every kept character's column are unchanged.
 */
export function shareText(text: string, lines: NodeLines, keep: ReadonlySet<string>): string {
  const out = text.split('\n');
  for (const [name, [first, last]] of Object.entries(lines)) {
    if (keep.has(name)) continue;
    for (let line = first; line <= last; line++) out[line - 1] = '';
  }
  return out.join('\n');
}
