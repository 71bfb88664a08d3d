/**
 * Traces along the media path, as a user runs it (`streams run --otlp`):
 * ffmpeg publishes over RTMP; ingest.rtmp -> encode -> segment.hls ->
 * serve.http (the origin) -> cache (the edge). Sampled at ratio 1, a batch
 * of packets gives one trace through every node; a player's request to the
 * edge gives a SERVER span on the edge and, for a miss, one on the origin
 * that is its child.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchUntil, publish, streamsRun, type StreamsRun } from '../media/live-cli.ts';

const ports = { rtmp: 7756, origin: 7757, edge: 7758, receiver: 7759 };

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string } }[];
}

const spans: ReceivedSpan[] = [];
let receiver: Server;
let run: StreamsRun;
let dir: string;

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: { scopeSpans: { spans: ReceivedSpan[] }[] }[] };
      for (const resource of body.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans.map((s) => ({ ...s, parentSpanId: s.parentSpanId ?? '' })));
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(ports.receiver, '127.0.0.1', resolve));
  dir = mkdtempSync(join(tmpdir(), 'streams-otel-live-'));
  const file = join(dir, 'live.yaml');
  writeFileSync(file, `streams: 1
name: otel-live
nodes:
  rtmp: { op: ingest.rtmp, with: { listen: "127.0.0.1:${ports.rtmp}", app: live, keys: [k1] } }
  ladder: { op: encode, in: rtmp, with: { ladder: ["240p"], preset: ultrafast, segment: 1s, passthrough: false } }
  hls: { op: segment.hls, in: ladder, with: { segment: 1s, window: 8 } }
  origin: { op: serve.http, in: hls, with: { listen: "127.0.0.1:${ports.origin}", path_prefix: /live } }
  edge: { op: cache, with: { listen: "127.0.0.1:${ports.edge}", origin: "http://127.0.0.1:${ports.origin}" } }
`);
  run = streamsRun([file, '--otlp', `http://127.0.0.1:${ports.receiver}`, '--trace-ratio', '1']);
  await run.waitForLog('the RTMP listener', (l) => l.node === 'rtmp' && l.msg.includes('listening'));
});

afterAll(async () => {
  expect(await run.stop()).toBe(0);
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The names of a span's ancestors within what was received, nearest first. */
function ancestry(span: ReceivedSpan): string[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const names: string[] = [];
  for (let parent = byId.get(span.parentSpanId); parent; parent = byId.get(parent.parentSpanId)) names.push(parent.name);
  return names;
}

const nodeOf = (span: ReceivedSpan) => span.attributes.find((a) => a.key === 'streams.node')?.value.stringValue;

describe('traces along the media path', () => {
  it('links ingest, encode, segmenter and origin in one trace, and the edge\'s request to the origin\'s', async () => {
    const publisher = publish(`rtmp://127.0.0.1:${ports.rtmp}/live/k1`, { seconds: 4, size: '320x240', rate: 15 });
    const playlist = await fetchUntil(`http://127.0.0.1:${ports.edge}/live/k1/240p/index.m3u8`, (body) => body.includes('.m4s'));
    const segment = playlist.split('\n').find((line) => line.endsWith('.m4s') && !line.startsWith('#'))!;
    const caller = '5bf92f3577b34da6a3ce929d0e0e4736';
    const answer = await fetch(`http://127.0.0.1:${ports.edge}/live/k1/240p/${segment}`, { headers: { traceparent: `00-${caller}-00f067aa0ba902b7-01` } });
    expect(answer.status).toBe(200);
    await answer.arrayBuffer();
    await publisher.exited;
    // Spans are sent every second.
    const deadline = Date.now() + 10_000;
    const chained = () => spans.find((s) => s.name === 'origin' && ancestry(s).join(' <- ') === 'hls <- ladder <- rtmp');
    while (!chained() || !spans.some((s) => s.traceId === caller && nodeOf(s) === 'origin')) {
      if (Date.now() > deadline) throw new Error(`no complete traces in ${spans.length} spans: ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const origin = chained()!;
    expect(origin.kind).toBe(1);
    const request = spans.filter((s) => s.traceId === caller);
    const edge = request.find((s) => nodeOf(s) === 'edge')!;
    expect(edge.kind).toBe(2);
    expect(edge.parentSpanId).toBe('00f067aa0ba902b7');
    const originServer = request.find((s) => nodeOf(s) === 'origin')!;
    expect(originServer.kind).toBe(2);
    expect(originServer.parentSpanId).toBe(edge.spanId);
    console.log(`media traces: ${spans.length} spans; a batch: rtmp -> ladder -> hls -> origin; a request: edge (SERVER) -> origin (SERVER)`);
  });
});
