/**
 * The Prometheus metrics of one edge (`streams_cdn_*`, labelled with the
 * edge's name), read from its counters at each scrape: requests by cache
 * outcome, the hit ratio, answers by status class, bytes, origin requests
 * and errors, refusals by reason, evictions and admission refusals, what the
 * store holds, and the time to first byte.
 */
import type { NodeMetricFamily } from '../../../runtime/api.ts';
import type { Edge } from './edge.ts';
import type { EdgeStore } from './store.ts';
import type { CachedObject } from './cached-object.ts';

export function edgeMetrics(name: string, edge: Edge, store: EdgeStore<CachedObject>, policyRefusals: () => Record<string, number>): NodeMetricFamily[] {
  const c = edge.counters;
  const labels = { edge: name };
  const served = c.hits + c.stale + c.coalesced;
  const requests = served + c.misses;
  const refusals = policyRefusals();
  const byPolicy = Object.values(refusals).reduce((sum, count) => sum + count, 0);
  const counter = (metric: string, help: string, value: number): NodeMetricFamily => ({ name: metric, help, type: 'counter', samples: [{ labels, value }] });
  const gauge = (metric: string, help: string, value: number): NodeMetricFamily => ({ name: metric, help, type: 'gauge', samples: [{ labels, value }] });
  return [
    {
      name: 'cdn_requests_total',
      help: 'Requests answered from the cache or the origin, by outcome (hit, stale, coalesced, miss).',
      type: 'counter',
      samples: (
        [
          ['hit', c.hits],
          ['stale', c.stale],
          ['coalesced', c.coalesced],
          ['miss', c.misses],
        ] as const
      ).map(([cache, value]) => ({ labels: { ...labels, cache }, value })),
    },
    gauge('cdn_hit_ratio', 'Requests served without their own origin request (hit, stale, coalesced) over all, since the edge started.', requests === 0 ? 0 : served / requests),
    {
      name: 'cdn_responses_total',
      help: 'Answers by status class.',
      type: 'counter',
      samples: [2, 3, 4, 5].map((statusClass) => ({ labels: { ...labels, status: `${statusClass}xx` }, value: edge.statusClasses[statusClass] })),
    },
    counter('cdn_bytes_sent_total', 'Body bytes sent to clients.', c.bytes),
    counter('cdn_origin_requests_total', 'Requests made to the origin (misses, revalidations, prefetches).', c.origin_requests),
    counter('cdn_origin_errors_total', 'Answers 502/504 for want of the origin.', c.origin_errors),
    {
      name: 'cdn_refused_total',
      help: 'Requests refused, by reason: the access rules\' reasons, and bad_request for targets and methods the edge refuses itself (400, 405).',
      type: 'counter',
      samples: [...Object.entries(refusals), ['bad_request', Math.max(0, c.refused - byPolicy)] as const].map(([reason, value]) => ({ labels: { ...labels, reason }, value })),
    },
    counter('cdn_prefetches_total', 'Segments fetched before anyone asked.', c.prefetches),
    counter('cdn_evictions_total', 'Objects evicted to make room.', store.counters.evictions),
    counter('cdn_admission_rejected_total', 'New objects the admission policy kept out (asked for less often than what they would displace).', store.counters.rejected),
    gauge('cdn_objects', 'Objects held.', store.count),
    gauge('cdn_stored_bytes', 'Bytes held.', store.bytes),
    edge.ttfb.family('cdn_ttfb_seconds', 'Time from a request\'s arrival to its answer\'s headers.'),
  ];
}
