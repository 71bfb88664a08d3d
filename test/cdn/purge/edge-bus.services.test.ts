/**
 * `cache` nodes listening on a real Redis purge bus (`purge_bus`): one
 * `sendPurge` by tag reaches both edges, each acknowledges under its name,
 * and the purged object is fetched from the origin again.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sendPurge } from '../../../nodes/cdn/purge/send.ts';
import { get, startEdge, startOrigin, stopAll } from '../edge-harness.ts';
import { uniqueChannel } from './purge-harness.ts';

const url = process.env.STREAMS_REDIS_URL ?? '';

afterEach(stopAll);

afterAll(async () => {
  const redis = new Redis(url);
  const keys = await redis.keys('test:purge:*:edges');
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe('cache on a Redis purge bus', () => {
  it('applies a purge by tag on every edge and acknowledges it by name', async () => {
    if (!url) throw new Error('STREAMS_REDIS_URL is not set: run `npm run services:start`');
    let originRequests = 0;
    const origin = await startOrigin((_request, response) => {
      originRequests += 1;
      response.writeHead(200, { 'Cache-Control': 'max-age=600', 'Surrogate-Key': 'news' });
      response.end('today');
    });
    const channel = uniqueChannel('edge-bus');
    const edges = [await startEdge(origin.url, { name: 'paris', purge_bus: { redis: url, channel } }), await startEdge(origin.url, { name: 'lyon', purge_bus: { redis: url, channel } })];
    for (const edge of edges) {
      await get(`${edge.base}/news/today.html`);
      expect((await get(`${edge.base}/news/today.html`)).headers.get('x-cache')).toBe('HIT');
    }
    expect(originRequests).toBe(2);
    // The listeners register in the background once the edges listen.
    let report = await sendPurge({ redis: url, channel }, { kind: 'tag', value: 'news', soft: false }, 3000);
    for (let i = 0; i < 50 && report.applied.length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      report = await sendPurge({ redis: url, channel }, { kind: 'tag', value: 'news', soft: false }, 3000);
    }
    expect(report.applied.map((a) => a.edge).sort()).toEqual(['lyon', 'paris']);
    expect(report.missing).toEqual([]);
    for (const edge of edges) expect((await get(`${edge.base}/news/today.html`)).headers.get('x-cache')).toBe('MISS');
    expect(originRequests).toBe(4);
  });
});
