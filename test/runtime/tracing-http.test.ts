import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defineOperator, z, type Batch } from '../../runtime/api.ts';
import { Tracing } from '../../runtime/tracing/provider.ts';
import { startYaml, take } from '../helpers/pipeline.ts';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpan = '00f067aa0ba902b7';
const traceparent = `00-${traceId}-${callerSpan}-01`;

/** A plain HTTP server that notes the headers of what it receives. */
let target: Server;
const arrived: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  target = createServer((request, response) => {
    arrived.push(request.headers);
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }).end('ok'));
  });
  await new Promise<void>((resolve) => target.listen(7752, '127.0.0.1', resolve));
});

afterAll(() => {
  target.close();
});

/** A request to a node that may not listen yet: tried again until it connects. */
function whenListening(request: () => Promise<Response>): Promise<Response> {
  return vi.waitFor(request, { timeout: 5000, interval: 50 });
}

function spanOf(spans: readonly ReadableSpan[], predicate: (span: ReadableSpan) => boolean): ReadableSpan {
  const found = spans.filter(predicate);
  expect(found, spans.map((s) => `${s.name}/${s.kind}`).join(', ')).toHaveLength(1);
  return found[0];
}

/** A source of CMAF segments that sends none, so `serve.http` runs with nothing to serve. */
const noSegments = defineOperator({
  name: 'test.no-segments',
  summary: 'Test source: no segments.',
  doc: 'Emits nothing until stopped.',
  inputs: {},
  outputs: { out: { type: 'Segment<cmaf>', doc: 'Nothing.' } },
  settings: z.object({}),
  create(ctx) {
    return () => new Observable<Batch>((subscriber) => ctx.signal.addEventListener('abort', () => subscriber.complete()));
  },
});

describe('tracing over HTTP', () => {
  it('continues a caller\'s trace in http.server and sends it on from http.request', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new Tracing({ exporter, host: 'a', pipeline: 'http', ratio: 0 });
    const engine = startYaml(`
streams: 1
name: http
nodes:
  hook: { op: http.server, with: { listen: "127.0.0.1:7751", path: /in } }
  call: { op: http.request, in: hook, with: { url: "http://127.0.0.1:7752/out?sig=secret" } }
  done: { op: test.collect, in: call, with: { into: http-traced } }
`, { tracing });
    try {
      const response = await whenListening(() => fetch('http://127.0.0.1:7751/in', { method: 'POST', headers: { traceparent, 'content-type': 'application/json' }, body: '{"a":1}' }));
      expect(response.status).toBe(200);
      // An untraced caller with ratio 0: nothing is traced, and nothing is sent on.
      await fetch('http://127.0.0.1:7751/in', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":2}' });
    } finally {
      await engine.drain();
    }
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    const server = spanOf(spans, (s) => s.kind === SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(traceId);
    expect(server.parentSpanContext?.spanId).toBe(callerSpan);
    expect(server.attributes).toMatchObject({ 'http.request.method': 'POST', 'url.path': '/in', 'http.response.status_code': 200, 'streams.node': 'hook' });
    const call = spanOf(spans, (s) => s.name === 'call');
    expect(call.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    const client = spanOf(spans, (s) => s.kind === SpanKind.CLIENT);
    expect(client.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
    expect(client.attributes).toMatchObject({ 'url.full': 'http://127.0.0.1:7752/out', 'http.response.status_code': 200 });
    // The target sees the client span as its parent; the untraced request carries no traceparent.
    expect(arrived.map((h) => h.traceparent)).toEqual([`00-${traceId}-${client.spanContext().spanId}-01`, undefined]);
    expect(take('http-traced')).toHaveLength(2);
    arrived.length = 0;
  });

  it('gives the edge\'s and the origin\'s requests SERVER spans, the origin fetch carrying the edge\'s', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new Tracing({ exporter, host: 'edge', pipeline: 'cdn', ratio: 0 });
    const engine = startYaml(`
streams: 1
name: cdn
nodes:
  edge: { op: cache, with: { listen: "127.0.0.1:7753", origin: "http://127.0.0.1:7752" } }
  segments: { op: test.no-segments }
  origin: { op: serve.http, in: segments, with: { listen: "127.0.0.1:7754" } }
`, { tracing, extra: [noSegments] });
    try {
      const edgeAnswer = await whenListening(() => fetch('http://127.0.0.1:7753/seg.m4s?token=secret', { headers: { traceparent } }));
      expect(edgeAnswer.status).toBe(200);
      const originAnswer = await whenListening(() => fetch('http://127.0.0.1:7754/live/none/master.m3u8', { headers: { traceparent } }));
      await originAnswer.text();
      expect(originAnswer.status).toBe(404);
    } finally {
      await engine.drain();
    }
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    const edge = spanOf(spans, (s) => s.kind === SpanKind.SERVER && s.attributes['streams.node'] === 'edge');
    expect(edge.parentSpanContext?.spanId).toBe(callerSpan);
    expect(edge.attributes['url.path']).toBe('/seg.m4s');
    expect(arrived.at(-1)?.traceparent).toBe(`00-${traceId}-${edge.spanContext().spanId}-01`);
    const origin = spanOf(spans, (s) => s.kind === SpanKind.SERVER && s.attributes['streams.node'] === 'origin');
    expect(origin.parentSpanContext?.spanId).toBe(callerSpan);
    expect(origin.attributes['http.response.status_code']).toBe(404);
    arrived.length = 0;
  });
});
