/**
 * `cache` nodes listening on a real Redis purge bus (`purge_bus`): one
 * `sendPurge` by tag reaches both edges, each acknowledges under its name,
 * and the purged object is fetched from the origin again; the same through
 * a run's admin endpoint `POST /api/v1/cdn/cache/purge`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('POST /api/v1/cdn/cache/purge on a run\'s admin server', () => {
  it('purges through the running graph\'s purge bus, behind the token', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=600', 'Surrogate-Key': 'news' });
      response.end('today');
    });
    const channel = uniqueChannel('admin-route');
    const file = join(mkdtempSync(join(tmpdir(), 'purge-route-')), 'edge.yaml');
    writeFileSync(file, `streams: 1\nname: edge\nnodes:\n  edge:\n    op: cache\n    with: { listen: "127.0.0.1:18491", origin: "${origin.url}", name: admin-edge, purge_bus: { redis: "${url}", channel: "${channel}" } }\n`);
    const child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--ui', '127.0.0.1:18492', '--ui-token', 'purge-token', '--log-level', 'warn'], { stdio: 'ignore' });
    try {
      const post = (token?: string) =>
        fetch('http://127.0.0.1:18492/api/v1/cdn/cache/purge', { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {}, body: JSON.stringify({ tag: 'news' }) });
      let answer: Response | undefined;
      for (let i = 0; i < 100; i++) {
        answer = await post('purge-token').catch(() => undefined);
        if (answer?.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(answer?.status).toBe(200);
      const report = (await answer!.json()) as { complete: boolean; applied: { edge: string }[] };
      expect(report.complete).toBe(true);
      expect(report.applied.map((a) => a.edge)).toEqual(['admin-edge']);
      expect((await post()).status).toBe(401);
      const bad = await fetch('http://127.0.0.1:18492/api/v1/cdn/cache/purge', { method: 'POST', headers: { authorization: 'Bearer purge-token' }, body: '{"tag": 1}' });
      expect(bad.status).toBe(400);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
  }, 30_000);
});
