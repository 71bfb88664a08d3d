/**
 * A graph or a plan as a standalone SVG, laid out by ELK as the
 * visualiser's page lays it out (`layout.ts`): boxes with the node's name
 * and operator, edges as paths with arrowheads and their type, and for a
 * plan one box per host around its nodes. Pure: ELK is a computation
 * (asynchronous by its API), and the text is built here, escaped.
 */
import elk, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import { hostColour, layeredLayoutOptions } from './layout.ts';
import type { Graph } from './model.ts';
import type { Plan } from './plan.ts';
import { edgeHostPairs, placedId } from './render-plan.ts';
import { edgeLabel } from './render.ts';

/** What is drawn, whatever it came from. */
export interface Drawing {
  title: string;
  nodes: { id: string; name: string; op: string; cluster?: string }[];
  edges: { id: string; from: string; to: string; label: string; dashed?: boolean }[];
  /** Boxes around nodes (a plan's hosts), by id. */
  clusters?: { id: string; label: string }[];
}

// Node reads the CommonJS bundle: its `module.exports` is the constructor, also given as `default`, which is what TypeScript sees under NodeNext.
const ELK = elk.default;

const font = 13;
/** Width of a character at the font size, roughly, for Helvetica-like fonts; boxes are sized by it. */
const charWidth = 7.4;
const nodeHeight = 44;
const maxLabel = 40;

/** Text safe inside SVG elements and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * A label short enough to sit on an edge: an event's fields by name only
 * (`Event{stream, bitrate, …}`), then cut with an ellipsis; the whole is
 * kept in the edge's `<title>`.
 */
export function clip(text: string): string {
  const short = text.replace(/Event<\{(.*)\}>/s, (_all, fields: string) => `Event{${fields.split(',').map((f) => f.split(':')[0].trim()).join(', ')}}`);
  if (short.length <= maxLabel) return short;
  const tail = short.endsWith('}') ? '…}' : '…';
  return short.slice(0, maxLabel - tail.length) + tail;
}

function textWidth(text: string, size = font): number {
  return Math.ceil(text.length * charWidth * (size / font));
}

/** A checked graph as a drawing: one box per node, one arrow per edge. */
export function graphDrawing(graph: Graph): Drawing {
  return {
    title: graph.name,
    nodes: [...graph.nodes.values()].map((node) => ({ id: node.name, name: node.name, op: node.op })),
    edges: graph.edges.map((edge, i) => ({ id: `e${i}`, from: edge.from, to: edge.to, label: edgeLabel(graph, edge) })),
  };
}

/** A plan as a drawing: a box per host holding a box per node it runs; edges between hosts dashed, labelled with their transport. */
export function planDrawing(plan: Plan): Drawing {
  const byName = new Map(plan.nodes.map((n) => [n.name, n]));
  const used = new Set(plan.nodes.flatMap((n) => n.hosts));
  return {
    title: plan.graph,
    clusters: plan.hosts.filter((h) => used.has(h.name)).map((h) => ({ id: `host:${h.name}`, label: h.role !== undefined && h.role !== h.name ? `${h.name} (${h.role})` : h.name })),
    nodes: plan.nodes.flatMap((node) => node.hosts.map((host) => ({ id: placedId(node.name, host), name: node.name, op: node.op, cluster: `host:${host}` }))),
    edges: plan.edges.flatMap((edge, i) =>
      edgeHostPairs(byName, edge).map(([u, d], j) => ({
        id: `e${i}.${j}`,
        from: placedId(edge.from, u),
        to: placedId(edge.to, d),
        label: edge.transport.kind === 'local' ? edge.type : `${edge.transport.kind === 'kafka' ? 'kafka' : 'object store'}: ${edge.type}`,
        dashed: edge.transport.kind !== 'local',
      })),
    ),
  };
}

/**
 * Lays out a drawing and writes it as an SVG document.
 *
 * @example
 * const svg = await renderSvg(graphDrawing(graph));
 */
