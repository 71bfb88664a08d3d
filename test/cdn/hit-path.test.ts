/**
 * The edge's hit path keeps each stored object's header list built between
 * hits: it must be rebuilt whenever what it says changes (a revalidation's
 * new headers, the age, the outcome), and ranges, HEAD and 304 still answer
 * from the same object.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get, startEdge, startOrigin, stopAll } from './edge-harness.ts';

afterEach(stopAll);

describe('cache: hits answered from a kept header list', () => {
  it('sends the headers a 304 brought, not those kept from before it', async () => {
    let version = 1;
    const origin = await startOrigin((request, response) => {
      if (request.headers['if-none-match'] === '"v"') {
        response.writeHead(304, { 'Cache-Control': 'max-age=1', ETag: '"v"', 'X-Version': String(version) });
        response.end();
        return;
      }
      response.writeHead(200, { 'Cache-Control': 'max-age=1', ETag: '"v"', 'X-Version': String(version) });
      response.end('body');
    });
    const edge = await startEdge(origin.url, { stale_if_error: '0s' });
    await get(`${edge.base}/a`);
    const hit = await get(`${edge.base}/a`);
    expect([hit.headers.get('x-cache'), hit.headers.get('x-version'), hit.headers.get('age')]).toEqual(['HIT', '1', '0']);
    version = 2;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const revalidated = await get(`${edge.base}/a`);
    expect([revalidated.headers.get('x-version'), origin.count('/a')]).toEqual(['2', 2]);
    const after = await get(`${edge.base}/a`);
    expect([after.headers.get('x-cache'), after.headers.get('x-version'), after.headers.get('age'), after.body.toString()]).toEqual(['HIT', '2', '0', 'body']);
  });

  it('answers ranges, HEAD and conditional requests from a stored object', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60', ETag: '"e"' });
      response.end('0123456789');
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/r`);
    const whole = await get(`${edge.base}/r`);
    expect([whole.status, whole.headers.get('content-length'), whole.headers.get('accept-ranges'), whole.body.toString()]).toEqual([200, '10', 'bytes', '0123456789']);
    const part = await get(`${edge.base}/r`, { Range: 'bytes=2-4' });
    expect([part.status, part.headers.get('content-range'), part.body.toString()]).toEqual([206, 'bytes 2-4/10', '234']);
    const head = await get(`${edge.base}/r`, {}, 'HEAD');
    expect([head.status, head.headers.get('content-length'), head.body.length]).toEqual([200, '10', 0]);
    expect((await get(`${edge.base}/r`, { 'If-None-Match': '"e"' })).status).toBe(304);
    expect((await get(`${edge.base}/r`, { Range: 'bytes=20-' })).status).toBe(416);
    expect(origin.count('/r')).toBe(1);
  });
});
