/**
 * The edge store: the admission policy keeps a hot set under a flood of
 * distinct keys (where plain LRU loses it), the byte bound holds, and purge
 * by URL, prefix and tag, hard and soft, works in the store and through the
 * operator's `purge` port (a soft purge makes the next request revalidate).
 */
import { LRUCache } from 'lru-cache';
import { afterEach, describe, expect, it } from 'vitest';
import { EdgeStore, type StoredValue } from '../../nodes/cdn/edge/store.ts';
import { get, startEdge, startOrigin, stopAll, until } from './edge-harness.ts';

afterEach(stopAll);

const value = (url: string, tags: string[] = [], size = 100): StoredValue => ({ url, tags, size, stale: false });

/** Requests a hot set repeatedly while 10,000 distinct one-hit keys flood in; returns the hot keys' hit ratio in the last round. */
function hotSetUnderFlood(lookup: (key: string) => boolean): number {
  const hot = Array.from({ length: 20 }, (_, i) => `/hot/${i}`);
  let hits = 0;
  let asked = 0;
  for (let round = 0; round < 100; round++) {
    for (const key of hot) {
      const hit = lookup(key);
      if (round === 99) {
        asked += 1;
        if (hit) hits += 1;
      }
    }
    for (let i = 0; i < 100; i++) lookup(`/flood/${round}/${i}`);
  }
  return hits / asked;
}

describe('edge store', () => {
  it('keeps the hot set under a flood of 10,000 distinct keys, where plain LRU loses it', () => {
    const store = new EdgeStore<StoredValue>({ maxBytes: 50 * 100, expectedObjects: 50 });
    const edgeRatio = hotSetUnderFlood((key) => {
      store.touch(key);
      if (store.get(key)) return true;
      store.set(key, value(key));
      return false;
    });
    const lru = new LRUCache<string, StoredValue>({ maxSize: 50 * 100, sizeCalculation: (v) => v.size });
    const lruRatio = hotSetUnderFlood((key) => {
      if (lru.get(key)) return true;
      lru.set(key, value(key));
      return false;
    });
    expect(edgeRatio).toBe(1);
    expect(lruRatio).toBe(0);
    expect(store.bytes).toBeLessThanOrEqual(50 * 100);
    expect(store.counters.rejected).toBeGreaterThan(9000);
  });

  it('counts a request in lookup as touch does: the same trace gives the same hits, admissions and evictions', () => {
    const apart = new EdgeStore<StoredValue>({ maxBytes: 50 * 100, expectedObjects: 50 });
    const together = new EdgeStore<StoredValue>({ maxBytes: 50 * 100, expectedObjects: 50 });
    const hits = [0, 0];
    for (let i = 0; i < 20_000; i++) {
      // Skewed: a few keys often, many rarely, so admission and eviction both happen.
      const key = i % 3 === 0 ? `/hot/${i % 40}` : `/cold/${(i * 7919) % 3000}`;
      apart.touch(key);
      if (apart.get(key)) hits[0] += 1;
      else apart.set(key, value(key));
      if (together.lookup(key)) hits[1] += 1;
      else together.set(key, value(key));
    }
    expect(hits[1]).toBe(hits[0]);
    expect(hits[0]).toBeGreaterThan(1000);
    expect(together.counters).toEqual(apart.counters);
    expect(together.counters.rejected).toBeGreaterThan(0);
    expect(together.counters.evictions).toBeGreaterThan(0);
  });

  it('keeps a burst of new objects asked for twice in a window of that size, and refuses it with no window or a one-object one', () => {
    /** Hits on the second round of 20 new keys asked for in turn, twice, after 100 hot keys filled the store. */
    const burstHits = (windowShare: number): number => {
      const store = new EdgeStore<StoredValue>({ maxBytes: 100 * 100, expectedObjects: 100, windowShare });
      const request = (key: string): boolean => {
        if (store.lookup(key)) return true;
        store.set(key, value(key));
        return false;
      };
      for (let round = 0; round < 5; round++) for (let i = 0; i < 100; i++) request(`/hot/${i}`);
      const burst = Array.from({ length: 20 }, (_, i) => `/live/${i}.m4s`);
      for (const key of burst) request(key);
      return burst.filter(request).length;
    };
    expect(burstHits(0.2)).toBe(20);
    // The 20 newcomers, asked for once, lose to the hot objects once out of the window.
    expect(burstHits(0)).toBe(0);
    expect(burstHits(0.01)).toBe(0);
  });

  it('refuses a window share outside [0, 1)', () => {
    for (const windowShare of [-0.1, 1, Number.NaN]) {
      expect(() => new EdgeStore<StoredValue>({ maxBytes: 1000, expectedObjects: 10, windowShare })).toThrow(/window share/);
    }
  });

  it('stays within its byte bound with objects of mixed sizes', () => {
    const store = new EdgeStore<StoredValue>({ maxBytes: 10_000, expectedObjects: 20 });
    for (let i = 0; i < 1000; i++) {
      const key = `/o/${i % 97}`;
      store.touch(key);
      if (!store.get(key)) store.set(key, value(key, [], 100 + ((i * 37) % 900)));
      expect(store.bytes).toBeLessThanOrEqual(10_000);
    }
    expect(store.set('/huge', value('/huge', [], 20_000))).toBe(false);
  });

  it('purges by url (every variant), prefix and tag, hard or soft', () => {
    const store = new EdgeStore<StoredValue>({ maxBytes: 100_000, expectedObjects: 100 });
    store.set('/a.m3u8', value('/a.m3u8', ['live']));
    store.set('/a.m3u8\u0000accept-language=fr', value('/a.m3u8', ['live']));
    store.set('/live/1.m4s', value('/live/1.m4s', ['live', 'seg']));
    store.set('/live/2.m4s', value('/live/2.m4s', ['seg']));
    store.set('/vod/x.mp4', value('/vod/x.mp4', ['vod']));
    expect(store.purge({ kind: 'url', value: '/a.m3u8', soft: true })).toBe(2);
    expect(store.peek('/a.m3u8')?.stale).toBe(true);
    expect(store.purge({ kind: 'url', value: '/a.m3u8', soft: false })).toBe(2);
    expect(store.peek('/a.m3u8')).toBeUndefined();
    expect(store.purge({ kind: 'prefix', value: '/live/', soft: false })).toBe(2);
    expect(store.purge({ kind: 'tag', value: 'seg', soft: false })).toBe(0);
    expect(store.purge({ kind: 'tag', value: 'vod', soft: false })).toBe(1);
    expect(store.count).toBe(0);
  });
});

