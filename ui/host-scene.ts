/**
 * What the page draws of a plan with hosts, before any layout: a box per
 * node (or per node and host it runs on), a line per edge (or per pair of
 * hosts it joins), and the hosts' boxes, headers and colours.
 */
import { hostColour } from '../graph/layout.ts';
import type { LiveEvent, PlanEdge, PlanHost, PlanNode } from '../runtime/server/protocol.ts';

type PlanEvent = Extract<LiveEvent, { type: 'graph.plan' }>;

/** A node's box: one per node, or in `hosts` mode one per host it runs on. */
export interface Box {
  id: string;
  node: PlanNode;
  host: string | undefined;
}

/** An edge's line between two boxes. */
export interface Line {
  id: string;
  edge: PlanEdge;
  from: Box;
  to: Box;
}

/** What a layout is drawn from. */
export interface Scene {
  plan: PlanEvent;
  boxes: Box[];
  lines: Line[];
  /** The host boxes, when grouped. */
  hosts: PlanHost[];
}

/**
 * The boxes and lines of a plan. Grouped by host, a node has a box on each
 * host it runs on; an edge inside hosts joins each host's box to the same
 * host's, an edge with a transport joins every upstream box to every
 * downstream one (as `streams plan --format svg` draws it).
 */
export function sceneOf(plan: PlanEvent, grouped: boolean): Scene {
  if (!grouped || !plan.hosts) {
    const boxes = new Map(plan.nodes.map((node) => [node.id, { id: node.id, node, host: undefined }]));
    const lines = plan.edges.map((edge) => ({ id: edge.id, edge, from: boxes.get(edge.from)!, to: boxes.get(edge.to)! }));
    return { plan, boxes: [...boxes.values()], lines, hosts: [] };
  }
  const boxes = new Map<string, Box>();
  for (const node of plan.nodes) for (const host of node.hosts) boxes.set(`${node.id}@${host}`, { id: `${node.id}@${host}`, node, host });
  const byId = new Map(plan.nodes.map((n) => [n.id, n]));
  const lines: Line[] = [];
  for (const edge of plan.edges) {
    const up = byId.get(edge.from)!.hosts;
    const down = byId.get(edge.to)!.hosts;
    const same = up.filter((h) => down.includes(h));
    // Without a transport the edge stays in one host; a graph the planner refused may still have none in common: then every pair is drawn.
    const pairs = edge.transport || same.length === 0 ? up.flatMap((u) => down.map((d) => [u, d])) : same.map((h) => [h, h]);
    for (const [u, d] of pairs) lines.push({ id: `${edge.id}@${u}>${d}`, edge, from: boxes.get(`${edge.from}@${u}`)!, to: boxes.get(`${edge.to}@${d}`)! });
  }
  const used = new Set([...boxes.values()].map((b) => b.host));
  return { plan, boxes: [...boxes.values()], lines, hosts: plan.hosts.filter((h) => used.has(h.name)) };
}

/** A host box's header: its name, role and region. */
export function hostHeader(host: PlanHost): string {
  return [host.name, host.role, host.region].filter((part) => part !== undefined && part !== '').join(' · ');
}


/**
 * A host's colour: a graph's hosts are few and their names short and alike
 * (`a`, `b`, `c`), so they are spread round the colour wheel by their order
 * (the golden angle keeps neighbours apart); without hosts, by name as the
 * CLI's drawings do.
 */
export function colourOfHost(plan: PlanEvent, host: string): string {
  const index = plan.hosts?.findIndex((h) => h.name === host) ?? -1;
  if (index < 0) return hostColour(host);
  return `hsl(${Math.round((210 + index * 137.508) % 360)} 62% 45%)`;
}
