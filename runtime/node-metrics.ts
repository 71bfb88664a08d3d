/**
 * The metrics nodes expose of their own (`NodeMetrics.expose`: an edge
 * cache's hits and time to first byte), written in the Prometheus text
 * format after the runtime's fixed metrics. Families of one name from
 * several nodes are written together, each sample labelled with its
 * pipeline and node; a family whose name or shape is wrong is left out
 * (named once in a comment line) rather than breaking the whole scrape.
 */
import type { NodeStats } from './stats.ts';
import type { NodeMetricFamily } from './types.ts';

const validName = /^[a-z_][a-z0-9_]*$/;
const validLabel = /^[a-z_][a-z0-9_]*$/;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Readonly<Record<string, string>>): string {
  return `{${Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabel(value)}"`)
    .join(',')}}`;
}

function number(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Why a family cannot be written, or undefined. */
function problemOf(family: NodeMetricFamily): string | undefined {
  if (!validName.test(family.name)) return `bad metric name \`${family.name}\``;
  if (family.type === 'histogram') {
    if (family.counts.length !== family.bounds.length + 1) return `histogram \`${family.name}\` needs one count more than bounds`;
    for (let i = 1; i < family.bounds.length; i++) if (!(family.bounds[i] > family.bounds[i - 1])) return `histogram \`${family.name}\` bounds must ascend`;
    return undefined;
  }
  for (const sample of family.samples) {
    for (const label of Object.keys(sample.labels ?? {})) {
      if (!validLabel.test(label) || label === 'pipeline' || label === 'node' || label === 'le') return `metric \`${family.name}\` has a bad label \`${label}\``;
    }
  }
  return undefined;
}

/** The text of every node's exposed metrics, for `/metrics` (empty when none exposes any). */
export function renderNodeMetrics(pipeline: string, nodes: Iterable<[string, NodeStats]>): string {
  const byName = new Map<string, { family: NodeMetricFamily; node: string }[]>();
  const problems: string[] = [];
  for (const [node, stats] of nodes) {
    if (!stats.exposed) continue;
    let families: readonly NodeMetricFamily[];
    try {
      families = stats.exposed();
    } catch (error) {
      problems.push(`node ${node}: ${String(error)}`);
      continue;
    }
    for (const family of families) {
      const problem = problemOf(family);
      if (problem) {
        problems.push(`node ${node}: ${problem}`);
        continue;
      }
      const list = byName.get(family.name) ?? [];
      if (list.length > 0 && list[0].family.type !== family.type) {
        problems.push(`node ${node}: \`${family.name}\` is a ${family.type} here and a ${list[0].family.type} elsewhere`);
        continue;
      }
      list.push({ family, node });
      byName.set(family.name, list);
    }
  }
  const lines: string[] = problems.map((problem) => `# skipped: ${problem.replace(/\n/g, ' ')}`);
  for (const [name, list] of byName) {
    const full = `streams_${name}`;
    lines.push(`# HELP ${full} ${escapeHelp(list[0].family.help)}`, `# TYPE ${full} ${list[0].family.type}`);
    for (const { family, node } of list) {
      const base = { pipeline, node };
      if (family.type === 'histogram') {
        let cumulative = 0;
        family.bounds.forEach((bound, i) => {
          cumulative += family.counts[i];
          lines.push(`${full}_bucket${labelText({ ...base, le: number(bound) })} ${cumulative}`);
        });
        cumulative += family.counts[family.bounds.length];
        lines.push(`${full}_bucket${labelText({ ...base, le: '+Inf' })} ${cumulative}`, `${full}_sum${labelText(base)} ${number(family.sum)}`, `${full}_count${labelText(base)} ${cumulative}`);
      } else {
        for (const sample of family.samples) lines.push(`${full}${labelText({ ...base, ...sample.labels })} ${number(sample.value)}`);
      }
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
