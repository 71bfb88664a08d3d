/**
 * Hosts and placement checks: every `place` selects at least one host, and
 * some selected host offers what the operator requires.
 */
import { suggest } from './diagnostics.ts';
import { requirements, requirementsOf, type Requirement } from './operator-spec.ts';
import type { GraphNode, Host, Located, Placement } from './model.ts';
import type { Path } from './source.ts';
import { checkFields, labelStrings } from './check-fields.ts';
import { fieldMeta, hostSchema, hostsSchema } from './node-fields.ts';
import { isRecord, kindOf, type Reporter } from './reporter.ts';

/** With no `hosts:` a graph runs on one local host that offers everything. */
export const localHost: Host = { name: 'local', role: 'origin', labels: {}, offers: requirements };

/** Reads `hosts:`, checked against `hostSchema`; absent, the one local host. */
export function parseHosts(raw: unknown, report: Reporter): Host[] {
  if (raw === undefined) return [localHost];
  if (!isRecord(raw)) {
    report.value(['hosts'], 'bad_field', `\`hosts\` must be ${fieldMeta(hostsSchema).expects}, found ${kindOf(raw)}`);
    return [localHost];
  }
  const hosts: Host[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const path = ['hosts', name];
    if (value !== null && !isRecord(value)) {
      report.value(path, 'bad_field', `host \`${name}\` must be a map, found ${kindOf(value)}`);
      continue;
    }
    const spec = checkFields(hostSchema, value ?? {}, path, {
      field: (key) => `\`${key}\` of host \`${name}\``,
      unknown: (key) => `unknown field \`${key}\` in host \`${name}\``,
    }, report);
    const host: Host = {
      name,
      role: spec.role as string | undefined,
      region: spec.region as string | undefined,
      labels: labelStrings(spec.labels),
      // A list with an unknown capability was reported; the host offers the ones it names rightly.
      offers: Array.isArray(value?.offers) ? value.offers.filter((item): item is Requirement => requirements.includes(item as Requirement)) : [],
      at: located(report, path, 'key'),
    };
    if (spec.listen !== undefined) host.listen = spec.listen as string[];
    if (spec.url !== undefined) host.url = spec.url as string;
    if (value?.offers !== undefined) host.offersAt = located(report, [...path, 'offers'], 'value');
    hosts.push(host);
  }
  return hosts;
}

/** Where a path of the reporter's file stands, with the file's name. */
export function located(report: Reporter, path: Path, part: 'key' | 'value'): Located {
  return { file: report.source.file, ...report.source.locate(path, part) };
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
  for (const node of nodes.values()) {
    const name = node.name;
    // Paths are built only for a diagnostic: most nodes have none.
    if (node.place?.host !== undefined && !hosts.some((h) => h.name === node.place!.host)) {
      report.value(['nodes', name, 'place', 'host'], 'unknown_host', `node \`${name}\` is placed on unknown host \`${node.place.host}\``, suggest(node.place.host, hosts.map((h) => h.name)));
      continue;
    }
    // A node without `place` may run on any host (most nodes: no list copied for each).
    const selected = node.place === undefined ? hosts : hosts.filter((h) => selects(node.place, h));
    if (selected.length === 0) {
      report.key(['nodes', name, 'place'], 'unplaceable', `no host satisfies the \`place\` of node \`${name}\` (${describePlace(node.place!)})`, `hosts: ${hosts.map((h) => describeHost(h)).join('; ')}`);
      continue;
    }
    if (unsettled !== undefined && unsettled.size > 0 && unsettled.has(name)) continue;
    const needs = requirementsOf(node.spec, node.settings);
    if (needs.length === 0) continue;
    if (!selected.some((h) => needs.every((need) => h.offers.includes(need)))) {
      const where = node.place ? 'selected' : 'declared';
      report.key(['nodes', name, node.place ? 'place' : 'op'], 'unmet_requirement',
        `node \`${name}\` (\`${node.op}\`) needs ${needs.map((n) => `\`${n}\``).join(', ')} but no ${where} host offers ${needs.length > 1 ? 'them all' : 'it'}`,
        `${where} hosts: ${selected.map((h) => describeHost(h)).join('; ')}`);
    }
  }
}

function describePlace(place: Placement): string {
  const parts = Object.entries(place).map(([k, v]) => (typeof v === 'object' ? `labels \`${labelText(v)}\`` : `${k} \`${v}\``));
  return parts.join(', ');
}

/** A host as messages show it: its name, role, region, labels and offers. */
export function describeHost(host: Host): string {
  const labels = Object.keys(host.labels).length > 0 && `labels ${labelText(host.labels)}`;
  const facts = [host.role && `role ${host.role}`, host.region && `region ${host.region}`, labels, `offers [${host.offers.join(', ')}]`].filter(Boolean);
  return `\`${host.name}\` (${facts.join(', ')})`;
}

/** Labels as `key=value` pairs, as a selector reads them. */
function labelText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ');
}
