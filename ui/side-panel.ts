/**
 * The page's side panel: the selected node (settings, numbers, a chart of
 * its output rate, a live tap), the reload history, and the diagnostics of
 * a rejected reload.
 */
import type { LiveEvent, PlanNode, ReloadRecord } from '../runtime/server/protocol.ts';
import { formatByteRate, formatRate } from './graph-view.ts';

type Of<T extends LiveEvent['type']> = Extract<LiveEvent, { type: T }>;

/** Samples kept per node for the chart: five minutes at one a second. */
const historyLength = 300;

function html(tag: string, text?: string, className?: string): HTMLElement {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** Reads the API with the page's token. */
export type ApiGet = (path: string) => Promise<unknown>;

export class SidePanel {
  readonly #details: HTMLElement;
  readonly #reloads: HTMLOListElement;
  readonly #rejected: HTMLElement;
  readonly #get: ApiGet;
  readonly #history = new Map<string, number[]>();
  #plan: Map<string, PlanNode> = new Map();
  /** Why the selected node has no numbers or tap here: another host runs it, or nothing runs. */
  #elsewhere: (node: PlanNode) => string | undefined = () => undefined;
  #selected: string | undefined;
  #stats = new Map<string, Of<'node.stats'>>();
  #states = new Map<string, Of<'node.state'>>();
  #tapTimer: number | undefined;

  constructor(get: ApiGet) {
    this.#details = document.getElementById('details')!;
    this.#reloads = document.getElementById('reload-list') as HTMLOListElement;
    this.#rejected = document.getElementById('rejected')!;
    this.#get = get;
  }

  plan(event: Of<'graph.plan'>): void {
    this.#plan = new Map(event.nodes.map((n) => [n.id, n]));
    const { here } = event;
    this.#elsewhere = (node) => {
      if (event.plan_only) return 'planned: nothing runs, so there are no numbers and no tap';
      if (here !== undefined && !node.hosts.includes(here)) return `runs on ${node.hosts.join(', ')}, not on this host (${here}): its numbers and tap are on that host's worker page`;
      return undefined;
    };
    if (this.#selected && !this.#plan.has(this.#selected)) this.#selected = undefined;
    this.#render();
  }

  nodeStats(event: Of<'node.stats'>): void {
    this.#stats.set(event.node, event);
    const history = this.#history.get(event.node) ?? [];
    history.push(event.records_out_per_s || event.records_in_per_s);
    if (history.length > historyLength) history.shift();
    this.#history.set(event.node, history);
    if (event.node === this.#selected) this.#renderNumbers();
  }

  nodeState(event: Of<'node.state'>): void {
    this.#states.set(event.node, event);
    if (event.node === this.#selected) this.#renderNumbers();
  }

  select(id: string): void {
    this.#selected = id;
    this.#render();
  }

  #render(): void {
    window.clearInterval(this.#tapTimer);
    const node = this.#selected ? this.#plan.get(this.#selected) : undefined;
    if (!node) return;
    const box = this.#details;
    box.replaceChildren();
    box.append(html('h2', `${node.id} — ${node.op}`));
    box.append(html('div', `${node.source.file}:${node.source.line}:${node.source.col} · ${node.hosts.length > 1 ? `hosts ${node.hosts.join(', ')}` : `host ${node.host}`}${node.role ? ` (${node.role})` : ''}`, 'hint'));
    const elsewhere = this.#elsewhere(node);
    if (elsewhere) {
      box.append(html('p', elsewhere, 'hint elsewhere'));
      box.append(html('h2', 'Settings (secrets redacted)'));
      box.append(html('pre', JSON.stringify(node.settings, null, 2)));
      return;
    }
    box.append(html('div', '', 'numbers-box'));
    box.append(html('h2', 'Records out per second (last 5 min)'));
    const chart = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    chart.setAttribute('class', 'chart');
    chart.setAttribute('viewBox', `0 0 ${historyLength} 60`);
    chart.setAttribute('preserveAspectRatio', 'none');
    chart.append(document.createElementNS('http://www.w3.org/2000/svg', 'polyline'));
    box.append(chart);
    box.append(html('h2', 'Settings (secrets redacted)'));
    box.append(html('pre', JSON.stringify(node.settings, null, 2)));
    box.append(html('h2', 'Live tap'));
    const tap = html('pre', 'waiting for records…', 'tap');
    box.append(tap);
    this.#renderNumbers();
    const refreshTap = (): void => {
      this.#get(`/api/tap/${encodeURIComponent(node.id)}?n=10`).then(
        (answer) => {
          const records = (answer as { records: { time: number; record: unknown }[] }).records;
          tap.textContent = records.length === 0 ? 'no records passed yet' : records.map((r) => JSON.stringify(r.record)).join('\n');
        },
        (error: Error) => (tap.textContent = `tap failed: ${error.message}`),
      );
    };
    refreshTap();
    this.#tapTimer = window.setInterval(refreshTap, 2000);
  }

  #renderNumbers(): void {
    const id = this.#selected;
    const target = this.#details.querySelector('.numbers-box');
    if (!id || !target) return;
    const stats = this.#stats.get(id);
    const state = this.#states.get(id);
    const rows: [string, string][] = [['state', state ? `${state.state}${state.error ? `: ${state.error}` : ''}` : '…']];
    if (stats) {
      rows.push(
        ['records in', `${formatRate(stats.records_in_per_s)} (${stats.records_in} total)`],
        ['records out', `${formatRate(stats.records_out_per_s)} (${stats.records_out} total)`],
        ['bytes in / out', `${sideBytes(stats.bytes_in_per_s, stats.bytes_estimated, stats.bytes_in_fused)} / ${sideBytes(stats.bytes_out_per_s, stats.bytes_estimated, stats.bytes_out_fused)}${stats.bytes_estimated ? ' (~ estimated from sampled records)' : ''}${stats.bytes_in_fused || stats.bytes_out_fused ? ' (fused: no records between the window and its aggregate to size)' : ''}`],
        ['errors', String(stats.errors)],
        ['dead letters', String(stats.dead_letters)],
        ['drops', Object.entries(stats.drops).map(([reason, n]) => `${reason}: ${n}`).join(', ') || '0'],
        ['restarts', String(stats.restarts)],
      );
      if (stats.p50_ms !== undefined) rows.push(['batch time p50 / p99', `${stats.p50_ms.toFixed(3)} / ${stats.p99_ms!.toFixed(3)} ms`]);
    }
    const table = html('table', undefined, 'numbers');
    for (const [name, value] of rows) {
      const tr = html('tr');
      tr.append(html('td', name), html('td', value));
      table.append(tr);
    }
    target.replaceChildren(table);
    const history = this.#history.get(id) ?? [];
    const max = Math.max(1, ...history);
    const line = this.#details.querySelector('svg.chart polyline');
    line?.setAttribute('points', history.map((v, i) => `${i + historyLength - history.length},${(58 - (v / max) * 56).toFixed(1)}`).join(' '));
  }

  /** Adds a reload to the history; a rejected one also shows its diagnostics until the next applied reload. */
  reload(record: ReloadRecord): void {
    const placeholder = this.#reloads.querySelector('.hint');
    placeholder?.remove();
    const item = html('li');
    const when = new Date(record.time).toLocaleTimeString();
    item.append(html('span', record.status.replace('_', ' '), record.status), html('span', ` at ${when} via ${record.via}, ${record.took_ms} ms`));
    if (record.status === 'applied') {
      const { kept, replaced, added, removed } = record.diff;
      item.append(html('div', `kept ${kept.length}; replaced ${replaced.join(', ') || '—'}; added ${added.join(', ') || '—'}; removed ${removed.join(', ') || '—'}`, 'hint'));
      this.#rejected.hidden = true;
    } else {
      const lines = record.diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}${d.hint ? ` (${d.hint})` : ''}`);
      if (record.cause) lines.push(record.cause);
      this.#rejected.replaceChildren(html('strong', 'Reload rejected: the running graph is unchanged'), html('div', lines.join('\n'), 'diag'));
      this.#rejected.hidden = false;
    }
    this.#reloads.prepend(item);
  }
}

/** A node's bytes a second on one side: `fused` where an edge fused away is all there is to it, `+ fused` beside its other edges' bytes. */
function sideBytes(perSecond: number, estimated: boolean, fused: true | undefined): string {
  if (!fused) return formatByteRate(perSecond, estimated);
  return perSecond < 0.5 ? 'fused' : `${formatByteRate(perSecond, estimated)} + fused`;
}