export async function renderSvg(drawing: Drawing): Promise<string> {
  const boxes = (nodes: Drawing['nodes']): ElkNode[] =>
    nodes.map((n) => ({ id: n.id, width: Math.max(120, textWidth(n.name) + 28, textWidth(n.op, 11) + 28), height: nodeHeight }));
  const clustered = drawing.clusters ?? [];
  const children: ElkNode[] = clustered.length === 0
    ? boxes(drawing.nodes)
    : clustered.map((c) => ({ id: c.id, layoutOptions: { ...layeredLayoutOptions, 'elk.padding': '[top=30,left=14,bottom=14,right=14]' }, children: boxes(drawing.nodes.filter((n) => n.cluster === c.id)) }));
  const edges: ElkExtendedEdge[] = drawing.edges.map((e) => {
    const label = clip(e.label);
    return { id: e.id, sources: [e.from], targets: [e.to], labels: [{ id: `${e.id}#label`, text: label, width: textWidth(label, 11), height: 14 }] };
  });
  const root: ElkNode = {
    id: 'root',
    layoutOptions: {
      ...layeredLayoutOptions,
      // One layering across the host boxes, so an edge between hosts is routed like any other.
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      // Hosts often feed each other both ways (ingest on the origin, encode on a gpu host, package on the origin): file order breaks the tie.
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
      // Every coordinate relative to the root, so boxes inside host boxes and the edges between them are drawn without offsets.
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
      'elk.padding': '[top=36,left=16,bottom=16,right=16]',
    },
    children,
    edges,
  };
  const laid = await new ELK().layout(root);
  return writeSvg(drawing, laid);
}

function writeSvg(drawing: Drawing, laid: ElkNode): string {
  const width = Math.ceil(laid.width ?? 0);
  const height = Math.ceil(laid.height ?? 0);
  const nodes = new Map(drawing.nodes.map((n) => [n.id, n]));
  const edges = new Map(drawing.edges.map((e) => [e.id, e]));
  const clusters = new Map((drawing.clusters ?? []).map((c) => [c.id, c]));
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="${font}">`,
    `<title>${escapeXml(drawing.title)}</title>`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#868e96"/></marker></defs>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="22" font-size="15" font-weight="600" fill="#212529">${escapeXml(drawing.title)}</text>`,
  ];
  // Host boxes first, then edges, then nodes on top.
  const back: string[] = [];
  const front: string[] = [];
  const drawBox = (child: ElkNode): void => {
    const cluster = clusters.get(child.id);
    if (cluster) {
      const host = cluster.id.slice('host:'.length);
      back.push(`<g class="host" data-host="${escapeXml(host)}"><rect x="${n(child.x)}" y="${n(child.y)}" width="${n(child.width)}" height="${n(child.height)}" rx="8" fill="#f8f9fa" stroke="${hostColour(host)}" stroke-width="2"/>`);
      back.push(`<text x="${n((child.x ?? 0) + 12)}" y="${n((child.y ?? 0) + 20)}" font-weight="600" fill="${hostColour(host)}">${escapeXml(cluster.label)}</text></g>`);
      for (const inner of child.children ?? []) drawBox(inner);
      return;
    }
    const node = nodes.get(child.id)!;
    const x = n(child.x);
    const y = n(child.y);
    front.push(
      `<g class="node" data-node="${escapeXml(node.name)}"><title>${escapeXml(`${node.name} (${node.op})`)}</title>`,
      `<rect x="${x}" y="${y}" width="${n(child.width)}" height="${n(child.height)}" rx="6" fill="#ffffff" stroke="#495057"/>`,
      `<text x="${x + 12}" y="${y + 19}" font-weight="600" fill="#212529">${escapeXml(node.name)}</text>`,
      `<text x="${x + 12}" y="${y + 35}" font-size="11" fill="#868e96">${escapeXml(node.op)}</text></g>`,
    );
  };
  for (const child of laid.children ?? []) drawBox(child);
  out.push(...back);
  for (const edge of laid.edges ?? []) {
    const spec = edges.get(edge.id)!;
    out.push(`<g class="edge"><title>${escapeXml(`${spec.from} → ${spec.to}: ${spec.label}`)}</title>`);
    for (const section of edge.sections ?? []) {
      const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
      const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'} ${n(p.x)} ${n(p.y)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="#868e96" stroke-width="1.5"${spec.dashed ? ' stroke-dasharray="6 4"' : ''} marker-end="url(#arrow)"/>`);
    }
    const label = edge.labels?.[0];
    if (label) out.push(`<text x="${n(label.x)}" y="${n((label.y ?? 0) + 11)}" font-size="11" fill="#495057">${escapeXml(label.text ?? '')}</text>`);
    out.push('</g>');
  }
  out.push(...front, '</svg>');
  return out.join('\n') + '\n';
}

/** A coordinate with at most one decimal, so the text stays small and stable. */
function n(value: number | undefined): number {
  return Math.round((value ?? 0) * 10) / 10;
}
