/**
 * The `cache` operator's `access:` rules in front of a real origin: a
 * protected prefix needs a signed URL (refused ones never reach the
 * origin), and a client over its rate gets 429 with `Retry-After`; and the
 * edge's own Prometheus metrics.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { signPath, signingKey } from '../../nodes/cdn/access/signed-url.ts';
import { get, startEdge, startOrigin, stopAll } from './edge-harness.ts';

afterEach(stopAll);

const key = 'a-test-signing-key-of-32-characters';

describe('cache access rules', () => {
  it('serves /private/ only on a valid signed URL; refusals never reach the origin', async () => {
    const seen: string[] = [];
    const origin = await startOrigin((request, response) => {
      seen.push(request.url ?? '');
      response.writeHead(200, { 'Cache-Control': 'max-age=60' });
      response.end('secret report');
    });
    const edge = await startEdge(origin.url, { access: { signed: ['/private/'], sign_key: key } });
    expect((await get(`${edge.base}/private/report.txt`)).status).toBe(403);
    const expires = Math.floor(Date.now() / 1000) + 60;
    const signed = signPath('/private/report.txt', expires, signingKey(key));
    expect((await get(`${edge.base}${signed.replace('/report.txt', '/other.txt')}`)).status).toBe(403);
    expect((await get(`${edge.base}/private/report.txt?expires=${expires - 120}&sig=x`)).status).toBe(403);
    expect(seen).toEqual([]);
    const answer = await get(`${edge.base}${signed}`);
    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toBe('secret report');
    expect((await get(`${edge.base}/public.txt`)).status).toBe(200);
    expect(seen.length).toBe(2);
  });

  it('answers a client over its rate with 429 and Retry-After', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60' });
      response.end('ok');
    });
    const edge = await startEdge(origin.url, { access: { rate_limit: { rate: 1, burst: 3 } } });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const answer = await get(`${edge.base}/a`);
      statuses.push(answer.status);
      if (answer.status === 429) retryAfter = answer.headers.get('retry-after');
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  });
});

describe('cache metrics', () => {
  it('exposes requests by outcome, the hit ratio, refusals by reason and the time to first byte', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60' });
      response.end('ok');
    });
    const edge = await startEdge(origin.url, { name: 'paris', access: { signed: ['/private/'], sign_key: key } });
    await get(`${edge.base}/a`);
    await get(`${edge.base}/a`);
    await get(`${edge.base}/a`);
    await get(`${edge.base}/private/x`);
    const families = new Map(edge.ctx.exposedMetrics().map((family) => [family.name, family]));
    const samples = (name: string) => {
      const family = families.get(name)!;
      return family.type === 'histogram' ? [] : family.samples.map((s) => [s.labels?.cache ?? s.labels?.reason ?? s.labels?.status ?? '', s.value]);
    };
    expect(samples('cdn_requests_total')).toEqual([['hit', 2], ['stale', 0], ['coalesced', 0], ['miss', 1]]);
    expect(samples('cdn_hit_ratio')).toEqual([['', 2 / 3]]);
    expect(new Map(samples('cdn_refused_total') as [string, number][]).get('unsigned')).toBe(1);
    expect(new Map(samples('cdn_responses_total') as [string, number][]).get('4xx')).toBe(1);
    const ttfb = families.get('cdn_ttfb_seconds')!;
    expect(ttfb.type === 'histogram' && ttfb.counts.reduce((a, b) => a + b, 0)).toBe(4);
    const requests = families.get('cdn_requests_total')!;
    expect(requests.type !== 'histogram' && requests.samples[0].labels?.edge).toBe('paris');
  });
});
