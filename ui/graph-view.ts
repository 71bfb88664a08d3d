/**
 * The graph drawn as SVG: laid out left to right by ELK's layered
 * algorithm, nodes coloured by host, edges labelled with their type and
 * live rate, a fill bar per channel. Numbers update in place; a new plan
 * (after a reload) is laid out again.
 */
import ELK, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk-api.js';
import type { LiveEvent, PlanNode } from '../runtime/server/protocol.ts';
import { hostColour, layeredLayoutOptions } from '../graph/layout.ts';

type Of<T extends LiveEvent['type']> = Extract<LiveEvent, { type: T }>;

const svgNs = 'http://www.w3.org/2000/svg';
const nodeWidth = 170;
const nodeHeight = 58;

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, parent?: Element): SVGElementTagNameMap[K] {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  parent?.appendChild(element);
  return element;
}

/** A rate as people read it: `0`, `12/s`, `3.4k/s`. */
export function formatRate(perSecond: number): string {
  if (perSecond < 0.05) return '0/s';
  if (perSecond < 10) return `${perSecond.toFixed(1)}/s`;
  if (perSecond < 1000) return `${Math.round(perSecond)}/s`;
  if (perSecond < 1e6) return `${(perSecond / 1000).toFixed(1)}k/s`;
  return `${(perSecond / 1e6).toFixed(1)}M/s`;
}

interface DrawnNode {
  group: SVGGElement;
  rate: SVGTextElement;
  drops: number;
}

interface DrawnEdge {
  group: SVGGElement;
  rate: SVGTextElement;
  fill: SVGRectElement;
  drops: number;
}

/** The drawing of one graph in an `<svg>`. */
export class GraphView {
  readonly #svg: SVGSVGElement;
  readonly #root: SVGGElement;
  // The layout runs in a worker (`elk-worker.js`, served with the page): a big graph's layout takes seconds and the page stays live meanwhile.
  readonly #elk = new ELK({ workerUrl: 'elk-worker.js' });
  readonly #onSelect: (node: string) => void;
  #nodes = new Map<string, DrawnNode>();
  #edges = new Map<string, DrawnEdge>();
  #view = { x: 0, y: 0, scale: 1 };
  #selected: string | undefined;
  /** Layouts are asynchronous; only the latest plan is drawn. */
  #generation = 0;
  /** How long the last plan took to lay out and to draw, ms (shown in `window.streamsVisualiser`). */
  timings = { layoutMs: 0, drawMs: 0 };

  constructor(svg: SVGSVGElement, onSelect: (node: string) => void) {
    this.#svg = svg;
    this.#onSelect = onSelect;
    this.#root = el('g', {}, svg);
    this.#enablePanZoom();
  }