describe('cache: purge port', () => {
  it('applies purge records: hard removes, soft makes the next request revalidate, tags come from Surrogate-Key and Cache-Tag', async () => {
    const origin = await startOrigin((request, response) => {
      if (request.headers['if-none-match'] === '"e"') {
        response.writeHead(304, { ETag: '"e"', 'Cache-Control': 'max-age=60' });
        return void response.end();
      }
      const tags = request.url!.startsWith('/news/') ? { 'Surrogate-Key': 'news front' } : { 'Cache-Tag': 'sport,front' };
      response.writeHead(200, { ETag: '"e"', 'Cache-Control': 'max-age=60', ...tags });
      response.end(`body ${request.url}`);
    });
    const edge = await startEdge(origin.url);
    const paths = ['/news/1', '/news/2', '/sport/1', '/sport/2'];
    const labels = async () => Promise.all(paths.map(async (path) => (await get(`${edge.base}${path}`)).headers.get('x-cache')));
    await labels();
    expect(await labels()).toEqual(['HIT', 'HIT', 'HIT', 'HIT']);
    const answer = await get(`${edge.base}/news/1`);
    expect(answer.headers.get('surrogate-key')).toBeNull();

    edge.purge({ url: '/news/1' });
    await until(() => edge.ctx.logs.some((log) => log.message === 'purged 1 object(s)'));
    expect(await labels()).toEqual(['MISS', 'HIT', 'HIT', 'HIT']);

    edge.purge({ tag: 'sport', soft: true });
    await until(() => edge.ctx.logs.some((log) => log.message === 'purged 2 object(s)'));
    const before = origin.requests.length;
    expect(await labels()).toEqual(['HIT', 'HIT', 'MISS', 'MISS']);
    // Soft: revalidated with the stored ETag (a 304), the body kept.
    expect(origin.requests.slice(before).map((r) => [r.path, r.headers['if-none-match']])).toEqual([
      ['/sport/1', '"e"'],
      ['/sport/2', '"e"'],
    ]);
    expect(await labels()).toEqual(['HIT', 'HIT', 'HIT', 'HIT']);

    edge.purge({ prefix: '/news/' }, { tag: 'nothing-tagged' }, { url: 5 }, { url: '/a', tag: 'b' });
    await until(() => edge.ctx.failures.length === 2);
    expect(edge.ctx.failures.map((f) => f.reason)).toEqual(['`url` must be a non-empty string', 'a purge record needs exactly one of the fields `url`, `prefix` or `tag` (it has url, tag)']);
    expect(await labels()).toEqual(['MISS', 'MISS', 'HIT', 'HIT']);
  });

  it('emits one access record per request with the cache outcome', async () => {
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': 5 });
      response.end('hello');
    });
    const edge = await startEdge(origin.url, { name: 'paris-1' });
    await get(`${edge.base}/l`);
    await get(`${edge.base}/l`);
    await until(() => edge.log().length === 2);
    const [miss, hit] = edge.log();
    expect(miss).toMatchObject({ edge: 'paris-1', client: '127.0.0.1', method: 'GET', path: '/l', status: 200, bytes: 5, cache: 'MISS', origin_status: 200 });
    expect(hit).toMatchObject({ cache: 'HIT', bytes: 5, status: 200 });
    expect(hit.origin_status).toBeUndefined();
    expect(typeof miss.ttfb_ms).toBe('number');
    expect(miss.duration_ms as number).toBeGreaterThanOrEqual(miss.ttfb_ms as number);
    await until(() => edge.run.batches.some((batch) => batch.port === 'stats'), 2500);
    const stats = edge.run.batches.filter((batch) => batch.port === 'stats').at(-1)!.items[0];
    expect(stats).toMatchObject({ edge: 'paris-1', hits: 1, misses: 1, origin_requests: 1, bytes: 10, objects: 1 });
  });

  it('holds access records while downstream is full and sends them once it has room', async () => {
    const origin = await startOrigin((_request, response) => response.end('x'));
    let open: (() => void) | undefined;
    let full = true;
    const room = new Promise<void>((resolve) => (open = resolve));
    const edge = await startEdge(origin.url, {}, { ready: () => (full ? room : undefined) });
    for (let i = 0; i < 3; i++) await get(`${edge.base}/r${i}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(edge.log()).toEqual([]);
    full = false;
    open!();
    await until(() => edge.log().length === 3);
    expect(edge.log().map((record) => record.path)).toEqual(['/r0', '/r1', '/r2']);
    expect(edge.ctx.drops).toEqual({});
  });
});
