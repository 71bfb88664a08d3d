/**
 * Traces across hosts: three `streams worker` processes (Redis control,
 * Kafka between hosts) run a pipeline whose source is on host a, transform
 * on b and sink on c, exporting spans over OTLP/HTTP to a receiver inside
 * this test. One trace must hold spans from all three hosts, each consumer
 * span the child of the producer span on the host before it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openAdmin } from '../../native/kafka/client.ts';
import { uniqueName } from './worker-harness.ts';

const redisUrl = process.env.STREAMS_REDIS_URL ?? '';
const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
const bin = new URL('../../bin/streams.ts', import.meta.url).pathname;
const receiverPort = 7750;
const name = uniqueName('otel');

/** A span as the OTLP/HTTP JSON encoding carries it, with its resource's host. */
interface ReceivedSpan {
  host: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
}

const received: ReceivedSpan[] = [];
const contentTypes = new Set<string>();
let receiver: Server;
let redis: Redis;
let dir: string;
const workers: ChildProcess[] = [];

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string };
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: Omit<ReceivedSpan, 'host'>[] }[] }[];
}

/** An OTLP/HTTP receiver: POST /v1/traces with the JSON encoding (what the exporter sends). */
function startReceiver(): Promise<Server> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      contentTypes.add(String(request.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
      for (const resourceSpans of body.resourceSpans) {
        const host = resourceSpans.resource.attributes.find((a) => a.key === 'host.name')?.value.stringValue ?? '';
        for (const scope of resourceSpans.scopeSpans) {
          for (const span of scope.spans) received.push({ host, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', name: span.name, kind: span.kind });
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(receiverPort, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  if (!redisUrl || !brokers) throw new Error('STREAMS_REDIS_URL / STREAMS_KAFKA_BROKERS are not set: run `npm run services:start`');
  redis = new Redis(redisUrl);
  await redis.ping();
  dir = mkdtempSync(join(tmpdir(), 'streams-otel-'));
  receiver = await startReceiver();
});

afterAll(async () => {
  for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  const keys = await redis.keys(`streams:deploy:${name}*`);
  if (keys.length > 0) await redis.del(...keys);
  const admin = openAdmin(brokers.split(','));
  await admin.deleteTopics([`streams.${name}.gen.out.double.in`, `streams.${name}.double.out.out.in`]).catch(() => undefined);
  await admin.close();
  await redis.quit();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

function startWorker(host: string): () => string {
  const args = [bin, 'worker', '--host', host, '--control', redisUrl, '--name', name, '--otlp', `http://127.0.0.1:${receiverPort}`, '--trace-ratio', '1'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  workers.push(child);
  return () => log;
}

/** A trace with spans from every host, as its spans. */
function traceOnAllHosts(): ReceivedSpan[] | undefined {
  const hostsByTrace = new Map<string, Set<string>>();
  for (const span of received) {
    const hosts = hostsByTrace.get(span.traceId) ?? new Set();
    hosts.add(span.host);
    hostsByTrace.set(span.traceId, hosts);
  }
  for (const [traceId, hosts] of hostsByTrace) {
    if (hosts.size !== 3) continue;
    const spans = received.filter((s) => s.traceId === traceId);
    // Complete once the sink's node span on c is in.
    if (spans.some((s) => s.host === 'c' && s.name === 'out')) return spans;
  }
  return undefined;
}

describe('traces across hosts', () => {
  it('follows a batch from the source on a through the map on b to the sink on c, consumer spans children of the producer spans', async () => {
    const out = join(dir, 'out.jsonl');
    const file = join(dir, 'pipeline.yaml');
    writeFileSync(file, `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: edge }
transports:
  kafka: { brokers: "${brokers}" }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: 40, rate: 20, fields: { seq: i } } }
  double: { op: map, in: gen, place: { host: b }, with: { set: { v: "seq * 2" } } }
  out: { op: file.write, in: double, place: { host: c }, with: { path: "${out}" } }
`);
    const logs = ['a', 'b', 'c'].map(startWorker);
    const logTails = () => logs.map((log) => log().slice(-2000)).join('\n');
    await vi.waitFor(
      async () => {
        const reported = (await redis.hkeys(`streams:deploy:${name}:capabilities`)).length;
        if (reported < 3) throw new Error(`${reported} of 3 workers reported; worker logs:\n${logTails()}`);
      },
      { timeout: 40_000, interval: 100 },
    );
    const deploy = spawn(process.execPath, [bin, 'deploy', file, '--control', redisUrl, '--timeout', '20s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let deployOutput = '';
    deploy.stdout!.on('data', (chunk: Buffer) => (deployOutput += chunk.toString('utf8')));
    deploy.stderr!.on('data', (chunk: Buffer) => (deployOutput += chunk.toString('utf8')));
    const code = await new Promise<number>((resolve) => deploy.on('exit', (c) => resolve(c ?? 1)));
    expect(code, deployOutput).toBe(0);

    const spans = await vi.waitFor(
      () => traceOnAllHosts() ?? Promise.reject(new Error(`no trace with spans from a, b and c yet: ${received.length} spans received; worker logs:\n${logTails()}`)),
      { timeout: 30_000, interval: 100 },
    );
    expect([...contentTypes]).toEqual(['application/json']);
    const one = (host: string, predicate: (s: ReceivedSpan) => boolean): ReceivedSpan => {
      const found = spans.filter((s) => s.host === host && predicate(s));
      expect(found, `${host}: ${JSON.stringify(spans)}`).toHaveLength(1);
      return found[0];
    };
    const [producer, internal, consumer] = [4, 1, 5];
    // Host a: the source's root span, the transport node's span, and its PRODUCER span.
    const root = one('a', (s) => s.name === 'gen');
    expect(root.parentSpanId).toBe('');
    const sendA = one('a', (s) => s.name === '~send:gen:out:double:in');
    expect(sendA.parentSpanId).toBe(root.spanId);
    const publishA = one('a', (s) => s.kind === producer);
    expect(publishA.name).toBe(`streams.${name}.gen.out.double.in publish`);
    expect(publishA.parentSpanId).toBe(sendA.spanId);
    // Host b: the CONSUMER span continues a's producer span; the map is its child; then b's producer.
    const receiveB = one('b', (s) => s.kind === consumer);
    expect(receiveB.parentSpanId).toBe(publishA.spanId);
    const double = one('b', (s) => s.name === 'double');
    expect(double.kind).toBe(internal);
    expect(double.parentSpanId).toBe(receiveB.spanId);
    const publishB = one('b', (s) => s.kind === producer);
    expect(received.find((s) => s.spanId === publishB.parentSpanId)?.name).toBe('~send:double:out:out:in');
    // Host c: the CONSUMER span continues b's producer span; the sink is its child.
    const receiveC = one('c', (s) => s.kind === consumer);
    expect(receiveC.parentSpanId).toBe(publishB.spanId);
    expect(one('c', (s) => s.name === 'out').parentSpanId).toBe(receiveC.spanId);
    console.log(`otel: ${received.length} spans from ${new Set(received.map((s) => s.traceId)).size} traces; one trace over a, b, c: ${spans.map((s) => `${s.host}:${s.name}`).join(' -> ')}`);

    for (const child of workers) child.kill('SIGTERM');
    await Promise.all(workers.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on('exit', resolve)))));
  });
});
