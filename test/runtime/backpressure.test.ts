import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { startYaml, take, type Summary } from '../helpers/pipeline.ts';
import type { Engine } from '../../runtime/engine.ts';

// A garbage collection on demand, so the heap measured is what is live, not what awaits collection.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function liveHeap(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/** Samples the sink channel's depth, and the live heap, while a graph runs. */
async function watch(engine: Engine, edgeTo: string): Promise<{ maxDepth: number; heapGrowthMb: number }> {
  let maxDepth = 0;
  const heapStart = liveHeap();
  let heapMax = heapStart;
  const depthTimer = setInterval(() => {
    for (const [edge, stats] of engine.edgeStats()) if (edge.to === edgeTo) maxDepth = Math.max(maxDepth, stats.depth);
  }, 5);
  const heapTimer = setInterval(() => {
    heapMax = Math.max(heapMax, liveHeap());
  }, 250);
  await engine.done;
  clearInterval(depthTimer);
  clearInterval(heapTimer);
  return { maxDepth, heapGrowthMb: (heapMax - heapStart) / 1e6 };
}

const total = 2_000_000;
const batch = 1024;
const capacity = 8192;

// The source makes a batch in well under 50 µs; the sink takes ≥ 1 ms a batch: more than 20 times slower.
const pipeline = (policy: string, live: boolean) => `
streams: 1
name: slow-sink-${policy}
nodes:
  src: { op: test.count, with: { count: ${total}, batch: ${batch}, live: ${live} } }
  out:
    op: test.collect
    in: src
    with: { into: slow-${policy}, delay_ms: 1, summary: true }
    capacity: ${capacity}
    when_full: ${policy}
`;

describe('backpressure with a slow sink', () => {
  it('blocks the source: memory stays bounded and nothing is lost', async () => {
    const engine = startYaml(pipeline('block', false));
    const { maxDepth, heapGrowthMb } = await watch(engine, 'out');
    const [got] = take('slow-block') as Summary[];
    expect(got).toEqual({ count: total, rising: true, first: 0, last: total - 1 });
    // Bound: the channel's capacity plus the one batch that tipped it over.
    expect(maxDepth).toBeLessThanOrEqual(capacity + batch);
    expect(maxDepth).toBeGreaterThan(0);
    // 2M records held at once would take well over 100 MB of live heap; the bounded run stays far under that.
    expect(heapGrowthMb).toBeLessThan(20);
  }, 120_000);

  it.each(['drop_newest', 'drop_oldest'])('with %s, a live source loses records only at the full channel, and every drop is counted', async (policy) => {
    const engine = startYaml(pipeline(policy, true));
    const { maxDepth } = await watch(engine, 'out');
    const [got] = take(`slow-${policy}`) as Summary[];
    const [, edge] = [...engine.edgeStats()].find(([e]) => e.to === 'out')!;
    expect(edge.drops).toBeGreaterThan(0);
    expect(got.count + edge.drops).toBe(total);
    expect(maxDepth).toBeLessThanOrEqual(capacity + batch);
    // What arrives keeps its order; the newest are kept by drop_oldest, the oldest by drop_newest.
    expect(got.rising).toBe(true);
    if (policy === 'drop_newest') expect(got.first).toBe(0);
    else expect(got.last).toBe(total - 1);
  }, 120_000);
});
