/**
 * The `cache` operator's `access:` rules in front of a real origin: a
 * protected prefix needs a signed URL (refused ones never reach the
 * origin), and a client over its rate gets 429 with `Retry-After`.
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
