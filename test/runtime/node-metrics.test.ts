/**
 * Metrics nodes expose of their own, in the Prometheus text format after
 * the runtime's: labelled with pipeline and node, histograms cumulative,
 * label values escaped, and a malformed family skipped with a comment
 * instead of breaking the scrape.
 */
import { describe, expect, it } from 'vitest';
import { BucketHistogram } from '../../runtime/histogram.ts';
import { metricsScrape } from '../../runtime/metrics.ts';
import { renderNodeMetrics } from '../../runtime/node-metrics.ts';
import { NodeStats } from '../../runtime/stats.ts';

function statsExposing(families: ReturnType<NonNullable<NodeStats['exposed']>>): NodeStats {
  const stats = new NodeStats();
  stats.exposed = () => families;
  return stats;
}

describe('renderNodeMetrics', () => {
  it('writes counters and gauges with the pipeline and node labels, one family across nodes', () => {
    const family = (value: number) => [{ name: 'cdn_requests_total', help: 'Requests.', type: 'counter' as const, samples: [{ labels: { cache: 'hit' }, value }] }];
    const text = renderNodeMetrics('p', [
      ['a', statsExposing(family(3))],
      ['b', statsExposing(family(5))],
      ['c', new NodeStats()],
    ]);
    expect(text).toBe(
      '# HELP streams_cdn_requests_total Requests.\n# TYPE streams_cdn_requests_total counter\n' +
        'streams_cdn_requests_total{pipeline="p",node="a",cache="hit"} 3\nstreams_cdn_requests_total{pipeline="p",node="b",cache="hit"} 5\n',
    );
  });

  it('writes a histogram with cumulative buckets, +Inf, sum and count', () => {
    const histogram = new BucketHistogram([0.01, 0.1]);
    for (const value of [0.005, 0.05, 0.05, 3]) histogram.observe(value);
    const text = renderNodeMetrics('p', [['n', statsExposing([histogram.family('cdn_ttfb_seconds', 'TTFB.')])]]);
    expect(text).toContain('streams_cdn_ttfb_seconds_bucket{pipeline="p",node="n",le="0.01"} 1\n');
    expect(text).toContain('streams_cdn_ttfb_seconds_bucket{pipeline="p",node="n",le="0.1"} 3\n');
    expect(text).toContain('streams_cdn_ttfb_seconds_bucket{pipeline="p",node="n",le="+Inf"} 4\n');
    expect(text).toContain('streams_cdn_ttfb_seconds_sum{pipeline="p",node="n"} 3.105\n');
    expect(text).toContain('streams_cdn_ttfb_seconds_count{pipeline="p",node="n"} 4\n');
  });

  it('escapes label values and skips malformed families with a comment', () => {
    const text = renderNodeMetrics('p', [
      ['n', statsExposing([
        { name: 'ok_total', help: 'line\nbreak', type: 'counter', samples: [{ labels: { path: 'a"b\\c\nd' }, value: 1 }] },
        { name: 'Bad-Name', help: 'x', type: 'gauge', samples: [{ value: 1 }] },
        { name: 'clash', help: 'x', type: 'gauge', samples: [{ labels: { node: 'other' }, value: 1 }] },
      ])],
      ['broken', Object.assign(new NodeStats(), { exposed: () => { throw new Error('boom'); } })],
    ]);
    expect(text).toContain('# HELP streams_ok_total line\\nbreak\n');
    expect(text).toContain('streams_ok_total{pipeline="p",node="n",path="a\\"b\\\\c\\nd"} 1\n');
    expect(text).toContain('# skipped: node n: bad metric name `Bad-Name`');
    expect(text).toContain('# skipped: node n: metric `clash` has a bad label `node`');
    expect(text).toContain('# skipped: node broken: Error: boom');
    expect(text).not.toMatch(/^streams_clash/m);
  });

  it('follows the runtime\'s own metrics in a scrape', async () => {
    const stats = statsExposing([{ name: 'thing', help: 'A thing.', type: 'gauge', samples: [{ value: 7 }] }]);
    const text = await metricsScrape({ pipeline: 'p', nodes: () => [['n', stats]], edges: () => [] }).metrics();
    expect(text).toContain('streams_node_records_in_total{pipeline="p",node="n"} 0');
    expect(text).toMatch(/\nstreams_thing\{pipeline="p",node="n"\} 7\n$/);
  });
});
