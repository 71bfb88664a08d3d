/**
 * The graph drawn as SVG: laid out left to right by ELK's layered
 * algorithm, nodes coloured by host, edges labelled with their type and
 * live rate, a fill bar per channel. A graph with hosts is drawn as a box
 * per host (ELK compound nodes) with edges between hosts dashed and
 * labelled with their transport, or flat. Numbers update in place; a new
 * plan (after a reload) is laid out again.
 */
import ELK, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk-api.js';
import type { LiveEvent, PlanEdge, PlanNode } from '../runtime/server/protocol.ts';
import { layeredLayoutOptions } from '../graph/layout.ts';
import { colourOfHost, hostHeader, sceneOf, type Box, type Scene } from './host-scene.ts';

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

/** Bytes a second as people read them: `0 B/s`, `512 B/s`, `3.4 kB/s`, `12 MB/s`; `~` before an estimate (an edge of events). */
export function formatByteRate(perSecond: number, estimated = false): string {
  const mark = estimated && perSecond >= 0.5 ? '~' : '';
  if (perSecond < 0.5) return '0 B/s';
  if (perSecond < 1000) return `${mark}${Math.round(perSecond)} B/s`;
  if (perSecond < 1e6) return `${mark}${(perSecond / 1000).toFixed(1)} kB/s`;
  if (perSecond < 1e9) return `${mark}${(perSecond / 1e6).toFixed(1)} MB/s`;
  return `${mark}${(perSecond / 1e9).toFixed(1)} GB/s`;
}

interface DrawnNode {
  group: SVGGElement;
  rate: SVGTextElement;
  drops: number;
  /** Whether this box's numbers come from this process (false: another host's instance, or nothing runs). */
  live: boolean;
}

interface DrawnEdge {
  group: SVGGElement;
  rate: SVGTextElement | undefined;
  bytes: SVGTextElement | undefined;
  fill: SVGRectElement | undefined;
  drops: number;
  live: boolean;
}

/** How the page lays a graph with hosts out: a box per host holding its nodes, or the nodes alone. */
export type LayoutMode = 'hosts' | 'flat';

/** The drawing of one graph in an `<svg>`. */
export class GraphView {
  readonly #svg: SVGSVGElement;
  readonly #root: SVGGElement;
  // The layout runs in a worker (`elk-worker.js`, served with the page): a big graph's layout takes seconds and the page stays live meanwhile.
  readonly #elk = new ELK({ workerUrl: 'elk-worker.js' });
  readonly #onSelect: (node: string) => void;
  #nodes = new Map<string, DrawnNode[]>();
  #edges = new Map<string, DrawnEdge[]>();
  #view = { x: 0, y: 0, scale: 1 };
  #selected: string | undefined;
  #plan: Of<'graph.plan'> | undefined;
  #mode: LayoutMode = 'hosts';
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

  /** The layout asked for; `hosts` draws a plan without hosts flat all the same. */
  get mode(): LayoutMode {
    return this.#mode;
  }

