/**
 * `http.server` through the engine with real HTTP requests on loopback:
 * JSON and bytes in, answers only after the acknowledgement, size limits,
 * bearer tokens and HMAC signatures, bad bodies, backpressure and drain.
 */
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import httpServer from '../../nodes/io/http-server.ts';
import type { OperatorDefinition } from '../../runtime/api.ts';
import type { Engine } from '../../runtime/engine.ts';
import { VirtualClock } from '../helpers/fake-context.ts';
import { collector, freePort, recordingLogger, startPipeline, until } from './http-harness.ts';

const engines: Engine[] = [];

afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.drain({ deadlineMs: 5_000 })));
});

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  /** Milliseconds from sending to the answer. */
  tookMs: number;
}

function run(yaml: string, ops: OperatorDefinition[], clock?: VirtualClock): Engine {
  const engine = startPipeline(yaml, [httpServer, ...ops], { log: recordingLogger(), clock });
  engines.push(engine);
  return engine;
}

function pipeline(port: number, settings: string, sink = 'with: {}'): string {
  return `streams: 1
name: webhooks
nodes:
  hooks:
    op: http.server
    with: { listen: "127.0.0.1:${port}", path: /hook, ${settings} }
  received:
    op: test.collect
    in: hooks
    ${sink}
`;
}

