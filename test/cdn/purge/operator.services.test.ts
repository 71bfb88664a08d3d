/**
 * `cdn.purge` in a running pipeline over a real Redis: records become
 * purges on three edges, each report comes out, a record naming no selector
 * goes to the dead-letter port, and an edge that is down is named in the
 * report and the log.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { capturingLogger, collector, startPipeline } from '../../connectors/redis-pg-harness.ts';
import { startEdge, uniqueChannel, until, type TestEdge } from './purge-harness.ts';

const url = process.env.STREAMS_REDIS_URL ?? '';
const edges: TestEdge[] = [];

afterEach(async () => {
  await Promise.all(edges.splice(0).map((edge) => edge.listener.stop()));
});

afterAll(async () => {
  // The registries the tests' edges left behind.
  const redis = new Redis(url);
  const keys = await redis.keys('test:purge:*:edges');
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

async function threeEdges(channel: string): Promise<TestEdge[]> {
  if (!url) throw new Error('STREAMS_REDIS_URL is not set: run `npm run services:start` (or `bash test/services/start.sh redis`)');
  const started = await Promise.all(['edge-a', 'edge-b', 'edge-c'].map((name) => startEdge({ redis: url, channel }, name, 2)));
  edges.push(...started);
  return started;
}

function pipeline(channel: string, sink: string, fields: string, count: number): string {
  return `streams: 1
name: purge-from-a-stream
nodes:
  cms:
    op: generate
    with: { count: ${count}, fields: ${fields} }
  purge:
    op: cdn.purge
    in: cms
    with: { redis: "${url}", channel: "${channel}", timeout: 1s }
  reports:
    op: test.collect
    in: purge
    with: { name: ${sink} }
  dead:
    op: test.collect
    in: purge.dlq
    with: { name: ${sink}-dlq }
`;
}

describe('cdn.purge', () => {
  it('turns each record into a purge acknowledged by every edge, and emits its report', async () => {
    const channel = uniqueChannel('op');
    const [a, b, c] = await threeEdges(channel);
    const sink = `reports-${channel.slice(-8)}`;
    const engine = startPipeline(pipeline(channel, sink, `{ tag: '"article-" + string(i)', soft: 'i == 1' }`, 3), []);
    await engine.done;
    const reports = collector(sink).items as Array<Record<string, unknown>>;
    expect(reports).toHaveLength(3);
    expect(reports.map((r) => [r.kind, r.value, r.soft, r.complete, r.registered])).toEqual([
      ['tag', 'article-0', false, true, 3],
      ['tag', 'article-1', true, true, 3],
      ['tag', 'article-2', false, true, 3],
    ]);
    expect((reports[0].applied as Array<{ edge: string; removed: number }>).map((entry) => [entry.edge, entry.removed])).toEqual([['edge-a', 2], ['edge-b', 2], ['edge-c', 2]]);
    for (const edge of [a, b, c]) expect(edge.calls.map((call) => call.value)).toEqual(['article-0', 'article-1', 'article-2']);
  });

  it('sends a record naming no single selector to the dead-letter port, and names an edge that is down', async () => {
    const channel = uniqueChannel('op-down');
    const [, , c] = await threeEdges(channel);
    await c.listener.stop();
    const sink = `reports-${channel.slice(-8)}`;
    const log = capturingLogger();
    const engine = startPipeline(pipeline(channel, sink, `{ url: '"/a/" + string(i)', tag: 'i == 0 ? "both" : ""' }`, 1), [], { log });
    await engine.done;
    expect(collector(sink).items).toHaveLength(0);
    const dead = collector(`${sink}-dlq`).items as Array<{ error: string }>;
    expect(dead).toHaveLength(1);
    expect(dead[0].error).toMatch(/exactly one of the fields `url`, `prefix` or `tag` \(it has url, tag\)/);

    const second = `${sink}-2`;
    const engine2 = startPipeline(pipeline(channel, second, `{ prefix: '"/live/"' }`, 1), [], { log });
    await engine2.done;
    await until('a report', () => collector(second).items.length === 1);
    expect(collector(second).items[0]).toMatchObject({ kind: 'prefix', value: '/live/', complete: false, missing: ['edge-c'] });
    expect(log.entries.some((entry) => entry.level === 'warn' && /purge prefix \/live\/ not applied by edge-c/.test(entry.message))).toBe(true);
  });

  it('waits and retries with a logged error while the bus cannot be reached, holding the record', async () => {
    const sink = `reports-unreachable-${Date.now()}`;
    const log = capturingLogger();
    const engine = startPipeline(pipeline('test:purge:unreachable', sink, `{ url: '"/a"' }`, 1).replace(url, 'redis://127.0.0.1:18253'), [], { log });
    try {
      await until('two failed attempts', () => log.entries.filter((entry) => entry.level === 'error' && entry.message.includes('cannot send purges through redis://127.0.0.1:18253')).length >= 2, 20_000);
      expect(collector(sink).items).toHaveLength(0);
      expect(collector(`${sink}-dlq`).items).toHaveLength(0);
    } finally {
      await engine.drain({ deadlineMs: 2_000 });
    }
  });
});
