/**
 * Coalescing: 1,000 concurrent requests for one cold 10 MB object through
 * the edge. Prints the origin's request count (must be 1) and the time to
 * last byte of the last waiter against that of a single request for a cold
 * object of the same size (aim: within 10 %; Varnish makes the one request
 * here too, and its waiters stream from the object in progress).
 *
 * The origin sends at a bounded rate (`--rate`, default 4 MB/s: a 10 MB
 * object takes 2.5 s), as an origin behind a real network does; on
 * loopback an unbounded origin would make the test measure only how fast
 * one process can copy 10 GB to 1,000 sockets. The origin and the clients
 * each run in a worker thread so the edge has the main thread to itself;
 * the origin paces by the clock (each tick sends what is due by then), so
 * a late tick does not slow it down, and the edge listens with a backlog
 * that takes 1,000 connections at once (the default 511 drops SYNs, and a
 * dropped SYN is retried a second later).
 *
 * Two floors in the same run: a bare HTTP server sending the object from
 * memory to as many clients, and below any HTTP, the same bytes written to
 * as many raw loopback sockets and read to their end. The raw one bounds
 * what any server on this machine can do for the last waiter.
 *
 *   node bench/cdn-coalesce.ts [--clients 1000] [--size-mb 10] [--rate 4]
 */
import { createServer, request as httpRequest, Agent } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Edge } from '../nodes/cdn/edge/edge.ts';
import { EdgeStore } from '../nodes/cdn/edge/store.ts';
import type { CachedObject } from '../nodes/cdn/edge/cached-object.ts';

interface Job {
  role: 'clients';
  url: string;
  clients: number;
}

/** The worker: `clients` raw TCP connections at once, each read to its end (no HTTP). */
interface RawJob {
  role: 'raw';
  port: number;
  clients: number;
}

interface OriginJob {
  role: 'origin';
  size: number;
  /** Bytes a second. */
  rate: number;
}

