/**
 * The shipped Grafana dashboard asks Prometheus for series by name: a metric
 * renamed in `runtime/metrics.ts` would leave its panel empty without a word.
 * This reads every query of `config/grafana/streams.json` and checks each
 * metric it names against what a scrape of the runtime's registry exposes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../runtime/metrics.ts';
import { EdgeStats, NodeStats } from '../../runtime/stats.ts';

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}

const dashboard = JSON.parse(readFileSync(new URL('../../config/grafana/streams.json', import.meta.url), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; query?: string | { query: string } }> };
};

/** The series names a scrape shows, histograms with their `_bucket`, `_sum` and `_count`. */
async function scrapedNames(): Promise<Set<string>> {
  const node = new NodeStats();
  node.drop(1, 'late');
  node.timing(0.001);
  const registry = createMetricsRegistry({
    pipeline: 'p',
    nodes: () => [['n', node]],
    edges: () => [[{ from: 'a', to: 'n' }, new EdgeStats(8)]],
  });
  const text = await registry.metrics();
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (match) names.add(match[1]);
  }
  return names;
}

/** Every identifier in a PromQL expression that looks like one of ours or a standard process metric. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:streams|process|nodejs)_[a-zA-Z0-9_]+)/g)].map((m) => m[1]);
}

describe('config/grafana/streams.json', () => {
  const queries = [
    ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => ({ where: `panel "${panel.title}" ${t.refId}`, expr: t.expr }))),
    ...dashboard.templating.list.flatMap((v) => {
      const query = typeof v.query === 'string' ? v.query : v.query?.query;
      return query && query.includes('(') ? [{ where: `variable ${v.name}`, expr: query }] : [];
    }),
  ];

  it('names only metrics that a scrape of the runtime exposes', async () => {
    const names = await scrapedNames();
    const unknown = queries.flatMap((q) => metricsIn(q.expr).filter((m) => !names.has(m)).map((m) => `${q.where}: ${m}`));
    expect(unknown).toEqual([]);
  });

  it('has a query on every panel, covering every streams_ metric the runtime exports', async () => {
    const names = await scrapedNames();
    const used = new Set(queries.flatMap((q) => metricsIn(q.expr)));
    const ours = [...names].filter((n) => n.startsWith('streams_') && !/_(sum|count)$/.test(n));
    // A histogram is queried through its `_bucket` series.
    expect(ours.filter((n) => !used.has(n) && !used.has(`${n}_bucket`))).toEqual([]);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
  });

  it('lays panels on the 24-column grid without overlaps', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const { title, gridPos } of dashboard.panels) {
      expect(gridPos.x + gridPos.w, title).toBeLessThanOrEqual(24);
      for (let x = gridPos.x; x < gridPos.x + gridPos.w; x++) {
        for (let y = gridPos.y; y < gridPos.y + gridPos.h; y++) {
          const cell = `${x},${y}`;
          expect(cells.has(cell), `${title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });
});
