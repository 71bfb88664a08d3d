/**
 * Real HTTP around the `cache` operator for tests: an origin (node:http on
 * a free loopback port) that records every request it sees, an edge node
 * driven through a fake context on another free port, and a client
 * (Node's fetch, undici) that reads whole bodies.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Subject } from 'rxjs';
import cache from '../../nodes/cdn/cache.ts';
import type { Batch } from '../../runtime/api.ts';
import { batchOf, drive, fakeContext, type DriveResult, type FakeContext } from '../helpers/fake-context.ts';

/** An origin that records its requests. */
export interface TestOrigin {
  url: string;
  requests: { path: string; headers: IncomingHttpHeaders }[];
  /** Requests seen for `path` (exact request target). */
  count(path: string): number;
  close(): Promise<void>;
}

const closers: (() => Promise<void> | void)[] = [];

/** Stops every origin and edge a test started; call in `afterEach`. */
export async function stopAll(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}

/** Starts an origin answering with `handler`. */
export async function startOrigin(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<TestOrigin> {
  const requests: TestOrigin['requests'] = [];
  const server: Server = createServer((request, response) => {
    requests.push({ path: request.url ?? '', headers: request.headers });
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  closers.push(close);
  return { url: `http://127.0.0.1:${port}`, requests, count: (path) => requests.filter((r) => r.path === path).length, close };
}

/** A running edge. */
export interface TestEdge {
  base: string;
  ctx: FakeContext<unknown>;
  run: DriveResult;
  /** Sends purge records to the `purge` port. */
  purge(...records: unknown[]): void;
  /** Access records emitted so far. */
  log(): Record<string, unknown>[];
}

/** Starts a `cache` node in front of `origin` with `settings`. */
export async function startEdge(origin: string, settings: Record<string, unknown> = {}, options: { ready?: () => Promise<void> | undefined } = {}): Promise<TestEdge> {
  const ctx = fakeContext(cache, { listen: '127.0.0.1:0', origin, ...settings }, { node: 'edge-1' }) as FakeContext<unknown>;
  // A downstream that is full, as the engine's gate reports it.
  if (options.ready) Object.assign(ctx, { ready: options.ready });
  const input = new Subject<Batch>();
  const run = drive(cache.create(ctx as never), input);
  closers.push(() => run.unsubscribe());
  const deadline = Date.now() + 5000;
  let listening: { fields: object } | undefined;
  while (!(listening = ctx.logs.find((log) => log.message === 'serving the edge cache'))) {
    if (run.error !== undefined) throw run.error;
    if (Date.now() > deadline) throw new Error('edge did not listen');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const address = (listening.fields as { address: string }).address;
  return {
    base: `http://${address}`,
    ctx,
    run,
    purge: (...records) => input.next(batchOf(records)),
    log: () => run.batches.filter((batch) => batch.port === 'log').flatMap((batch) => batch.items as Record<string, unknown>[]),
  };
}

/** A GET (or another method) read whole. */
export async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(url, { headers, method });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** A request with the target sent exactly as given (fetch would normalise `..`); resolves with the status. */
export function rawGet(base: string, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${base}/`, { path: target }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Waits until `check` holds, polling every few ms (for background work such as a refresh). */
export async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
