/**
 * The `admit` step: the one hook an access policy plugs into. It sees the
 * client's IP and the parsed URL before any lookup; a refusal is answered
 * without reaching the cache or the origin; `release` runs once per
 * admitted request when it ends.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Admit, AdmitRequest } from '../../nodes/cdn/edge/admit.ts';
import type { CachedObject } from '../../nodes/cdn/edge/cached-object.ts';
import { Edge } from '../../nodes/cdn/edge/edge.ts';
import { EdgeStore } from '../../nodes/cdn/edge/store.ts';
import { get, startOrigin, stopAll, until } from './edge-harness.ts';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  await stopAll();
});

describe('cache: the admit step', () => {
  it('asks admit with the client and the parsed URL, answers refusals itself, and releases each admitted request once', async () => {
    const origin = await startOrigin((_request, response) => response.end('public'));
    const seen: AdmitRequest[] = [];
    let released = 0;
    const admit: Admit = (request) => {
      seen.push(request);
      if (request.url.pathname.startsWith('/private/')) return { ok: false, status: 403, reason: 'unsigned', body: 'forbidden: sign the URL' };
      return { ok: true, release: () => (released += 1) };
    };
    const edge = new Edge({
      name: 'e', origin: new URL(origin.url), maxObject: 1 << 20, originTimeoutMs: 5000, rules: [], defaultTtl: 60_000,
      staleWhileRevalidate: 0, staleIfError: 0, prefetch: 0, store: new EdgeStore<CachedObject>({ maxBytes: 1 << 20, expectedObjects: 64 }), now: () => Date.now(), admit,
    });
    server = createServer((request, response) => void edge.handle(request, response));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const refused = await get(`${base}/private/a.ts?expires=1`);
    expect([refused.status, refused.body.toString()]).toEqual([403, 'forbidden: sign the URL\n']);
    expect((await get(`${base}/open.ts?x=1`)).body.toString()).toBe('public');
    await get(`${base}/open.ts?x=1`);
    await until(() => released === 2);
    expect(seen.map((r) => [r.client, r.method, r.url.pathname, r.url.searchParams.get('x') ?? r.url.searchParams.get('expires'), r.edge])).toEqual([
      ['127.0.0.1', 'GET', '/private/a.ts', '1', 'e'],
      ['127.0.0.1', 'GET', '/open.ts', '1', 'e'],
      ['127.0.0.1', 'GET', '/open.ts', '1', 'e'],
    ]);
    expect(origin.requests.map((r) => r.path)).toEqual(['/open.ts?x=1']);
    expect(edge.counters).toMatchObject({ refused: 1, misses: 1, hits: 1 });
    edge.close();
  });
});
