/**
 * The edge's own JavaScript on a hit, in one process: `Edge.handle` for a
 * 256 KB segment (or a 1 KB playlist) already in the store, with a stub
 * request and response that take the header list and the body without
 * writing anything, against the least a cache must do (a `Map` lookup and
 * the same two calls, as `cdn-bare-server.ts` does). No socket, no
 * kernel, no HTTP parser: what is left is what the edge's code decides,
 * measured as the main thread's CPU time (not wall time, which a loaded
 * machine stretches) in rounds that take turns in one process.
 *
 *   node bench/cdn-hit-js.ts [rounds=15] [--size 1KB|256KB] [--against DIR]
 *
 * `--against DIR` also runs the edge of another checkout (DIR holds its
 * `nodes/cdn/edge/`; `git archive` a commit into a folder and link
 * `node_modules`) in the same turns: the paired ratio edge / baseline
 * compares two builds' hit paths with the socket taken out.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './dist.ts';
import { loadAverage, median } from './cdn-targets.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { size: { type: 'string', default: '256KB' }, against: { type: 'string' } } });
const sizes: Record<string, { path: string; bytes: number }> = { '1KB': { path: '/small.m3u8', bytes: 1024 }, '256KB': { path: '/segment.m4s', bytes: 256 * 1024 } };
const object = sizes[values.size];
if (object === undefined) throw new Error(`--size: one of ${Object.keys(sizes).join(', ')}`);
const rounds = Number(positionals[0] ?? 15);
/** CPU time a turn lasts at least, µs: the thread's CPU clock moves in scheduler ticks (4 ms at 250 Hz), a few hundredths of this. */
const turnMicros = 200_000;
/** Calls between two reads of the clock. */
const batch = 10_000;

/** A request as the server hands it over, with wrk's one header; the edge only reads it, so one serves every call. */
const request = { url: object.path, method: 'GET', rawHeaders: ['Host', '127.0.0.1:7862'], headers: { host: '127.0.0.1:7862' } };

/** A response that keeps nothing (the cost of writing is not the edge's); counts what it was given, so nothing is optimised away. */
const response = {
  destroyed: false,
  headersSent: false,
  written: 0,
  writeHead(_status: number, headers: unknown) {
    this.written += Array.isArray(headers) ? headers.length : 1;
    return this;
  },
  end(body?: Buffer) {
    this.written += body?.length ?? 0;
  },
};

type Handler = (request: unknown, response: unknown) => unknown;

/** An edge of the checkout at `checkout`, its store holding the object, as a handler. */
async function edgeHandler(checkout: string): Promise<Handler> {
  const edgeDir = join(checkout, 'nodes', 'cdn', 'edge');
  const { Edge } = await import(join(edgeDir, 'edge.ts'));
  const { EdgeStore } = await import(join(edgeDir, 'store.ts'));
  const { SharedBody } = await import(join(edgeDir, 'shared-body.ts'));
  const store = new EdgeStore({ maxBytes: 64 * 1024 * 1024, expectedObjects: 1000 });
  const now = Date.now();
  const body = Buffer.alloc(object.bytes, 7);
  // The headers nginx sends with it, as the edge stores them.
  const headers = { server: 'nginx/1.22.1', date: new Date(now).toUTCString(), 'content-type': 'text/plain', 'last-modified': new Date(now).toUTCString(), etag: '"6b1155f7-40000"', 'cache-control': 'public, max-age=3600', 'content-length': String(object.bytes) };
  store.set(object.path, {
    url: object.path,
    status: 200,
    headers,
    body: SharedBody.of([body]),
    size: object.bytes + 512,
    etag: headers.etag,
    lastModified: headers['last-modified'],
    tags: [],
    storedAt: now,
    originAge: 0,
    freshness: { cacheable: true, ttl: 3_600_000, swr: 0, sie: 0 },
    stale: false,
  });
  const edge = new Edge({ name: 'bench', origin: new URL('http://127.0.0.1:9'), maxObject: 1 << 30, originTimeoutMs: 10_000, rules: [], defaultTtl: 0, staleWhileRevalidate: 0, staleIfError: 0, prefetch: 0, store, now: () => Date.now() });
  return (request, response) => edge.handle(request, response);
}

/** The least a cache does on a hit: find the body, write the head and the body. */
function bareHandler(): Handler {
  const cache = new Map([[object.path, Buffer.alloc(object.bytes, 7)]]);
  return function bareHit(request, response) {
    const req = request as { url: string };
    const res = response as { writeHead(status: number, headers: unknown): void; end(body: Buffer): void };
    const body = cache.get(req.url)!;
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'public, max-age=60' });
    res.end(body);
  };
}

const handlers: Record<string, Handler> = { edge: await edgeHandler(root), bare: bareHandler() };
if (values.against !== undefined) handlers.baseline = await edgeHandler(resolve(values.against));

/** The main thread's CPU time, µs: a turn that loses its core to another process is not charged for the wait. */
function threadMicros(): number {
  const { user, system } = process.threadCpuUsage();
  return user + system;
}

/** CPU ns a call of `handler` over one turn. */
function turn(handler: Handler): number {
  const start = threadMicros();
  let calls = 0;
  let spent = 0;
  while (spent < turnMicros) {
    for (let i = 0; i < batch; i++) {
      if (handler(request, response) !== undefined) throw new Error('a hit was not answered synchronously');
    }
    calls += batch;
    spent = threadMicros() - start;
  }
  return (spent * 1000) / calls;
}

const names = Object.keys(handlers);
// Warm up: every handler compiled by the optimising tier before it is timed.
for (const name of names) turn(handlers[name]);
const times: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < names.length; i++) {
    const name = names[(i + round) % names.length];
    times[name].push(turn(handlers[name]));
  }
}

/** The median of each round's own ratio of `a` to `b`. */
function paired(a: number[], b: number[]): number {
  return median(a.map((ns, round) => ns / b[round]));
}
console.log(`edge's JavaScript on a ${values.size} hit (stub request and response, no socket): CPU ns a call (main thread), median of ${rounds} turns of ${turnMicros / 1000} ms; load ${loadAverage()}`);
for (const name of names) console.log(`  ${name.padEnd(9)}${median(times[name]).toFixed(1).padStart(7)} ns`);
console.log(`  edge - bare ${median(times.edge.map((ns, round) => ns - times.bare[round])).toFixed(0)} ns a hit (median of each round's difference): the edge's own work, beside the tens of µs Node and the kernel spend on a served hit (cdn-hit-path.ts)`);
if (times.baseline) console.log(`  edge / baseline paired ${paired(times.edge, times.baseline).toFixed(3)} (rounds ${Math.min(...times.edge.map((ns, round) => ns / times.baseline[round])).toFixed(3)}-${Math.max(...times.edge.map((ns, round) => ns / times.baseline[round])).toFixed(3)})`);
