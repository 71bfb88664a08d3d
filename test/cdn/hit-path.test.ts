/**
 * The edge's hit path keeps each stored object's header list built between
 * hits: it must be rebuilt whenever what it says changes (a revalidation's
 * new headers, the age, the outcome), and ranges, HEAD and 304 still answer
 * from the same object.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { conditionalOrRange } from '../../nodes/cdn/edge/conditional.ts';
import { SharedBody } from '../../nodes/cdn/edge/shared-body.ts';
import { get, startEdge, startOrigin, stopAll, until } from './edge-harness.ts';

/** A GET whose header names go out spelled exactly as given (fetch would not keep `rAnGe`). */
function getSpelled(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Writes `text` on one connection to `base` and reads until `done` holds for what came back (bounded). */
function exchange(base: string, text: string, done: (received: string) => boolean): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect(Number(port), hostname, () => socket.write(text));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no full answer in time; received: ${JSON.stringify(received)}`));
    }, 3000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (!done(received)) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    });
    socket.on('error', reject);
  });
}

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

  it('finds validators and ranges in the raw header list whatever their spelling, and nothing else', () => {
    expect(conditionalOrRange(['Host', 'edge', 'rAnGe', 'bytes=0-1'])).toBe(true);
    expect(conditionalOrRange(['IF-NONE-MATCH', '"e"'])).toBe(true);
    expect(conditionalOrRange(['if-modified-since', 'Thu, 01 Jan 2026 00:00:00 GMT'])).toBe(true);
    // Names of the same lengths, and values that look like the names, are not them.
    expect(conditionalOrRange(['Cache-Control', 'no-cache', 'Authorization', 'x', 'Accept-Encoding', 'gzip'])).toBe(false);
    expect(conditionalOrRange(['Ranges', 'x', 'Accept', 'range', 'If-Match-None!', 'x', 'If-Unmodified-Si', 'x', 'X-Range', 'bytes=0-1'])).toBe(false);
    expect(conditionalOrRange([])).toBe(false);
  });

  it('answers a range or a validator in any spelling of its name, and a Vary path by the request headers', async () => {
    const origin = await startOrigin((request, response) => {
      const language = String(request.headers['accept-language'] ?? 'none');
      response.writeHead(200, { 'Cache-Control': 'max-age=60', ETag: '"e"', 'Last-Modified': 'Thu, 01 Jan 2026 00:00:00 GMT', Vary: 'Accept-Language' });
      response.end(`body-${language}`);
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/v`, { 'Accept-Language': 'fr' });
    const part = await getSpelled(`${edge.base}/v`, { 'accept-language': 'fr', rAnGe: 'bytes=5-6' });
    expect([part.status, part.headers['content-range'], part.body, part.headers['x-cache']]).toEqual([206, 'bytes 5-6/7', 'fr', 'HIT']);
    expect((await getSpelled(`${edge.base}/v`, { 'Accept-Language': 'fr', 'IF-NONE-MATCH': '"e"' })).status).toBe(304);
    expect((await getSpelled(`${edge.base}/v`, { 'Accept-Language': 'fr', 'if-MODIFIED-since': 'Fri, 02 Jan 2026 00:00:00 GMT' })).status).toBe(304);
    const other = await getSpelled(`${edge.base}/v`, { 'Accept-Language': 'de' });
    expect([other.status, other.body, other.headers['x-cache']]).toEqual([200, 'body-de', 'MISS']);
    const again = await getSpelled(`${edge.base}/v`, { 'Accept-Language': 'fr' });
    expect([again.status, again.body, again.headers['x-cache']]).toEqual([200, 'body-fr', 'HIT']);
    expect(origin.count('/v')).toBe(2);
  });
});