  /** Lays out and draws a plan, replacing what was drawn. */
  async show(plan: Of<'graph.plan'>): Promise<void> {
    const generation = ++this.#generation;
    const graph: ElkNode = {
      id: 'root',
      layoutOptions: { ...layeredLayoutOptions },
      children: plan.nodes.map((node) => ({ id: node.id, width: nodeWidth, height: nodeHeight })),
      edges: plan.edges.map(
        (edge): ElkExtendedEdge => ({
          id: edge.id,
          sources: [edge.from],
          targets: [edge.to],
          labels: [{ id: `${edge.id}#label`, text: edge.type, width: Math.max(92, shortType(edge).length * 5.6), height: 26 }],
        }),
      ),
    };
    const started = performance.now();
    const laid = await this.#elk.layout(graph);
    if (generation !== this.#generation) return;
    const laidOut = performance.now();
    this.#draw(plan, laid);
    this.timings = { layoutMs: Math.round(laidOut - started), drawMs: Math.round(performance.now() - laidOut) };
  }

  #draw(plan: Of<'graph.plan'>, laid: ElkNode): void {
    this.#root.replaceChildren();
    this.#nodes = new Map();
    this.#edges = new Map();
    const edgeLayer = el('g', { class: 'edges' }, this.#root);
    const nodeLayer = el('g', { class: 'nodes' }, this.#root);
    const planEdges = new Map(plan.edges.map((e) => [e.id, e]));
    for (const edge of laid.edges ?? []) {
      const spec = planEdges.get(edge.id)!;
      const group = el('g', { class: 'edge', 'data-edge': edge.id }, edgeLayer);
      for (const section of edge.sections ?? []) {
        const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
        el('path', { d: polylinePath(points), 'marker-end': 'url(#arrow)' }, group);
      }
      const label = edge.labels?.[0];
      const lx = label?.x ?? 0;
      const ly = label?.y ?? 0;
      const type = el('text', { x: lx, y: ly + 9 }, group);
      type.textContent = shortType(spec);
      const rate = el('text', { x: lx, y: ly + 21, class: 'rate' }, group);
      rate.textContent = '0/s';
      el('rect', { x: lx + 48, y: ly + 14, width: 40, height: 7, class: 'fill-bg', rx: 2 }, group);
      const fill = el('rect', { x: lx + 48, y: ly + 14, width: 0, height: 7, class: 'fill', rx: 2 }, group);
      el('title', {}, group).textContent = `${spec.from}.${spec.fromPort} → ${spec.to}: ${spec.type}`;
      this.#edges.set(edge.id, { group, rate, fill, drops: 0 });
    }
    const planNodes = new Map(plan.nodes.map((n) => [n.id, n]));
    for (const child of laid.children ?? []) {
      const node = planNodes.get(child.id)!;
      this.#nodes.set(node.id, this.#drawNode(node, child.x ?? 0, child.y ?? 0, nodeLayer));
    }
    this.#defineArrow();
    if (this.#selected) this.select(this.#selected);
    this.#fit(laid.width ?? 0, laid.height ?? 0);
  }

  #drawNode(node: PlanNode, x: number, y: number, parent: SVGGElement): DrawnNode {
    const group = el('g', { class: 'node', transform: `translate(${x},${y})`, 'data-node': node.id }, parent);
    el('rect', { class: 'box', width: nodeWidth, height: nodeHeight }, group);
    el('rect', { class: 'band', width: 6, height: nodeHeight, fill: hostColour(node.host) }, group);
    const name = el('text', { x: 14, y: 18, 'font-weight': 600 }, group);
    name.textContent = node.id;
    const op = el('text', { x: 14, y: 33, class: 'op' }, group);
    op.textContent = `${node.op} · ${node.host}${node.role ? ` (${node.role})` : ''}`;
    const rate = el('text', { x: 14, y: 49, class: 'rate' }, group);
    rate.textContent = node.source_node ? 'out 0/s' : 'in 0/s';
    el('title', {}, group).textContent = `${node.id} (${node.op}) at ${node.source.file}:${node.source.line}:${node.source.col}`;
    group.addEventListener('click', (event) => {
      event.stopPropagation();
      this.#onSelect(node.id);
    });
    return { group, rate, drops: 0 };
  }

  #defineArrow(): void {
    const defs = el('defs', {}, this.#root);
    const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#868e96' }, marker);
  }

  /** Marks a node as the selected one. */
  select(id: string): void {
    this.#selected = id;
    for (const [name, drawn] of this.#nodes) drawn.group.classList.toggle('selected', name === id);
  }

  nodeStats(event: Of<'node.stats'>): void {
    const drawn = this.#nodes.get(event.node);
    if (!drawn) return;
    const drops = Object.values(event.drops).reduce((a, b) => a + b, 0);
    drawn.group.classList.toggle('dropping', drops > drawn.drops);
    drawn.drops = drops;
    const inRate = formatRate(event.records_in_per_s);
    const outRate = formatRate(event.records_out_per_s);
    drawn.rate.textContent = `in ${inRate} · out ${outRate}${event.errors > 0 ? ` · ${event.errors} err` : ''}`;
  }

  nodeState(event: Of<'node.state'>): void {
    const drawn = this.#nodes.get(event.node);
    if (!drawn) return;
    drawn.group.classList.toggle('failing', event.state === 'failed');
    drawn.group.classList.toggle('restarting', event.state === 'restarting');
  }

  edgeStats(event: Of<'edge.stats'>): void {
    const drawn = this.#edges.get(event.edge);
    if (!drawn) return;
    drawn.rate.textContent = formatRate(event.records_per_s);
    const fill = event.capacity > 0 ? Math.min(event.depth / event.capacity, 1) : 0;
    drawn.fill.setAttribute('width', String(Math.max(fill * 40, event.depth > 0 ? 1 : 0)));
    drawn.fill.setAttribute('class', `fill${fill >= 0.95 ? ' full' : fill >= 0.5 ? ' high' : ''}`);
    drawn.group.classList.toggle('flowing', event.records_per_s > 0);
    drawn.group.classList.toggle('dropping', event.drops > drawn.drops);
    drawn.drops = event.drops;
    drawn.group.querySelector('title')!.textContent = `${event.edge}: ${formatRate(event.records_per_s)}, queue ${event.depth}/${event.capacity}, ${event.drops} dropped`;
  }

  /** Outlines the nodes a reload added or replaced, for a while. */
  highlight(diff: { added: string[]; replaced: string[] }, forMs = 15_000): void {
    for (const id of diff.added) this.#nodes.get(id)?.group.classList.add('added');
    for (const id of diff.replaced) this.#nodes.get(id)?.group.classList.add('replaced');
    setTimeout(() => {
      for (const drawn of this.#nodes.values()) drawn.group.classList.remove('added', 'replaced');
    }, forMs);
  }

  /** How many nodes are drawn now. */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  #apply(): void {
    const { x, y, scale } = this.#view;
    this.#root.setAttribute('transform', `translate(${x},${y}) scale(${scale})`);
  }

  /** Fits the graph in view, but never so small it cannot be read: a big graph starts at its left end, to pan. */
  #fit(width: number, height: number): void {
    const box = this.#svg.getBoundingClientRect();
    const scale = Math.max(0.55, Math.min(1.3, (box.width - 40) / Math.max(width, 1), (box.height - 40) / Math.max(height, 1)));
    const x = width * scale <= box.width ? (box.width - width * scale) / 2 : 20;
    const y = height * scale <= box.height ? (box.height - height * scale) / 2 : 20;
    this.#view = { scale, x, y };
    this.#apply();
  }

  #enablePanZoom(): void {
    let drag: { x: number; y: number } | undefined;
    this.#svg.addEventListener('pointerdown', (event) => {
      drag = { x: event.clientX - this.#view.x, y: event.clientY - this.#view.y };
    });
    this.#svg.addEventListener('pointermove', (event) => {
      if (!drag) return;
      this.#view.x = event.clientX - drag.x;
      this.#view.y = event.clientY - drag.y;
      this.#apply();
    });
    window.addEventListener('pointerup', () => (drag = undefined));
    this.#svg.addEventListener(
      'wheel',
      (event) => {
        event.preventDefault();
        const factor = Math.exp(-event.deltaY * 0.0015);
        const box = this.#svg.getBoundingClientRect();
        const px = event.clientX - box.left;
        const py = event.clientY - box.top;
        this.#view.x = px - (px - this.#view.x) * factor;
        this.#view.y = py - (py - this.#view.y) * factor;
        this.#view.scale *= factor;
        this.#apply();
      },
      { passive: false },
    );
  }
}

/** An edge's type as its label shows it: the port when not `out`, long record schemas cut (the full type is in the tooltip). */
function shortType(edge: { fromPort: string; type: string }): string {
  const type = edge.type.length > 26 ? `${edge.type.slice(0, 24)}…` : edge.type;
  return edge.fromPort === 'out' ? type : `${edge.fromPort}: ${type}`;
}

/** ELK's orthogonal sections: a polyline through the start, bend and end points. */
function polylinePath(points: { x: number; y: number }[]): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
}
