/**
 * Drawing a checked graph as Graphviz DOT or Mermaid text: nodes labelled
 * with their operator, edges with their type.
 */
import type { Graph } from './model.ts';
import { formatPortType } from './port-types.ts';

export type GraphFormat = 'dot' | 'mermaid';

/** A string as a DOT quoted id or label. */
export function dotQuote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function mermaidId(name: string): string {
  return `n_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

/** An edge as a drawing labels it: its type, after its port when that is not the default one (`stats: Event<...>`). */
export function edgeLabel(graph: Graph, edge: Graph['edges'][number]): string {
  const from = graph.nodes.get(edge.from)!;
  const defaultPort = Object.keys(from.spec.outputs)[0];
  const port = edge.fromPort === defaultPort ? '' : `${edge.fromPort}: `;
  return `${port}${formatPortType(edge.type)}`;
}

export function renderGraph(graph: Graph, format: GraphFormat): string {
  return format === 'dot' ? renderDot(graph) : renderMermaid(graph);
}

function renderDot(graph: Graph): string {
  const lines = [`digraph ${dotQuote(graph.name)} {`, '  rankdir=LR;', '  node [shape=box, style=rounded, fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];'];
  for (const node of graph.nodes.values()) {
    lines.push(`  ${dotQuote(node.name)} [label=${dotQuote(`${node.name}\n${node.op}`)}];`);
  }
  for (const edge of graph.edges) {
    lines.push(`  ${dotQuote(edge.from)} -> ${dotQuote(edge.to)} [label=${dotQuote(edgeLabel(graph, edge))}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

function renderMermaid(graph: Graph): string {
  const lines = ['flowchart LR'];
  for (const node of graph.nodes.values()) {
    lines.push(`  ${mermaidId(node.name)}["${mermaidText(node.name)}<br/><small>${mermaidText(node.op)}</small>"]`);
  }
  for (const edge of graph.edges) {
    lines.push(`  ${mermaidId(edge.from)} -->|"${mermaidText(edgeLabel(graph, edge))}"| ${mermaidId(edge.to)}`);
  }
  return lines.join('\n') + '\n';
}
