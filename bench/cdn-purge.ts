/**
 * Purge latency to three edges over Redis or Kafka: the time from sending
 * a purge to the last edge's acknowledgement, against bare round trips on
 * the same bus measured the same way in the same run.
 *
 *   node bench/cdn-purge.ts [purges=300] [redis|kafka]
 *
 * Needs the Redis (STREAMS_REDIS_URL, default redis://127.0.0.1:6379) or
 * Kafka (STREAMS_KAFKA_BROKERS, default 127.0.0.1:9092) of
 * `test/services/start.sh`. Each edge is a separate child process
 * (this file run as `edge NAME CHANNEL`) holding a purge listener whose
 * cache purge counts the call. One sender stays open (as the admin API
 * keeps it) and sends the purges one at a time; a purge's time is the
 * whole `send()`: reading the registry, publishing, and waiting for the
 * three acks.
 *
 * Baselines, interleaved with the purges:
 * - echo: three more child processes (`echo NAME CHANNEL BUS`) subscribed with
 *   the bare client (ioredis; on Kafka the project's consumer and producer
 *   in native/kafka), each publishing the message back on a reply channel;
 *   the time from publishing to the third echo. This is the floor of any
 *   fan-out-and-acknowledge design on that bus.
 * - bare: publish to a channel (topic) this process reads, until the
 *   message arrives (one hop, no fan-out, no reply).
 *
 * Also prints the one-shot `sendPurge` (connect, subscribe, send, close),
 * which is what `streams purge` does after Node has started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { openProducer, type KafkaConsumer, type KafkaProducer } from '../native/kafka/client.ts';
import { ensureTopics, positionedConsumer } from '../nodes/cdn/purge/kafka-bus.ts';
import type { PurgeBusOptions } from '../nodes/cdn/purge/bus.ts';
import { startPurgeListener } from '../nodes/cdn/purge/listener.ts';
import { openPurgeSender, sendPurge } from '../nodes/cdn/purge/send.ts';

type BusKind = 'redis' | 'kafka';
const url = process.env.STREAMS_REDIS_URL ?? 'redis://127.0.0.1:6379';
const brokers = (process.env.STREAMS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const quiet = { debug: () => undefined, info: () => undefined, warn: (_f: object, m: string) => process.stderr.write(`${m}\n`), error: (_f: object, m: string) => process.stderr.write(`${m}\n`) };

function busOptions(bus: BusKind, channel: string): PurgeBusOptions {
  return bus === 'redis' ? { redis: url, channel } : { kafka: brokers, channel };
}

/** A bare publish/subscribe client of either bus, for the baselines: no registry, no protocol. */
interface BareBus {
  publish(channel: string, text: string): Promise<void>;
  /** Resolves once every message published on `channel` from then on reaches `onMessage`. */
  subscribe(channel: string, onMessage: (text: string) => void): Promise<void>;
  close(): Promise<void>;
}