/** The worker: `clients` GETs at once; replies with each one's time to last byte (ms) and bytes. */
async function runClients(job: Job): Promise<{ ttlb: number[]; bytes: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const started = performance.now();
  const one = (): Promise<[number, number]> =>
    new Promise((resolve, reject) => {
      const request = httpRequest(job.url, { agent }, (response) => {
        let bytes = 0;
        response.on('data', (data: Buffer) => (bytes += data.length));
        response.on('end', () => resolve([performance.now() - started, bytes]));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end();
    });
  const results = await Promise.all(Array.from({ length: job.clients }, one));
  agent.destroy();
  return { ttlb: results.map((r) => r[0]), bytes: results.map((r) => r[1]) };
}

/** The raw worker: each connection's time to its end (ms) and bytes. */
async function runRawClients(job: RawJob): Promise<{ ttlb: number[]; bytes: number[] }> {
  const started = performance.now();
  const one = (): Promise<[number, number]> =>
    new Promise((resolve, reject) => {
      let bytes = 0;
      const socket = connect(job.port, '127.0.0.1');
      socket.on('data', (data: Buffer) => (bytes += data.length));
      socket.on('end', () => resolve([performance.now() - started, bytes]));
      socket.on('error', reject);
    });
  const results = await Promise.all(Array.from({ length: job.clients }, one));
  return { ttlb: results.map((r) => r[0]), bytes: results.map((r) => r[1]) };
}

/** The worker: a paced origin on a free port; posts its URL, then each request's target as it comes. */
async function runOrigin(job: OriginJob): Promise<void> {
  const object = Buffer.alloc(job.size, 0x5a);
  const origin = createServer((request, response) => {
    parentPort!.postMessage({ request: request.url ?? '' });
    response.writeHead(200, { 'Content-Type': 'video/mp4', 'Content-Length': job.size, 'Cache-Control': 'max-age=3600' });
    const started = performance.now();
    let sent = 0;
    // Paced by the clock: every 10 ms, what is due by now.
    const timer = setInterval(() => {
      const next = Math.min(job.size, Math.floor(((performance.now() - started) / 1000) * job.rate));
      if (next > sent) response.write(object.subarray(sent, next));
      sent = next;
      if (sent >= job.size) {
        clearInterval(timer);
        response.end();
      }
    }, 10);
    response.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  parentPort!.postMessage({ url: `http://127.0.0.1:${(origin.address() as AddressInfo).port}` });
}

if (!isMainThread) {
  const job = workerData as Job | OriginJob | RawJob;
  if (job.role === 'origin') await runOrigin(job);
  else if (job.role === 'raw') parentPort!.postMessage(await runRawClients(job));
  else parentPort!.postMessage(await runClients(job));
} else {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '1000' }, 'size-mb': { type: 'string', default: '10' }, rate: { type: 'string', default: '4' } } });
  const clients = Number(values.clients);
  const size = Number(values['size-mb']) * 1_000_000;
  const counts = new Map<string, number>();
  const originWorker = new Worker(new URL(import.meta.url), { workerData: { role: 'origin', size, rate: Number(values.rate) * 1_000_000 } satisfies OriginJob });
  const originUrl = await new Promise<string>((resolve, reject) => {
    originWorker.on('message', (message: { url?: string; request?: string }) => {
      if (message.url !== undefined) resolve(message.url);
      if (message.request !== undefined) counts.set(message.request, (counts.get(message.request) ?? 0) + 1);
    });
    originWorker.once('error', reject);
  });

  const edge = new Edge({
    name: 'bench',
    origin: new URL(originUrl),
    maxObject: 64 * 1024 * 1024,
    originTimeoutMs: 30_000,
    rules: [],
    defaultTtl: 60_000,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    prefetch: 0,
    store: new EdgeStore<CachedObject>({ maxBytes: 256 * 1024 * 1024, expectedObjects: 1024 }),
    now: () => Date.now(),
  });
  const server = createServer((request, response) => void edge.handle(request, response));
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  const edgeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const inWorker = (job: Omit<Job, 'role'> | RawJob): Promise<{ ttlb: number[]; bytes: number[] }> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: 'role' in job ? job : ({ ...job, role: 'clients' } satisfies Job) });
      worker.once('message', resolve);
      worker.once('error', reject);
    });

  // The floor on this machine: a bare server answering every client at once from memory, no origin, no pacing.
  const whole = Buffer.alloc(size, 0x5a);
  const bare = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'video/mp4', 'Content-Length': size });
    response.end(whole);
  });
  await new Promise<void>((resolve) => bare.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  const floor = await inWorker({ url: `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`, clients });
  bare.closeAllConnections();
  bare.close();
  // Below any HTTP server: the object's bytes written to as many raw sockets, read by as many raw clients.
  const raw = createNetServer((socket) => socket.end(whole));
  await new Promise<void>((resolve) => raw.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  const rawFloor = await inWorker({ role: 'raw', port: (raw.address() as AddressInfo).port, clients });
  raw.close();

  const single = await inWorker({ url: `${edgeUrl}/single.mp4`, clients: 1 });
  const crowd = await inWorker({ url: `${edgeUrl}/crowd.mp4`, clients });
  const complete = crowd.bytes.filter((b) => b === size).length;
  const last = Math.max(...crowd.ttlb);
  const sorted = [...crowd.ttlb].sort((a, b) => a - b);
  console.log(`coalescing: ${clients} concurrent GETs of one cold ${size / 1e6} MB object through the edge (origin paced at ${values.rate} MB/s)`);
  console.log(`  origin requests for the object: ${counts.get('/crowd.mp4')} (must be 1); clients with the whole body: ${complete}/${clients}`);
  console.log(`  single request, time to last byte: ${single.ttlb[0].toFixed(0)} ms`);
  console.log(`  ${clients} waiters, time to last byte: median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, last ${last.toFixed(0)} ms`);
  console.log(`  ratio last waiter / single: ${(last / single.ttlb[0]).toFixed(3)} (aim ≤ 1.10)`);
  const floorLast = Math.max(...floor.ttlb);
  console.log(`  floor: a bare server sending the object from memory to ${clients} clients at once: last byte at ${floorLast.toFixed(0)} ms (${((clients * size) / 1e6 / (floorLast / 1000)).toFixed(0)} MB/s over loopback)`);
  console.log(`  ratio last waiter / max(single, floor): ${(last / Math.max(single.ttlb[0], floorLast)).toFixed(3)}`);
  const rawLast = Math.max(...rawFloor.ttlb);
  const rawComplete = rawFloor.bytes.every((b) => b === size);
  console.log(`  below HTTP: the same bytes through ${clients} raw loopback sockets: last byte at ${rawLast.toFixed(0)} ms (${((clients * size) / 1e6 / (rawLast / 1000)).toFixed(0)} MB/s${rawComplete ? '' : ', SOME SHORT'}), ${(rawLast / single.ttlb[0]).toFixed(2)}x the single request: no server here can bring the last waiter under that`);
  console.log(`  ratio last waiter / raw sockets: ${(last / rawLast).toFixed(3)}`);
  console.log(`  edge counters: ${JSON.stringify(edge.counters)}`);
  edge.close();
  server.closeAllConnections();
  server.close();
  await originWorker.terminate();
}
