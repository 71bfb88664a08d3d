/**
 * A plan as people and tools read it: a table (which host runs what, then
 * the edges between hosts with their transport), JSON, or Graphviz DOT with
 * one cluster per host.
 */
import { dotQuote } from './render.ts';
import type { Plan, PlannedEdge, PlannedNode, Transport } from './plan.ts';

/** An edge's upstream end as written in `in:`: `node`, or `node.port` for a port other than `out`. */
function upstreamName(edge: PlannedEdge): string {
  return edge.fromPort === 'out' ? edge.from : `${edge.from}.${edge.fromPort}`;
}

/** A transport in one line: `kafka streams.g.a.out.b.in (2 partitions, key stream)`. */
export function describeTransport(transport: Transport): string {
  switch (transport.kind) {
    case 'local':
      return 'in process';
    case 'kafka': {
      const facts = [`${transport.partitions} partition${transport.partitions === 1 ? '' : 's'}`, transport.key !== undefined && `key ${transport.key}`].filter(Boolean);
      return `kafka ${transport.topic} (${facts.join(', ')})`;
    }
    case 'object-store+http-pull':
      return `object store ${transport.store.replace(/\/$/, '')}/${transport.prefix}${transport.retain !== undefined ? ` (retained ${transport.retain})` : ''}, pulled from ${transport.pullFrom.join(', ')}`;
  }
}

/** A port type for a table cell: an event's field list left out (`Event`), as the table is about hosts. */
function shortType(type: string): string {
  return type.startsWith('Event<') ? 'Event' : type;
}

/** Rows as aligned columns, the first row a header. */
function columns(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}

/**
 * The plan as a table: each node with its operator and hosts, then the
 * edges that cross hosts with their transport.
 *
 * @example
 * process.stdout.write(renderPlanTable(plan));
 */
export function renderPlanTable(plan: Plan): string {
  const nodeRows = plan.nodes.map((node) => {
    const counts = new Map<string, number>();
    for (const host of node.instances) counts.set(host, (counts.get(host) ?? 0) + 1);
    const hosts = [...counts].map(([host, n]) => (n > 1 ? `${host} ×${n}` : host)).join(', ');
    const key = node.key !== undefined && node.instances.length > 1 ? ` (key ${node.key})` : '';
    return [node.name, node.op, hosts + key];
  });
  const lines = columns([['node', 'op', 'hosts'], ...nodeRows]);
  const crossing = plan.edges.filter((edge) => edge.transport.kind !== 'local');
  lines.push('');
  if (crossing.length === 0) lines.push('no edge crosses hosts');
  else lines.push(...columns([['edge', 'type', 'transport'], ...crossing.map((edge) => [`${upstreamName(edge)} → ${edge.to}`, shortType(edge.type), describeTransport(edge.transport)])]));
  return lines.join('\n') + '\n';
}

/** The plan's JSON form: `{version, graph, nodes, edges, hosts}`, as `docs/plan.md` describes it. */
export function renderPlanJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + '\n';
}

/** The id of a node's instances on one host in a drawing. */
export function placedId(node: string, host: string): string {
  return `${node}@${host}`;
}

/**
 * The pairs of (upstream host, downstream host) an edge connects: a local
 * edge joins each host to itself; a transport joins every upstream host to
 * every downstream host.
 */
export function edgeHostPairs(byName: ReadonlyMap<string, PlannedNode>, edge: PlannedEdge): [string, string][] {
  const up = byName.get(edge.from)!.hosts;
  const down = byName.get(edge.to)!.hosts;
  if (edge.transport.kind === 'local') return up.filter((h) => down.includes(h)).map((h) => [h, h]);
  return up.flatMap((u) => down.map((d): [string, string] => [u, d]));
}

/** The plan as Graphviz DOT: a cluster per host, a box per node per host, edges labelled with their transport. */
export function renderPlanDot(plan: Plan): string {
  const lines = [`digraph ${dotQuote(plan.graph)} {`, '  rankdir=LR;', '  compound=true;', '  node [shape=box, style=rounded, fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];'];
  for (const host of plan.hosts) {
    const here = plan.nodes.filter((node) => node.hosts.includes(host.name));
    if (here.length === 0) continue;
    lines.push(`  subgraph ${dotQuote(`cluster_${host.name}`)} {`, `    label=${dotQuote(host.role !== undefined ? `${host.name} (${host.role})` : host.name)};`);
    for (const node of here) lines.push(`    ${dotQuote(placedId(node.name, host.name))} [label=${dotQuote(`${node.name}\n${node.op}`)}];`);
    lines.push('  }');
  }
  // Planned node lookups by name, once: a 2,000-node plan draws in linear time.
  const byName = new Map(plan.nodes.map((n) => [n.name, n]));
  for (const edge of plan.edges) {
    const label = edge.transport.kind === 'local' ? edge.type : `${edge.transport.kind}: ${edge.type}`;
    const style = edge.transport.kind === 'local' ? '' : ', style=dashed';
    for (const [u, d] of edgeHostPairs(byName, edge)) lines.push(`  ${dotQuote(placedId(edge.from, u))} -> ${dotQuote(placedId(edge.to, d))} [label=${dotQuote(label)}${style}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
