/**
 * C2: the edge store's hit ratio on a seeded Zipf trace (α = 0.9, 100,000
 * objects of equal size, a cache holding 5 % of them, 1,000,000 requests),
 * against plain LRU (lru-cache) and perfect LFU on the same trace in the
 * same run. Perfect LFU counts every request to every object for the whole
 * trace (evicted ones included: unbounded memory, which is what W-TinyLFU's
 * few-bytes-an-object sketch approximates) and keeps the most requested
 * objects, admitting a new one only if it was asked for more often than
 * the least requested one held; on a trace whose popularity does not
 * change (Zipf, independent requests) it converges to the static top-K,
 * the best any policy without knowledge of the future does.
 * For scale (issue 10): LRU 51.5 %, a static top-K 63.1 %, Belady 69.3 %.
 *
 * `--scan F` mixes in a fraction F of requests for objects asked for once
 * (a crawler, cache-busting queries), which plain LRU lets flush its hot set.
 *
 *   node bench/cdn-hit-ratio.ts [--requests N] [--objects N] [--alpha A] [--seed S] [--share S] [--scan F]
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
    scan: { type: 'string', default: '0' },
  },
});
const requests = Number(values.requests);
const objects = Number(values.objects);
const alpha = Number(values.alpha);
const capacity = Math.round(objects * Number(values.share));
const objectSize = 1000;
const scan = Number(values.scan);


/** The Zipf trace: ranks drawn by inverse CDF, each rank a key such as `/seg/123.m4s`. */
function zipfTrace(): string[] {
  const cdf = new Float64Array(objects);
  let total = 0;
  for (let rank = 0; rank < objects; rank++) cdf[rank] = total += 1 / Math.pow(rank + 1, alpha);
  const random = seededRandom(Number(values.seed));
  const trace = new Array<string>(requests);
  for (let i = 0; i < requests; i++) {
    if (scan > 0 && random() < scan) {
      trace[i] = `/once/${i}.m4s`;
      continue;
    }
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

function edgeRatio(): { ratio: number; secondHalf: number; evictions: number; rejected: number } {
  const store = new EdgeStore<StoredValue>({ maxBytes: capacity * objectSize, expectedObjects: capacity });
  let hits = 0;
  let secondHalfHits = 0;
  for (let i = 0; i < trace.length; i++) {
    const key = trace[i];
    store.touch(key);
    if (store.get(key) !== undefined) {
      hits++;
      if (i >= trace.length / 2) secondHalfHits++;
    } else store.set(key, { url: key, tags: [], size: objectSize, stale: false });
  }
  return { ratio: hits / trace.length, secondHalf: secondHalfHits / (trace.length - Math.floor(trace.length / 2)), ...store.counters };
}

/**
 * Perfect LFU: exact counts for every key ever requested; the cache holds
 * `capacity` keys in buckets by count, so the least requested one held is
 * found in O(1) amortised (counts only grow, one at a time).
 */
function perfectLfuRatio(): { ratio: number; secondHalf: number } {
  const counts = new Map<string, number>();
  const buckets = new Map<number, Set<string>>();
  const held = new Set<string>();
  let least = 1;
  let hits = 0;
  let secondHalfHits = 0;
  const bucket = (count: number): Set<string> => {
    let keys = buckets.get(count);
    if (!keys) buckets.set(count, (keys = new Set()));
    return keys;
  };
  for (let i = 0; i < trace.length; i++) {
    const key = trace[i];
    const count = (counts.get(key) ?? 0) + 1;
    counts.set(key, count);
    if (held.has(key)) {
      hits++;
      if (i >= trace.length / 2) secondHalfHits++;
      const from = buckets.get(count - 1)!;
      from.delete(key);
      bucket(count).add(key);
      if (from.size === 0 && least === count - 1) least = count;
      continue;
    }
    if (held.size >= capacity) {
      while ((buckets.get(least)?.size ?? 0) === 0) least++;
      if (count <= least) continue;
      const victims = buckets.get(least)!;
      const victim = victims.values().next().value!;
      victims.delete(victim);
      held.delete(victim);
    }
    held.add(key);
    bucket(count).add(key);
    least = Math.min(least, count);
  }
  return { ratio: hits / trace.length, secondHalf: secondHalfHits / (trace.length - Math.floor(trace.length / 2)) };
}

const started = performance.now();
const lru = lruRatio();
const edge = edgeRatio();
const lfu = perfectLfuRatio();
const percent = (x: number) => `${(x * 100).toFixed(1)} %`;
console.log(`C2 hit ratio: Zipf α=${alpha}, ${objects} objects, cache ${capacity} (${percent(capacity / objects)}), ${requests} requests, seed ${values.seed}${scan > 0 ? `, ${percent(scan)} of requests for objects asked for once` : ''}`);
console.log(`  plain LRU (lru-cache):   ${percent(lru)}`);
console.log(`  edge store (W-TinyLFU):  ${percent(edge.ratio)}   second half ${percent(edge.secondHalf)}   (evictions ${edge.evictions}, refused by admission ${edge.rejected})`);
console.log(`  perfect LFU:             ${percent(lfu.ratio)}   second half ${percent(lfu.secondHalf)}`);
console.log(`  ratio edge/LRU: ${(edge.ratio / lru).toFixed(3)}   edge/perfect LFU: ${(edge.ratio / lfu.ratio).toFixed(3)} (second half ${(edge.secondHalf / lfu.secondHalf).toFixed(3)})`);
// The aim is issue 10's, for the plain Zipf trace (a scan's one-hit requests are misses for every policy).
if (scan === 0) console.log(`  aim ≥ 62 %: ${edge.ratio >= 0.62 ? 'met' : 'NOT met'}, second half ${edge.secondHalf >= 0.62 ? 'met' : 'NOT met'}`);
console.log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
