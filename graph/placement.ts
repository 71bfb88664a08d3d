/**
 * Hosts and placement checks: every `place` selects at least one host, and
 * some selected host offers what the operator requires.
 */
import { didYouMean } from './diagnostics.ts';
import { requirements, requirementsOf, type Requirement } from './operator-spec.ts';
import type { GraphNode, Host, Placement } from './model.ts';
import type { Reporter } from './check.ts';

const hostKeys = ['role', 'region', 'labels', 'offers', 'url', 'description'];

/** With no `hosts:` a graph runs on one local host that offers everything. */
export const localHost: Host = { name: 'local', role: 'origin', labels: {}, offers: requirements };

export function parseHosts(raw: unknown, report: Reporter): Host[] {
  if (raw === undefined) return [localHost];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    report.value(['hosts'], 'bad_field', '`hosts` must be a map of host names to their role, region, labels and offers');
    return [localHost];
  }
  const hosts: Host[] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const path = ['hosts', name];
    const spec = (value ?? {}) as Record<string, unknown>;
    if (typeof spec !== 'object' || Array.isArray(spec)) {
      report.value(path, 'bad_field', `host \`${name}\` must be a map`);
      continue;
    }
    for (const key of Object.keys(spec)) {
      if (!hostKeys.includes(key)) report.key([...path, key], 'unknown_field', `unknown field \`${key}\` in host \`${name}\``, didYouMean(key, hostKeys));
    }
    const offers: Requirement[] = [];
    if (spec.offers !== undefined) {
      if (!Array.isArray(spec.offers)) report.value([...path, 'offers'], 'bad_field', `\`offers\` of host \`${name}\` must be a list such as \`[ffmpeg, gpu]\``);
      else {
        spec.offers.forEach((item, i) => {
          if (requirements.includes(item as Requirement)) offers.push(item as Requirement);
          else report.value([...path, 'offers', i], 'bad_field', `unknown capability \`${String(item)}\``, didYouMean(String(item), requirements) ?? `capabilities: ${requirements.join(', ')}`);
        });
      }
    }
    const labels = spec.labels && typeof spec.labels === 'object' ? Object.fromEntries(Object.entries(spec.labels).map(([k, v]) => [k, String(v)])) : {};
    hosts.push({
      name,
      role: typeof spec.role === 'string' ? spec.role : undefined,
      region: typeof spec.region === 'string' ? spec.region : undefined,
      labels,
      offers,
    });
  }
  return hosts;
}

/** Whether a host satisfies a selector. */
export function selects(place: Placement | undefined, host: Host): boolean {
  if (!place) return true;
  if (place.host !== undefined && place.host !== host.name) return false;
  if (place.role !== undefined && place.role !== host.role) return false;
  if (place.region !== undefined && place.region !== host.region) return false;
  return Object.entries(place.labels ?? {}).every(([k, v]) => host.labels[k] === v);
}

/** Checks every node's `place`; the requirements of nodes whose settings failed (`unsettled`) are not known, so not checked. */
export function checkPlacement({ nodes, hosts, unsettled, report }: { nodes: Map<string, GraphNode>; hosts: Host[]; unsettled?: ReadonlySet<string>; report: Reporter }): void {
  for (const [name, node] of nodes) {
    const path = ['nodes', name, 'place'];
    if (node.place?.host !== undefined && !hosts.some((h) => h.name === node.place!.host)) {
      report.value([...path, 'host'], 'unknown_host', `node \`${name}\` is placed on unknown host \`${node.place.host}\``, didYouMean(node.place.host, hosts.map((h) => h.name)));
      continue;
    }
    const selected = hosts.filter((h) => selects(node.place, h));
    if (selected.length === 0) {
      report.key(path, 'unplaceable', `no host satisfies the \`place\` of node \`${name}\` (${describePlace(node.place!)})`, `hosts: ${hosts.map((h) => describeHost(h)).join('; ')}`);
      continue;
    }
    if (unsettled?.has(name)) continue;
    const needs = requirementsOf(node.spec, node.settings);
    if (needs.length === 0) continue;
    if (!selected.some((h) => needs.every((need) => h.offers.includes(need)))) {
      const where = node.place ? 'selected' : 'declared';
      report.key(node.place ? path : ['nodes', name, 'op'], 'unmet_requirement',
        `node \`${name}\` (\`${node.op}\`) needs ${needs.map((n) => `\`${n}\``).join(', ')} but no ${where} host offers ${needs.length > 1 ? 'them all' : 'it'}`,
        `${where} hosts: ${selected.map((h) => describeHost(h)).join('; ')}`);
    }
  }
}

function describePlace(place: Placement): string {
  const parts = Object.entries(place).map(([k, v]) => (typeof v === 'object' ? `labels \`${labelText(v)}\`` : `${k} \`${v}\``));
  return parts.join(', ');
}

function describeHost(host: Host): string {
  const labels = Object.keys(host.labels).length > 0 && `labels ${labelText(host.labels)}`;
  const facts = [host.role && `role ${host.role}`, host.region && `region ${host.region}`, labels, `offers [${host.offers.join(', ')}]`].filter(Boolean);
  return `\`${host.name}\` (${facts.join(', ')})`;
}

/** Labels as `key=value` pairs, as a selector reads them. */
function labelText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ');
}
