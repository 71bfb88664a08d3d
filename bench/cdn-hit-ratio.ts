/**
 * C2: the edge store's hit ratio on a seeded Zipf trace (α = 0.9, 100,000
 * objects of equal size, a cache holding 5 % of them, 1,000,000 requests),
 * against plain LRU (lru-cache) on the same trace in the same run.
 * For scale (issue 10): LRU 51.5 %, a static top-K 63.1 %, Belady 69.3 %.
 *
 *   node bench/cdn-hit-ratio.ts [--requests N] [--objects N] [--alpha A] [--seed S]
 */
import { parseArgs } from 'node:util';
import { LRUCache } from 'lru-cache';
import { EdgeStore, type StoredValue } from '../nodes/cdn/edge/store.ts';
import { seededRandom } from '../runtime/seeded-random.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '1000000' },
    objects: { type: 'string', default: '100000' },
    alpha: { type: 'string', default: '0.9' },
    seed: { type: 'string', default: '42' },
    share: { type: 'string', default: '0.05' },
  },
});
const requests = Number(values.requests);
const objects = Number(values.objects);
const alpha = Number(values.alpha);
const capacity = Math.round(objects * Number(values.share));
const objectSize = 1000;


/** The Zipf trace: ranks drawn by inverse CDF, each rank a key such as `/seg/123.m4s`. */
function zipfTrace(): string[] {
  const cdf = new Float64Array(objects);
  let total = 0;
  for (let rank = 0; rank < objects; rank++) cdf[rank] = total += 1 / Math.pow(rank + 1, alpha);
  const random = seededRandom(Number(values.seed));
  const trace = new Array<string>(requests);
  for (let i = 0; i < requests; i++) {
    const target = random() * total;
    let lo = 0;
    let hi = objects - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < target) lo = mid + 1;
      else hi = mid;
    }
    trace[i] = `/seg/${lo}.m4s`;
  }
  return trace;
}

const trace = zipfTrace();

function lruRatio(): number {
  const lru = new LRUCache<string, number>({ max: capacity });
  let hits = 0;
  for (const key of trace) {
    if (lru.get(key) !== undefined) hits++;
    else lru.set(key, 1);
  }
  return hits / trace.length;
}

function edgeRatio(): { ratio: number; evictions: number; rejected: number } {
  const store = new EdgeStore<StoredValue>({ maxBytes: capacity * objectSize, expectedObjects: capacity });
  let hits = 0;
  for (const key of trace) {
    store.touch(key);
    if (store.get(key) !== undefined) hits++;
    else store.set(key, { url: key, tags: [], size: objectSize, stale: false });
  }
  return { ratio: hits / trace.length, ...store.counters };
}

const started = performance.now();
const lru = lruRatio();
const edge = edgeRatio();
const percent = (x: number) => `${(x * 100).toFixed(1)} %`;
console.log(`C2 hit ratio: Zipf α=${alpha}, ${objects} objects, cache ${capacity} (${percent(capacity / objects)}), ${requests} requests, seed ${values.seed}`);
console.log(`  plain LRU (lru-cache):   ${percent(lru)}`);
console.log(`  edge store (W-TinyLFU):  ${percent(edge.ratio)}   (evictions ${edge.evictions}, refused by admission ${edge.rejected})`);
console.log(`  ratio edge/LRU: ${(edge.ratio / lru).toFixed(3)}   aim ≥ 62 %: ${edge.ratio >= 0.62 ? 'met' : 'NOT met'}   (${((performance.now() - started) / 1000).toFixed(1)} s)`);
