/**
 * Lifetimes and validation through a real edge and origin: Cache-Control
 * and rules, no-store, stale-while-revalidate (one background refresh),
 * stale-if-error (origin down, then 502 once the window passed), 504 on a
 * slow origin, revalidation with 304, conditional requests and byte ranges
 * answered from the cache, and Vary.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get, startEdge, startOrigin, stopAll, until } from './edge-harness.ts';

afterEach(stopAll);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('cache: lifetimes', () => {
  it('keeps what Cache-Control allows, refetches what is expired, and never stores no-store or private', async () => {
    const origin = await startOrigin((request, response) => {
      const cc = request.url === '/short' ? 'max-age=0' : request.url === '/secret' ? 'private, max-age=60' : request.url === '/nostore' ? 'no-store' : 's-maxage=60, max-age=0';
      response.writeHead(200, { 'Cache-Control': cc, 'Content-Type': 'text/plain' });
      response.end(`body of ${request.url}`);
    });
    const edge = await startEdge(origin.url);
    for (const path of ['/shared', '/short', '/secret', '/nostore']) {
      await get(`${edge.base}${path}`);
      await get(`${edge.base}${path}`);
    }
    expect(origin.count('/shared')).toBe(1);
    expect(origin.count('/short')).toBe(2);
    expect(origin.count('/secret')).toBe(2);
    expect(origin.count('/nostore')).toBe(2);
  });

  it('lets ttl rules by path glob and content type override the origin', async () => {
    const origin = await startOrigin((request, response) => {
      const type = request.url!.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp4';
      response.writeHead(200, { 'Cache-Control': 'no-cache', 'Content-Type': type });
      response.end('x');
    });
    const edge = await startEdge(origin.url, { ttl: [{ match: '*.m3u8', ttl: '200ms' }, { match: 'video/*', ttl: '1d' }] });
    await get(`${edge.base}/live/index.m3u8`);
    expect((await get(`${edge.base}/live/index.m3u8`)).headers.get('x-cache')).toBe('HIT');
    await get(`${edge.base}/live/seg.bin`);
    await sleep(250);
    expect((await get(`${edge.base}/live/seg.bin`)).headers.get('x-cache')).toBe('HIT');
    expect((await get(`${edge.base}/live/index.m3u8`)).headers.get('x-cache')).toBe('MISS');
    expect(origin.count('/live/index.m3u8')).toBe(2);
    expect(origin.count('/live/seg.bin')).toBe(1);
  });

  it('serves stale within stale_while_revalidate and refreshes once in the background', async () => {
    let version = 1;
    const origin = await startOrigin((_request, response) => {
      const body = `v${version}`;
      // The refresh is slow, so every request of the burst finds the stale object.
      setTimeout(() => {
        response.writeHead(200, { 'Cache-Control': 'max-age=1', 'Content-Type': 'text/plain' });
        response.end(body);
      }, version === 1 ? 0 : 200);
    });
    const edge = await startEdge(origin.url, { stale_while_revalidate: '10s' });
    expect((await get(`${edge.base}/p`)).body.toString()).toBe('v1');
    version = 2;
    await sleep(1100);
    const stale = await Promise.all([1, 2, 3].map(() => get(`${edge.base}/p`)));
    expect(stale.map((a) => [a.body.toString(), a.headers.get('x-cache')])).toEqual([['v1', 'STALE'], ['v1', 'STALE'], ['v1', 'STALE']]);
    expect(origin.count('/p')).toBe(2);
    await until(() => edge.log().length >= 4);
    await sleep(300);
    const fresh = await get(`${edge.base}/p`);
    expect([fresh.body.toString(), fresh.headers.get('x-cache')]).toEqual(['v2', 'HIT']);
    expect(origin.count('/p')).toBe(2);
  });

  it('serves stale while the origin is down within stale_if_error, then 502 with a clear body', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=0' });
      response.end('kept');
    });
    const edge = await startEdge(origin.url, { stale_if_error: '300ms' });
    await get(`${edge.base}/o`);
    await origin.close();
    const stale = await get(`${edge.base}/o`);
    expect([stale.status, stale.body.toString(), stale.headers.get('x-cache')]).toEqual([200, 'kept', 'STALE']);
    await sleep(350);
    const failed = await get(`${edge.base}/o`);
    expect(failed.status).toBe(502);
    expect(failed.body.toString()).toMatch(/^bad gateway: cannot reach the origin/);
  });

  it('serves stale on a 5xx from the origin within stale_if_error', async () => {
    let broken = false;
    const origin = await startOrigin((_request, response) => {
      response.writeHead(broken ? 503 : 200, { 'Cache-Control': 'max-age=0' });
      response.end(broken ? 'down' : 'good');
    });
    const edge = await startEdge(origin.url, { stale_if_error: '1m' });
    await get(`${edge.base}/x`);
    broken = true;
    const answer = await get(`${edge.base}/x`);
    expect([answer.status, answer.body.toString(), answer.headers.get('x-cache')]).toEqual([200, 'good', 'STALE']);
  });

  it('answers 504 when the origin does not answer within origin_timeout', async () => {
    const origin = await startOrigin(() => undefined);
    const edge = await startEdge(origin.url, { origin_timeout: '200ms' });
    const answer = await get(`${edge.base}/hang`);
    expect(answer.status).toBe(504);
    expect(answer.body.toString()).toMatch(/^gateway timeout: the origin did not answer within 200 ms/);
  });
});

describe('cache: validation, ranges and Vary', () => {
  it('revalidates an expired object with If-None-Match and keeps it on 304', async () => {
    const origin = await startOrigin((request, response) => {
      if (request.headers['if-none-match'] === '"v1"') {
        response.writeHead(304, { ETag: '"v1"', 'Cache-Control': 'max-age=60' });
        return void response.end();
      }
      response.writeHead(200, { ETag: '"v1"', 'Cache-Control': 'max-age=0', 'Content-Type': 'text/plain' });
      response.end('validated body');
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/v`);
    const second = await get(`${edge.base}/v`);
    expect(second.body.toString()).toBe('validated body');
    expect(origin.requests[1].headers['if-none-match']).toBe('"v1"');
    expect((await get(`${edge.base}/v`)).headers.get('x-cache')).toBe('HIT');
    expect(origin.count('/v')).toBe(2);
  });

  it('answers If-None-Match and If-Modified-Since with 304 from the cache', async () => {
    const modified = new Date(Date.now() - 3_600_000).toUTCString();
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { ETag: 'W/"abc"', 'Last-Modified': modified, 'Cache-Control': 'max-age=60' });
      response.end('content');
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/c`);
    expect((await get(`${edge.base}/c`, { 'If-None-Match': '"abc"' })).status).toBe(304);
    expect((await get(`${edge.base}/c`, { 'If-None-Match': '"other"' })).status).toBe(200);
    expect((await get(`${edge.base}/c`, { 'If-Modified-Since': new Date().toUTCString() })).status).toBe(304);
    expect((await get(`${edge.base}/c`, { 'If-Modified-Since': new Date(Date.now() - 7_200_000).toUTCString() })).status).toBe(200);
    expect(origin.count('/c')).toBe(1);
  });

  it('serves single byte ranges from a cached object, 416 past the end', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': 10 });
      response.end('0123456789');
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/r`);
    const middle = await get(`${edge.base}/r`, { Range: 'bytes=2-5' });
    expect([middle.status, middle.body.toString(), middle.headers.get('content-range')]).toEqual([206, '2345', 'bytes 2-5/10']);
    const suffix = await get(`${edge.base}/r`, { Range: 'bytes=-3' });
    expect([suffix.status, suffix.body.toString()]).toEqual([206, '789']);
    const open = await get(`${edge.base}/r`, { Range: 'bytes=7-' });
    expect(open.body.toString()).toBe('789');
    const past = await get(`${edge.base}/r`, { Range: 'bytes=10-' });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, 'bytes */10']);
    expect(origin.count('/r')).toBe(1);
  });

  it('keys by the request headers Vary names, and never stores Vary: *', async () => {
    const origin = await startOrigin((request, response) => {
      if (request.url === '/star') {
        response.writeHead(200, { Vary: '*', 'Cache-Control': 'max-age=60' });
        return void response.end('star');
      }
      response.writeHead(200, { Vary: 'Accept-Language', 'Cache-Control': 'max-age=60' });
      response.end(`lang ${request.headers['accept-language']}`);
    });
    const edge = await startEdge(origin.url);
    expect((await get(`${edge.base}/v`, { 'Accept-Language': 'fr' })).body.toString()).toBe('lang fr');
    expect((await get(`${edge.base}/v`, { 'Accept-Language': 'de' })).body.toString()).toBe('lang de');
    const fr = await get(`${edge.base}/v`, { 'Accept-Language': 'fr' });
    expect([fr.body.toString(), fr.headers.get('x-cache')]).toEqual(['lang fr', 'HIT']);
    expect(origin.count('/v')).toBe(2);
    await get(`${edge.base}/star`);
    await get(`${edge.base}/star`);
    expect(origin.count('/star')).toBe(2);
  });

  it('sends Age, answers /healthz, and refuses other methods with 405', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60', Age: '5' });
      response.end('aged');
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/a`);
    expect(Number((await get(`${edge.base}/a`)).headers.get('age'))).toBeGreaterThanOrEqual(5);
    expect((await get(`${edge.base}/healthz`)).body.toString()).toBe('ok\n');
    const post = await get(`${edge.base}/a`, {}, 'POST');
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    expect(origin.count('/healthz')).toBe(0);
    expect(origin.requests.every((r) => r.path === '/a')).toBe(true);
  });
});