function bareRedis(): BareBus {
  const subscriber = new Redis(url);
  const publisher = new Redis(url);
  const handlers = new Map<string, (text: string) => void>();
  subscriber.on('message', (channel: string, text: string) => handlers.get(channel)?.(text));
  return {
    publish: async (channel, text) => void (await publisher.publish(channel, text)),
    async subscribe(channel, onMessage) {
      handlers.set(channel, onMessage);
      await subscriber.subscribe(channel);
    },
    async close() {
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

/** Kafka: one single-partition topic per channel, read as the purge bus reads its topics (positioned by a probe), without the purge protocol. */
function bareKafka(): BareBus {
  const producer: KafkaProducer = openProducer({ brokers, clientId: 'bench-purge-bare', acks: 'all', compression: 'none', idempotent: false });
  const consumers: KafkaConsumer[] = [];
  const topic = (channel: string): string => channel.replaceAll(':', '.');
  return {
    publish: (channel, text) => producer.send([{ topic: topic(channel), value: Buffer.from(text) }]),
    async subscribe(channel, onMessage) {
      // Three echoes create the same topic at once: all but one are told it exists, which ensureTopics accepts.
      await ensureTopics(brokers, [topic(channel)]);
      consumers.push(
        await positionedConsumer({
          brokers,
          topic: topic(channel),
          group: `bench-purge-bare.${randomUUID().slice(0, 8)}`,
          from: 'latest',
          producer,
          // The positioning probes are bus messages (JSON); the baselines' are bare ids.
          onMessage: (raw) => void (raw[0] !== 0x7b && onMessage(raw.toString())),
          onFailure: (error) => process.stderr.write(`bare consumer failed: ${error.message}\n`),
        }),
      );
    },
    async close() {
      await Promise.all(consumers.map((consumer) => consumer.close().catch(() => undefined)));
      await producer.close();
    },
  };
}

const bareBus = (bus: BusKind): BareBus => (bus === 'redis' ? bareRedis() : bareKafka());

/** Child: an edge with a purge listener; says `ready` once registered. */
async function runEdge(name: string, channel: string, bus: BusKind): Promise<void> {
  let purged = 0;
  const listener = await startPurgeListener({ ...busOptions(bus, channel), edge: name }, () => ++purged, quiet);
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => void listener.stop().then(() => process.exit(0)));
}

/** Child: a bare subscriber that publishes every message back on `<channel>:echo`. */
async function runEcho(name: string, channel: string, bus: BusKind): Promise<void> {
  const client = bareBus(bus);
  await client.subscribe(channel, (text) => void client.publish(`${channel}:echo`, `${text} ${name}`));
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => void client.close().then(() => process.exit(0)));
}

function child(mode: 'edge' | 'echo', name: string, channel: string, bus: BusKind): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [import.meta.filename, mode, name, channel, bus], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.once('line', (line) => (line === 'ready' ? resolve(proc) : reject(new Error(`${mode} ${name}: ${line}`))));
    proc.once('exit', (code) => reject(new Error(`${mode} ${name} exited with ${code}`)));
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(name: string, samples: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const figures = { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  console.log(`${name.padEnd(36)} n=${String(samples.length).padStart(4)}  p50 ${figures.p50.toFixed(2).padStart(7)} ms  p95 ${figures.p95.toFixed(2).padStart(7)} ms  p99 ${figures.p99.toFixed(2).padStart(7)} ms  max ${sorted.at(-1)!.toFixed(2).padStart(7)} ms`);
  return figures;
}

async function main(purges: number, bus: BusKind): Promise<void> {
  if (bus === 'redis') {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
    } catch (error) {
      console.error(`cannot reach Redis at ${url} (${(error as Error).message}): start it with \`bash test/services/start.sh redis\` and set STREAMS_REDIS_URL`);
      process.exit(1);
    } finally {
      probe.disconnect();
    }
  }
  const channel = `bench:purge:${randomUUID().slice(0, 8)}`;
  const echoChannel = `${channel}:bare`;
  const children = await Promise.all([
    ...['edge-a', 'edge-b', 'edge-c'].map((name) => child('edge', name, channel, bus)),
    ...['echo-a', 'echo-b', 'echo-c'].map((name) => child('echo', name, echoChannel, bus)),
  ]);

  const bare = bareBus(bus);
  // Echo round trips: publish, wait for the three echoes.
  let echoWaiting: { id: string; left: number; done: () => void } | undefined;
  await bare.subscribe(`${echoChannel}:echo`, (text) => {
    if (echoWaiting && text.startsWith(`${echoWaiting.id} `) && --echoWaiting.left === 0) echoWaiting.done();
  });
  // Bare round trips: publish to ourselves.
  let bareDone: (() => void) | undefined;
  await bare.subscribe(`${channel}:self`, () => bareDone?.());

  const sender = await openPurgeSender(busOptions(bus, channel), quiet);
  const times = { purge: [] as number[], lastAck: [] as number[], echo: [] as number[], bare: [] as number[] };
  const warmup = 20;
  for (let i = 0; i < purges + warmup; i++) {
    const keep = i >= warmup;
    let started = performance.now();
    const report = await sender.send({ kind: 'url', value: `/live/${i}.m4s`, soft: false }, 2_000);
    const took = performance.now() - started;
    if (report.applied.length !== 3) throw new Error(`purge ${i}: applied by ${report.applied.length} edges, missing ${report.missing.join(', ')}`);
    if (keep) {
      times.purge.push(took);
      times.lastAck.push(Math.max(...report.applied.map((entry) => entry.ms)));
    }

    const id = `m${i}`;
    const echoed = new Promise<void>((resolve) => (echoWaiting = { id, left: 3, done: resolve }));
    started = performance.now();
    await bare.publish(echoChannel, id);
    await echoed;
    if (keep) times.echo.push(performance.now() - started);

    const arrived = new Promise<void>((resolve) => (bareDone = resolve));
    started = performance.now();
    await bare.publish(`${channel}:self`, id);
    await arrived;
    if (keep) times.bare.push(performance.now() - started);
  }
  await sender.close();

  const oneShot: number[] = [];
  for (let i = 0; i < (bus === 'redis' ? 30 : 5); i++) {
    const started = performance.now();
    const report = await sendPurge(busOptions(bus, channel), { kind: 'prefix', value: '/vod/', soft: true }, bus === 'redis' ? 2_000 : 10_000);
    if (report.applied.length !== 3) throw new Error(`one-shot purge: missing ${report.missing.join(', ')}`);
    oneShot.push(performance.now() - started);
  }

  console.log(`purge latency to 3 edges (child processes) over ${bus === 'redis' ? `Redis ${url}` : `Kafka ${brokers.join(',')}`}, ${purges} purges one at a time after ${warmup} warm-up; load ${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const purge = summary('purge: send() to last ack', times.purge);
  summary('purge: publish to last ack', times.lastAck);
  const echo = summary('baseline: publish to 3 echoes', times.echo);
  const one = summary('baseline: bare publish -> message', times.bare);
  summary('one-shot sendPurge (connect..close)', oneShot);
  console.log(`ratio purge/echo: p50 ${(purge.p50 / echo.p50).toFixed(2)}x  p99 ${(purge.p99 / echo.p99).toFixed(2)}x; purge/bare: p50 ${(purge.p50 / one.p50).toFixed(2)}x  p99 ${(purge.p99 / one.p99).toFixed(2)}x`);
  console.log(`aim p99 < 100 ms: ${purge.p99 < 100 ? 'met' : 'NOT met'} (${purge.p99.toFixed(2)} ms)`);

  for (const proc of children) proc.stdin?.end();
  await Promise.all(children.map((proc) => new Promise((resolve) => (proc.exitCode !== null ? resolve(null) : proc.once('exit', resolve)))));
  if (bus === 'redis') {
    const cleaner = new Redis(url);
    await cleaner.del(`${channel}:edges`);
    cleaner.disconnect();
  }
  await bare.close();
  process.exit(0);
}

const [mode, name, channelArg, busArg] = process.argv.slice(2);
const busOf = (text: string | undefined): BusKind => {
  if (text === undefined || text === 'redis' || text === 'kafka') return text ?? 'redis';
  console.error(`unknown bus \`${text}\`: use redis or kafka`);
  process.exit(2);
};
if (mode === 'edge') await runEdge(name, channelArg, busOf(busArg));
else if (mode === 'echo') await runEcho(name, channelArg, busOf(busArg));
else await main(Number(mode ?? 300), busOf(name));