/** Sends a request, retrying while the server is not listening yet. */
async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const started = Date.now();
    try {
      const response = await fetch(url, { method: 'POST', ...init });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, tookMs: Date.now() - started };
    } catch (error) {
      const code = ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
      if (code !== 'ECONNREFUSED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function json(value: unknown, headers: Record<string, string> = {}): RequestInit {
  return { body: JSON.stringify(value), headers: { 'Content-Type': 'application/json', ...headers } };
}

describe('http.server', () => {
  it('turns a JSON object into a record and an array into one record each', async () => {
    const port = await freePort();
    const sink = collector();
    run(pipeline(port, 'meta_field: http, headers: [X-Event]'), [sink.op]);
    const one = await send(`http://127.0.0.1:${port}/hook`, json({ a: 1 }, { 'X-Event': 'push' }));
    expect(one.status).toBe(200);
    expect(one.body).toEqual({ ok: true, records: 1 });
    const many = await send(`http://127.0.0.1:${port}/hook`, json([{ a: 2 }, { a: 3 }]));
    expect(many.body).toEqual({ ok: true, records: 2 });
    expect(sink.records.map((r) => (r as { a: number }).a)).toEqual([1, 2, 3]);
    expect((sink.records[0] as { http: unknown }).http).toEqual({ method: 'POST', path: '/hook', content_type: 'application/json', headers: { 'x-event': 'push' } });
    expect((await send(`http://127.0.0.1:${port}/elsewhere`, json({}))).status).toBe(404);
    expect((await send(`http://127.0.0.1:${port}/hook`, { method: 'GET' })).status).toBe(405);
  });

  it('passes the body through as Bytes with `format: bytes`', async () => {
    const port = await freePort();
    const sink = collector();
    run(pipeline(port, 'format: bytes'), [sink.op]);
    await send(`http://127.0.0.1:${port}/hook`, { body: 'raw,csv,line', headers: { 'Content-Type': 'text/csv' } });
    const [item] = sink.records as { data: Buffer; meta: Record<string, unknown> }[];
    expect(item.data.toString()).toBe('raw,csv,line');
    expect(item.meta).toMatchObject({ method: 'POST', path: '/hook', content_type: 'text/csv' });
  });

  it('answers only once the sink has acknowledged the record', async () => {
    const port = await freePort();
    const sink = collector('test.collect', { delayMs: 300 });
    run(pipeline(port, 'respond: on_ack'), [sink.op]);
    await send(`http://127.0.0.1:${port}/hook`, json({ warm: true }));
    const answer = await send(`http://127.0.0.1:${port}/hook`, json({ slow: true }));
    expect(answer.status).toBe(200);
    expect(answer.tookMs).toBeGreaterThanOrEqual(280);
    expect(sink.records).toContainEqual({ slow: true });
  });

  it('answers 202 at once with `respond: immediately`', async () => {
    const port = await freePort();
    const sink = collector('test.collect', { delayMs: 1000 });
    run(pipeline(port, 'respond: immediately'), [sink.op]);
    const answer = await send(`http://127.0.0.1:${port}/hook`, json({ n: 1 }));
    expect(answer.status).toBe(202);
    expect(sink.records).toEqual([]); // answered before the sink had it
    await sink.waitFor(1);
  });

  it('answers 503 with Retry-After when the acknowledgement does not come in time', async () => {
    const port = await freePort();
    const sink = collector('test.collect', { delayMs: 500 });
    run(pipeline(port, 'ack_timeout: 100ms, retry_after: 2s'), [sink.op]);
    const answer = await send(`http://127.0.0.1:${port}/hook`, json({ late: true }));
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('2');
  });

  it('times the acknowledgement on the runtime\'s clock', async () => {
    const port = await freePort();
    const clock = new VirtualClock(Date.now());
    const sink = collector('test.collect', { delayMs: 1_500 });
    run(pipeline(port, 'ack_timeout: 100ms, retry_after: 2s'), [sink.op], clock);
    let answered: Answer | undefined;
    const timers = clock.pending;
    const answer = send(`http://127.0.0.1:${port}/hook`, json({ late: true })).then((a) => (answered = a));
    await until(() => clock.pending > timers, 'the request in, its acknowledgement timer set');
    // Far past 100 ms of wall time, and the clock has not moved: no answer yet (a wall-clock timer would have sent its 503).
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(answered).toBeUndefined();
    clock.advance(100);
    const late = await answer;
    expect(late.status).toBe(503);
    expect(late.tookMs).toBeLessThan(1_500);
  });

  it('answers 503 with Retry-After while downstream is full', async () => {
    const port = await freePort();
    const sink = collector('test.collect', { delayMs: 400 });
    const engine = run(pipeline(port, 'retry_after: 3s', 'capacity: 1'), [sink.op]);
    const channel = engine.channels.find((c) => c.to === 'received')!;
    const url = `http://127.0.0.1:${port}/hook`;
    // The first is in the sink, the second fills the sink's channel: the source's gate closes.
    const first = send(url, json({ n: 1 }));
    await until(() => !channel.idle, 'the first request in the sink');
    const second = send(url, json({ n: 2 }));
    await until(() => channel.depth === 1, 'the second request in the channel');
    const third = await send(url, json({ n: 3 }));
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('3');
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect((await send(url, json({ n: 4 }))).status).toBe(200);
  });

  it('answers 413 to a declared oversized body without reading it, and to a streamed one as soon as it passes the limit', async () => {
    const port = await freePort();
    const sink = collector();
    run(pipeline(port, 'max_body: 64KiB'), [sink.op]);
    const url = `http://127.0.0.1:${port}/hook`;
    await send(url, json({ warm: true }));
    const declared = await send(url, { body: 'x'.repeat(100 * 1024), headers: { 'Content-Type': 'application/json' } });
    expect(declared.status).toBe(413);

    // Chunked, no length: the answer comes while the sender is still sending.
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (response) => {
        resolve(response.statusCode ?? 0);
        response.resume();
        request.destroy();
      });
      request.on('error', reject);
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      let written = 0;
      const pump = (): void => {
        // Never ends: a server that waited for the end would never answer.
        while (written < 64 * 1024 * 1024 && request.write(chunk)) written += chunk.length;
        if (!request.destroyed) request.once('drain', pump);
      };
      pump();
    });
    expect(status).toBe(413);
    expect(sink.records).toEqual([{ warm: true }]);
  });

  it('checks an HMAC signature of the body from a secret in the environment', async () => {
    process.env.HTTP_TEST_WEBHOOK_SECRET = 'It is a secret';
    const port = await freePort();
    const sink = collector();
    run(pipeline(port, 'hmac: { secret: "${env:HTTP_TEST_WEBHOOK_SECRET}" }'), [sink.op]);
    const url = `http://127.0.0.1:${port}/hook`;
    const body = JSON.stringify({ action: 'opened' });
    const signature = `sha256=${createHmac('sha256', 'It is a secret').update(body).digest('hex')}`;
    const headers = { 'Content-Type': 'application/json' };
    expect((await send(url, { body, headers: { ...headers, 'X-Hub-Signature-256': signature } })).status).toBe(200);
    expect((await send(url, { body, headers })).status).toBe(401);
    const tampered = JSON.stringify({ action: 'closed' });
    expect((await send(url, { body: tampered, headers: { ...headers, 'X-Hub-Signature-256': signature } })).status).toBe(401);
    expect((await send(url, { body, headers: { ...headers, 'X-Hub-Signature-256': signature.replace('sha256=', 'sha1=') } })).status).toBe(401);
    expect(sink.records).toEqual([{ action: 'opened' }]);
  });

  it('requires the bearer token when one is set', async () => {
    const port = await freePort();
    const sink = collector();
    run(pipeline(port, 'token: hook-token'), [sink.op]);
    const url = `http://127.0.0.1:${port}/hook`;
    const missing = await send(url, json({ n: 1 }));
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect((await send(url, json({ n: 2 }, { Authorization: 'Bearer wrong' }))).status).toBe(401);
    expect((await send(url, json({ n: 3 }, { Authorization: 'Bearer hook-token' }))).status).toBe(200);
    expect(sink.records).toEqual([{ n: 3 }]);
  });

  it('answers 400 to a body that is not JSON and sends it to the dead-letter port', async () => {
    const port = await freePort();
    const sink = collector();
    const dead = collector('test.dead');
    run(
      `${pipeline(port, 'methods: [POST]')}  dead:
    op: test.dead
    in: hooks.dlq
`,
      [sink.op, dead.op],
    );
    const url = `http://127.0.0.1:${port}/hook`;
    const answer = await send(url, { body: '{"truncated": ', headers: { 'Content-Type': 'application/json' } });
    expect(answer.status).toBe(400);
    expect(String(answer.body.error)).toMatch(/^the body is not JSON/);
    expect((await send(url, json([1, 2]))).status).toBe(400);
    await dead.waitFor(2);
    expect(dead.records[0]).toMatchObject({ node: 'hooks', record: { text: '{"truncated": ' } });
    expect(sink.records).toEqual([]);
  });

  it('answers the requests in flight before it stops on drain', async () => {
    const port = await freePort();
    const sink = collector('test.collect', { delayMs: 300 });
    const engine = startPipeline(pipeline(port, 'methods: [POST]'), [httpServer, sink.op]);
    const url = `http://127.0.0.1:${port}/hook`;
    await send(url, json({ warm: true }));
    const pending = send(url, json({ last: true }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const drained = engine.drain({ deadlineMs: 5_000 });
    expect((await pending).status).toBe(200);
    await drained;
    expect(sink.records).toContainEqual({ last: true });
  });
});