  /** Switches between host boxes and a flat graph, and draws the last plan again. */
  async setMode(mode: LayoutMode): Promise<void> {
    this.#mode = mode;
    if (this.#plan) await this.show(this.#plan);
  }

  /** Lays out and draws a plan, replacing what was drawn. */
  async show(plan: Of<'graph.plan'>): Promise<void> {
    const generation = ++this.#generation;
    this.#plan = plan;
    const scene = sceneOf(plan, this.#mode === 'hosts');
    const grouped = scene.hosts.length > 0;
    const box = (b: Box): ElkNode => ({ id: b.id, width: nodeWidth, height: nodeHeight });
    const graph: ElkNode = {
      id: 'root',
      layoutOptions: {
        ...layeredLayoutOptions,
        ...(grouped && {
          // One layering across the host boxes, so an edge between hosts is routed like any other; every coordinate relative to the root.
          'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
          'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
          'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
          'elk.json.shapeCoords': 'ROOT',
          'elk.json.edgeCoords': 'ROOT',
        }),
      },
      children: grouped
        ? scene.hosts.map((host) => ({
            id: `host:${host.name}`,
            layoutOptions: { ...layeredLayoutOptions, 'elk.padding': '[top=38,left=16,bottom=16,right=16]' },
            children: scene.boxes.filter((b) => b.host === host.name).map(box),
          }))
        : scene.boxes.map(box),
      edges: scene.lines.map(
        (line): ElkExtendedEdge => ({
          id: line.id,
          sources: [line.from.id],
          targets: [line.to.id],
          labels: [{ id: `${line.id}#label`, text: line.edge.type, width: labelWidth(line.edge), height: line.edge.transport ? 50 : 38 }],
        }),
      ),
    };
    const started = performance.now();
    const laid = await this.#elk.layout(graph);
    if (generation !== this.#generation) return;
    const laidOut = performance.now();
    this.#draw(scene, laid);
    this.timings = { layoutMs: Math.round(laidOut - started), drawMs: Math.round(performance.now() - laidOut) };
  }

  /** Whether a box's numbers are this process's: everything runs here, or it is on this worker's host. */
  #isLive(plan: Of<'graph.plan'>, node: PlanNode, host: string | undefined): boolean {
    if (plan.plan_only) return false;
    if (plan.here === undefined) return true;
    return host === undefined ? node.hosts.includes(plan.here) : host === plan.here;
  }

  #draw(scene: Scene, laid: ElkNode): void {
    const { plan } = scene;
    this.#root.replaceChildren();
    this.#nodes = new Map();
    this.#edges = new Map();
    const hostLayer = el('g', { class: 'hosts' }, this.#root);
    const edgeLayer = el('g', { class: 'edges' }, this.#root);
    const nodeLayer = el('g', { class: 'nodes' }, this.#root);
    const lines = new Map(scene.lines.map((l) => [l.id, l]));
    const hostInfo = new Map(scene.hosts.map((h) => [`host:${h.name}`, h]));
    const boxes = new Map(scene.boxes.map((b) => [b.id, b]));
    const laidBoxes: ElkNode[] = [];
    for (const child of laid.children ?? []) {
      const host = hostInfo.get(child.id);
      if (!host) {
        laidBoxes.push(child);
        continue;
      }
      laidBoxes.push(...(child.children ?? []));
      const remote = plan.here !== undefined && plan.here !== host.name;
      const group = el('g', { class: `host-group${remote ? ' remote' : ''}`, 'data-host': host.name, transform: `translate(${child.x ?? 0},${child.y ?? 0})` }, hostLayer);
      el('rect', { width: child.width ?? 0, height: child.height ?? 0, rx: 10, stroke: colourOfHost(plan, host.name) }, group);
      const header = el('text', { x: 14, y: 24, class: 'host-header', fill: colourOfHost(plan, host.name) }, group);
      header.textContent = `${hostHeader(host)}${plan.here === host.name ? ' (this host)' : ''}`;
    }
    for (const edge of laid.edges ?? []) {
      const line = lines.get(edge.id)!;
      const spec = line.edge;
      // An edge between hosts is a channel of this process only under `streams run`, which runs every host's nodes; elsewhere records cross it through the transport.
      const live = (!spec.transport || plan.here === undefined) && this.#isLive(plan, line.from.node, line.from.host) && this.#isLive(plan, line.to.node, line.to.host);
      const group = el('g', { class: `edge${spec.transport ? ' cross-host' : ''}${live ? '' : ' idle'}`, 'data-edge': spec.id }, edgeLayer);
      if (line.from.host !== undefined) group.setAttribute('data-hosts', `${line.from.host}>${line.to.host}`);
      for (const section of edge.sections ?? []) {
        const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
        el('path', { d: polylinePath(points), 'marker-end': 'url(#arrow)' }, group);
      }
      const label = edge.labels?.[0];
      const lx = label?.x ?? 0;
      let ly = label?.y ?? 0;
      const type = el('text', { x: lx, y: ly + 9 }, group);
      type.textContent = shortType(spec);
      if (spec.transport) {
        const transport = el('text', { x: lx, y: ly + 21, class: 'transport' }, group);
        transport.textContent = spec.transport.label;
        ly += 12;
      }
      let rate: SVGTextElement | undefined;
      let bytes: SVGTextElement | undefined;
      let fill: SVGRectElement | undefined;
      if (live) {
        rate = el('text', { x: lx, y: ly + 21, class: 'rate' }, group);
        rate.textContent = '0/s';
        el('rect', { x: lx + 48, y: ly + 14, width: 40, height: 7, class: 'fill-bg', rx: 2 }, group);
        fill = el('rect', { x: lx + 48, y: ly + 14, width: 0, height: 7, class: 'fill', rx: 2 }, group);
        bytes = el('text', { x: lx, y: ly + 32, class: 'bytes' }, group);
        bytes.textContent = '0 B/s';
      }
      el('title', {}, group).textContent = `${spec.from}.${spec.fromPort} → ${spec.to}: ${spec.type}${spec.transport ? ` via ${spec.transport.label}` : ''}`;
      const drawn = { group, rate, bytes, fill, drops: 0, live };
      this.#edges.set(spec.id, [...(this.#edges.get(spec.id) ?? []), drawn]);
    }
    for (const child of laidBoxes) {
      const box = boxes.get(child.id)!;
      const drawn = this.#drawNode(box, this.#isLive(plan, box.node, box.host), child.x ?? 0, child.y ?? 0, nodeLayer);
      this.#nodes.set(box.node.id, [...(this.#nodes.get(box.node.id) ?? []), drawn]);
    }
    this.#defineArrow();
    if (this.#selected) this.select(this.#selected);
    this.#fit(laid.width ?? 0, laid.height ?? 0);
  }

  #drawNode(box: Box, live: boolean, x: number, y: number, parent: SVGGElement): DrawnNode {
    const { node } = box;
    const host = box.host ?? node.host;
    const group = el('g', { class: `node${live ? '' : this.#plan?.plan_only ? ' planned' : ' remote'}`, transform: `translate(${x},${y})`, 'data-node': node.id, 'data-host': host }, parent);
    el('rect', { class: 'box', width: nodeWidth, height: nodeHeight }, group);
    el('rect', { class: 'band', width: 6, height: nodeHeight, fill: colourOfHost(this.#plan!, host) }, group);
    const name = el('text', { x: 14, y: 18, 'font-weight': 600 }, group);
    name.textContent = node.id;
    const op = el('text', { x: 14, y: 33, class: 'op' }, group);
    // Inside a host box the host is its header; flat, each node says where it runs.
    const where = box.host !== undefined ? (node.hosts.length > 1 ? `${node.hosts.indexOf(host) + 1} of ${node.hosts.length} hosts` : '') : `${node.hosts.join(', ')}${node.role ? ` (${node.role})` : ''}`;
    op.textContent = where ? `${node.op} · ${where}` : node.op;
    const rate = el('text', { x: 14, y: 49, class: 'rate' }, group);
    rate.textContent = live ? (node.source_node ? 'out 0/s' : 'in 0/s') : this.#plan?.plan_only ? 'planned' : `on ${host}`;
    el('title', {}, group).textContent = `${node.id} (${node.op}) on ${host} at ${node.source.file}:${node.source.line}:${node.source.col}`;
    group.addEventListener('click', (event) => {
      event.stopPropagation();
      this.#onSelect(node.id);
    });
    return { group, rate, drops: 0, live };
  }

  #defineArrow(): void {
    const defs = el('defs', {}, this.#root);
    const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#868e96' }, marker);
  }

  /** Marks a node as the selected one (all its boxes). */
  select(id: string): void {
    this.#selected = id;
    for (const [name, copies] of this.#nodes) for (const drawn of copies) drawn.group.classList.toggle('selected', name === id);
  }

  nodeStats(event: Of<'node.stats'>): void {
    const drops = Object.values(event.drops).reduce((a, b) => a + b, 0);
    for (const drawn of this.#nodes.get(event.node) ?? []) {
      if (!drawn.live) continue;
      drawn.group.classList.toggle('dropping', drops > drawn.drops);
      drawn.drops = drops;
      const inRate = formatRate(event.records_in_per_s);
      const outRate = formatRate(event.records_out_per_s);
      drawn.rate.textContent = `in ${inRate} · out ${outRate}${event.errors > 0 ? ` · ${event.errors} err` : ''}`;
    }
  }

  nodeState(event: Of<'node.state'>): void {
    for (const drawn of this.#nodes.get(event.node) ?? []) {
      if (!drawn.live) continue;
      drawn.group.classList.toggle('failing', event.state === 'failed');
      drawn.group.classList.toggle('restarting', event.state === 'restarting');
    }
  }

  edgeStats(event: Of<'edge.stats'>): void {
    for (const drawn of this.#edges.get(event.edge) ?? []) {
      if (!drawn.live || !drawn.rate || !drawn.fill) continue;
      drawn.rate.textContent = formatRate(event.records_per_s);
      drawn.group.classList.toggle('fused', event.fused === true);
      if (event.fused) {
        // No channel: no queue to fill and no records to size; the rate is what crossed inside the fused node.
        if (drawn.bytes) drawn.bytes.textContent = 'fused';
        drawn.group.classList.toggle('flowing', event.records_per_s > 0);
        drawn.group.querySelector('title')!.textContent = `${event.edge}: ${formatRate(event.records_per_s)}; fused: ${event.to} runs inside ${event.from}, with no channel between them (no queue, no bytes to measure)`;
        continue;
      }
      // Pages of the first release had no bytes on edges; a feed that sends none shows none.
      const bytesShown = event.bytes_in_per_s === undefined ? '' : formatByteRate(event.bytes_in_per_s, event.bytes_estimated);
      if (drawn.bytes) drawn.bytes.textContent = bytesShown;
      const fill = event.capacity > 0 ? Math.min(event.depth / event.capacity, 1) : 0;
      drawn.fill.setAttribute('width', String(Math.max(fill * 40, event.depth > 0 ? 1 : 0)));
      drawn.fill.setAttribute('class', `fill${fill >= 0.95 ? ' full' : fill >= 0.5 ? ' high' : ''}`);
      drawn.group.classList.toggle('flowing', event.records_per_s > 0);
      drawn.group.classList.toggle('dropping', event.drops > drawn.drops);
      drawn.drops = event.drops;
      const bytesTitle = bytesShown ? ` in, ${bytesShown}${event.bytes_estimated ? ' (estimated from sampled records)' : ''}; out ${formatRate(event.records_out_per_s)}` : '';
      drawn.group.querySelector('title')!.textContent = `${event.edge}: ${formatRate(event.records_per_s)}${bytesTitle}, queue ${event.depth}/${event.capacity}, ${event.drops} dropped`;
    }
  }

  /** Outlines the nodes a reload added or replaced, for a while. */
  highlight(diff: { added: string[]; replaced: string[] }, forMs = 15_000): void {
    for (const id of diff.added) for (const drawn of this.#nodes.get(id) ?? []) drawn.group.classList.add('added');
    for (const id of diff.replaced) for (const drawn of this.#nodes.get(id) ?? []) drawn.group.classList.add('replaced');
    setTimeout(() => {
      for (const copies of this.#nodes.values()) for (const drawn of copies) drawn.group.classList.remove('added', 'replaced');
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

/** Room for an edge's label: its type, and under it the transport, the rate and fill bar, and the bytes a second. */
function labelWidth(edge: PlanEdge): number {
  return Math.max(92, shortType(edge).length * 5.6, (edge.transport?.label.length ?? 0) * 5.6);
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
