/**
 * `http.request` through the engine against a local HTTP server that
 * records what it is sent and answers as each test scripts it: batching,
 * retries, dead letters, the concurrency limit, headers and URLs.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import httpRequest from '../../nodes/io/http-request.ts';
import type { OperatorDefinition } from '../../runtime/api.ts';
import { checkWith, collector, startPipeline } from './http-harness.ts';

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
  at: number;
}

interface TestServer {
  url: string;
  received: Received[];
  /** The most requests in progress at once. */
  maxConcurrent: number;
  close(): Promise<void>;
}

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

/** A server that answers each request with what `answer` says, after its delay. */
async function testServer(answer: (request: Received, index: number) => { status?: number; body?: string; headers?: Record<string, string>; delayMs?: number }): Promise<TestServer> {
  const received: Received[] = [];
  let concurrent = 0;
  const state = { maxConcurrent: 0 };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    concurrent++;
    state.maxConcurrent = Math.max(state.maxConcurrent, concurrent);
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const entry: Received = { method: request.method!, path: request.url!, headers: request.headers, body: text ? JSON.parse(text) : undefined, at: Date.now() };
      const index = received.push(entry) - 1;
      const { status = 200, body = '{"ok":true}', headers = {}, delayMs = 0 } = answer(entry, index);
      setTimeout(() => {
        concurrent--;
        response.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        response.end(body);
      }, delayMs);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    get maxConcurrent() {
      return state.maxConcurrent;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** `count` generated events `{i}` through `http.request` with `settings`, responses and dead letters collected. */
async function send(count: number, settings: string) {
  const responses = collector('test.responses');
  const dead = collector('test.dead');
  const engine = startPipeline(
    `streams: 1
name: http-out
nodes:
  events:
    op: generate
    with: { count: ${count} }
  post:
    op: http.request
    in: events
    with: ${settings}
  responses:
    op: test.responses
    in: post
  dead:
    op: test.dead
    in: post.dlq
`,
    [httpRequest, responses.op, dead.op] as OperatorDefinition[],
  );
  await engine.done;
  return {
    responses: responses.records as { status: number; body: unknown; record: unknown; headers: Record<string, string> }[],
    dead: dead.records as { error: string; node: string; record: unknown }[],
    stats: new Map(engine.nodeStats()).get('post')!,
  };
}

describe('http.request', () => {
  it('sends `batch` records per request as a JSON array and emits each response', async () => {
    const server = await testServer(() => ({ body: '{"stored":true}' }));
    const { responses, dead } = await send(10, `{ url: "${server.url}/ingest", batch: 4, response: json }`);
    expect(server.received.map((r) => r.body)).toEqual([
      [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }],
      [{ i: 4 }, { i: 5 }, { i: 6 }, { i: 7 }],
      [{ i: 8 }, { i: 9 }],
    ]);
    expect(server.received[0]).toMatchObject({ method: 'POST', path: '/ingest' });
    expect(server.received[0].headers['content-type']).toBe('application/json');
    expect(responses).toHaveLength(3);
    expect(responses[0]).toMatchObject({ status: 200, body: { stored: true }, record: [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }] });
    expect(dead).toEqual([]);
  });

  it('counts request bodies as bytes written and response bodies as bytes read, failed answers included', async () => {
    const server = await testServer((request) => ((request.body as { i: number }).i === 1 ? { status: 400, body: 'no' } : { body: '{"stored":true}' }));
    const { stats } = await send(3, `{ url: "${server.url}/ingest" }`);
    // Bodies `{"i":0}` .. `{"i":2}` (7 bytes each); answers 15, 2 and 15 bytes.
    expect([stats.bytesWritten, stats.bytesRead]).toEqual([21, 32]);
  });

  it('retries a 503 and succeeds when the server recovers', async () => {
    const server = await testServer((_request, index) => (index < 2 ? { status: 503, headers: { 'Retry-After': '0' } } : {}));
    const { responses, dead } = await send(1, `{ url: "${server.url}/", retry_delay: 10ms }`);
    expect(server.received).toHaveLength(3);
    expect(responses).toEqual([expect.objectContaining({ status: 200, record: { i: 0 } })]);
    expect(dead).toEqual([]);
  });

  it('waits as long as Retry-After asks, up to retry_max', async () => {
    const server = await testServer((_request, index) => (index === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : {}));
    const { responses } = await send(1, `{ url: "${server.url}/", retry_delay: 10ms, retry_max: 5s }`);
    expect(responses).toHaveLength(1);
    expect(server.received[1].at - server.received[0].at).toBeGreaterThanOrEqual(950);
  });

  it('sends records answered with a 4xx to the dead-letter port with the status and the body, and the rest on', async () => {
    const server = await testServer((request) => ((request.body as { i: number }).i === 3 ? { status: 422, body: '{"error":"field `i` must not be 3"}' } : {}));
    const { responses, dead } = await send(5, `{ url: "${server.url}/things", concurrency: 2 }`);
    expect(server.received).toHaveLength(5);
    expect(responses.map((r) => r.record)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 4 }]);
    expect(dead).toHaveLength(1);
    expect(dead[0].record).toEqual({ i: 3 });
    expect(dead[0].node).toBe('post');
    expect(dead[0].error).toBe(`POST ${server.url}/things answered 422 Unprocessable Entity: {"error":"field \`i\` must not be 3"}`);
  });

  it('sends records to the dead-letter port once retries run out, for statuses and network errors', async () => {
    const server = await testServer(() => ({ status: 503 }));
    const { dead } = await send(1, `{ url: "${server.url}/", retries: 2, retry_delay: 5ms }`);
    expect(server.received).toHaveLength(3);
    expect(dead[0].error).toBe(`POST ${server.url}/ answered 503 Service Unavailable: {"ok":true} (after 3 attempts)`);

    const closed = await testServer(() => ({}));
    await closed.close();
    const unreachable = await send(1, `{ url: "${closed.url}/", retries: 1, retry_delay: 5ms }`);
    expect(unreachable.dead[0].error).toBe(`POST ${closed.url}/ failed: ECONNREFUSED (after 2 attempts)`);
  });

  it('keeps no more than `concurrency` requests in flight', async () => {
    const server = await testServer(() => ({ delayMs: 40 }));
    const { responses } = await send(20, `{ url: "${server.url}/", concurrency: 3 }`);
    expect(responses).toHaveLength(20);
    expect(server.maxConcurrent).toBe(3);
    // Order is kept: responses come out in the order the records went in.
    expect(responses.map((r) => (r.record as { i: number }).i)).toEqual([...Array(20).keys()]);
  });

  it('sends headers from the environment and computes URLs from records', async () => {
    process.env.HTTP_TEST_API_TOKEN = 'api-secret';
    const server = await testServer(() => ({}));
    await send(3, `{ url_expr: '"${server.url}/devices/" + string(i)', method: PUT, headers: { Authorization: "Bearer \${env:HTTP_TEST_API_TOKEN}", X-Retries: 3 } }`);
    expect(server.received.map((r) => `${r.method} ${r.path}`).sort()).toEqual(['PUT /devices/0', 'PUT /devices/1', 'PUT /devices/2']);
    expect(server.received[0].headers.authorization).toBe('Bearer api-secret');
    expect(server.received[0].headers['x-retries']).toBe('3');
  });

  it('sends the credentials of a URL as Basic authorization and hides the password in dead letters', async () => {
    const server = await testServer(() => ({ status: 403, body: 'no' }));
    const withPassword = server.url.replace('http://', 'http://user:hunter2@');
    const { dead } = await send(1, `{ url: "${withPassword}/" }`);
    expect(server.received[0].headers.authorization).toBe(`Basic ${Buffer.from('user:hunter2').toString('base64')}`);
    expect(dead[0].error).toBe(`POST http://user:***@${server.url.slice('http://'.length)}/ answered 403 Forbidden: no`);
  });

  it('refuses, when checked, a node with both `url` and `url_expr` or neither', () => {
    const yaml = (settings: string) => `streams: 1
name: bad
nodes:
  events:
    op: generate
  post:
    op: http.request
    in: events
    with: ${settings}
`;
    expect(() => checkWith(yaml('{ url: "http://a/", url_expr: \'"http://b/"\' }'), [httpRequest])).toThrow('test.yaml:9:11: error: settings of `http.request`: set exactly one of `url` and `url_expr`');
    expect(() => checkWith(yaml('{ method: PUT }'), [httpRequest])).toThrow('set exactly one of `url` and `url_expr`');
    expect(() => checkWith(yaml('{ url: "ftp://a/" }'), [httpRequest])).toThrow('must start with `http://` or `https://`');
  });
});