describe('cache: a stored body sent as one buffer', () => {
  it('joins the chunks a body arrived in at its first slice, and later slices and ranges read the same bytes', () => {
    const body = SharedBody.of([Buffer.from('0123'), Buffer.from('4567'), Buffer.from('89')]);
    const first = body.slice(0, 10);
    expect(first.length).toBe(1);
    expect(Buffer.concat(first).toString()).toBe('0123456789');
    expect(body.chunks.length).toBe(1);
    expect(body.slice(3, 8).map((piece) => piece.toString())).toEqual(['34567']);
    expect(body.length).toBe(10);
  });

  it('leaves the chunks of a body over 4 MiB as they are (no long copy on the event loop)', () => {
    const big = SharedBody.of([Buffer.alloc(3 * 1024 * 1024, 1), Buffer.alloc(2 * 1024 * 1024, 2)]);
    const pieces = big.slice(3 * 1024 * 1024 - 1, 3 * 1024 * 1024 + 1);
    expect(pieces.map((piece) => [...piece])).toEqual([[1], [2]]);
    expect(big.chunks.length).toBe(2);
  });

  it('leaves the chunks alone while a body is still arriving', () => {
    const body = new SharedBody();
    body.push(Buffer.from('ab'));
    body.push(Buffer.from('cd'));
    expect(body.slice(0, 4).map((piece) => piece.toString())).toEqual(['ab', 'cd']);
    expect(body.chunks.length).toBe(2);
  });
});

describe('cache: what Node skips for the edge, and what it must not', () => {
  it('reads past the body of a request it refuses, so the same connection goes on serving', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60' });
      response.end('stored');
    });
    const edge = await startEdge(origin.url);
    await get(`${edge.base}/k`);
    // A POST with a body, then a GET, on one connection: the body must be drained, not parsed as the next request.
    const body = 'GET /evil HTTP/1.1\r\nHost: edge\r\n\r\n';
    const received = await exchange(edge.base, `POST /k HTTP/1.1\r\nHost: edge\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /k HTTP/1.1\r\nHost: edge\r\n\r\n`, (text) => text.endsWith('stored'));
    const statuses = [...received.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((match) => Number(match[1]));
    expect(statuses).toEqual([405, 200]);
    expect(received).toMatch(/X-Cache: HIT/);
    expect(origin.count('/evil')).toBe(0);
  });

  it('logs a hit written at once with its duration, and frees its connection slot for the next request', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60' });
      response.end('x'.repeat(1024));
    });
    const edge = await startEdge(origin.url, { access: { max_connections_per_client: 1 } });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const once = (): Promise<{ status: number; cache: string | undefined }> =>
      new Promise((resolve, reject) => {
        const request = httpRequest(`${edge.base}/one`, { agent }, (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, cache: response.headers['x-cache'] as string | undefined }));
        });
        request.on('error', reject);
        request.end();
      });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await once());
    agent.destroy();
    expect(answers).toEqual([{ status: 200, cache: 'MISS' }, ...Array.from({ length: 4 }, () => ({ status: 200, cache: 'HIT' }))]);
    await until(() => edge.log().length === 5);
    for (const record of edge.log().slice(1)) {
      expect(record).toMatchObject({ cache: 'HIT', status: 200, bytes: 1024 });
      expect(record.duration_ms as number).toBeGreaterThanOrEqual(record.ttfb_ms as number);
    }
  });
});

describe('cache: a stored body sent as it is kept', () => {
  it('gives the one buffer a complete body is kept in, joined once, the same buffer every time', () => {
    const body = SharedBody.of([Buffer.from('0123'), Buffer.from('4567'), Buffer.from('89')]);
    const whole = body.whole();
    expect(whole?.toString()).toBe('0123456789');
    expect(body.whole()).toBe(whole);
    expect(body.chunks).toEqual([whole]);
  });

  it('gives no single buffer for a body still arriving, too large to join, or passed through', () => {
    const open = new SharedBody();
    open.push(Buffer.from('ab'));
    expect(open.whole()).toBeUndefined();
    const big = SharedBody.of([Buffer.alloc(3 * 1024 * 1024, 1), Buffer.alloc(2 * 1024 * 1024, 2)]);
    expect(big.whole()).toBeUndefined();
    expect(big.chunks.length).toBe(2);
    const passed = new SharedBody();
    passed.passThrough(() => undefined);
    passed.push(Buffer.from('cd'));
    passed.end();
    expect(passed.whole()).toBeUndefined();
  });
});
