/**
 * The cost of an edge between hosts: the Kafka hop `streams worker` puts on
 * a cross-host edge (`kafka.produce` → topic → `kafka.consume` in a group,
 * as graph/host-graph.ts builds them: events as JSON, keyed, 2 partitions)
 * against the same edge inside one engine, in one run.
 *
 *   node bench/kafka-hop.ts [records=200000] [rounds=3] [rate=2000] [batch=500]
 *
 * Needs the broker of `test/services/start.sh kafka` (STREAMS_KAFKA_BROKERS,
 * default 127.0.0.1:9092). Both sides run in this process (two engines for
 * the hop, one clock for latency). Per round and kind:
 * - throughput: `records` events in batches of `batch` (10 shows what a
 *   source of small batches gets) as fast as the edge takes them, from the
 *   first emitted to the last at the sink (the consumer has joined its
 *   group before the clock starts);
 * - latency: `rate` events/s for 5 s, each stamped when emitted and timed
 *   at the sink: p50 and p99 of those emitted after the first second (a
 *   new producer's connection and metadata warm up in it).
 * Three variants per round: the in-process edge (the baseline), the hop with
 * one batch per request, one request at a time (`batch_bytes: 1`: how
 * `kafka.produce` wrote before it pipelined), and the hop with the
 * producer's defaults (batches gathered while a request is out). Throughput
 * is also given per CPU-second of this process (both ends), which a loaded
 * machine disturbs less than records/s. Prints each round, the medians, what
 * the hop adds, and the pipelined producer against the one-batch one.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { Observable } from 'rxjs';
import { checkPipeline } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { clientsClosed, openAdmin } from '../native/kafka/client.ts';
import { registry } from '../nodes/all.ts';
import { defineOperator, sinkBatches, z, type Batch, type Logger } from '../runtime/api.ts';
import { Engine } from '../runtime/engine.ts';
import { silentLogger } from '../runtime/log.ts';

const records = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 3);
const rate = Number(process.argv[4] ?? 2000);
const batchSize = Number(process.argv[5] ?? 500);
const latencySeconds = 5;
const warmupMs = 1000;
const brokers = (process.env.STREAMS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const runId = randomUUID().slice(0, 8);
const topics: string[] = [];

/** Milliseconds on one clock for the whole process, with sub-millisecond precision. */
const clock = (): number => performance.timeOrigin + performance.now();

/** CPU seconds (user + system) this process has used. */
const cpuNow = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/** What the sink saw in the current run, and this process's CPU seconds when the first record left and the last arrived. */
const seen = { count: 0, first: Infinity, last: 0, latencies: [] as number[], sent: [] as number[], cpuFirst: 0, cpuLast: 0 };

const benchSource = defineOperator({
  name: 'bench.source',
  summary: 'Bench source: stamped events.',
  doc: 'Emits `count` events `{seq, k, sent}` in batches of `batch`, at `rate` per second when set (else as fast as downstream takes them).',
  inputs: {},
  outputs: { out: { type: 'Event<{seq: number, k: string, sent: number}>', doc: 'Stamped events.' } },
  settings: z.object({ count: z.number().int(), batch: z.number().int().default(500), rate: z.number().default(0) }),
  create(ctx) {
    const { count, batch, rate: perSecond } = ctx.settings;
    return () =>
      new Observable<Batch>((subscriber) => {
        let seq = 0;
        const started = clock();
        void (async function emit() {
          while (seq < count && !ctx.signal.aborted) {
            const wait = ctx.ready();
            if (wait) await wait;
            const size = perSecond > 0 ? Math.max(1, Math.min(batch, Math.round(perSecond / 100))) : Math.min(batch, count - seq);
            const items = [];
            const sent = clock();
            if (seq === 0) seen.cpuFirst = cpuNow();
            for (let i = 0; i < size && seq < count; i++, seq++) items.push({ seq, k: `k${seq % 16}`, sent });
            subscriber.next({ items, ack: ctx.newAck() });
            if (perSecond > 0) {
              const due = started + (seq / perSecond) * 1000;
              await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - clock())));
            } else {
              await new Promise((resolve) => setImmediate(resolve));
            }
          }
          subscriber.complete();
        })();
      });
  },
});

const benchSink = defineOperator({
  name: 'bench.sink',
  summary: 'Bench sink: counts and times events.',
  doc: 'Counts events and records each one\'s latency from its `sent` stamp.',
  inputs: { in: { type: 'Any', doc: 'Stamped events.' } },
  outputs: {},
  settings: z.object({}),
  create() {
    return sinkBatches(async (items: unknown[]) => {
      const now = clock();
      for (const item of items as { sent: number }[]) {
        seen.latencies.push(now - item.sent);
        seen.sent.push(item.sent);
        if (item.sent < seen.first) seen.first = item.sent;
      }
      seen.count += items.length;
      seen.last = now;
      seen.cpuLast = cpuNow();
    });
  },
});

const benchRegistry = new Map([...registry, ...[benchSource, benchSink].map((op) => [op.name, op] as const)]);

function engineOf(text: string, log: Logger = silentLogger): Engine {
  const checked = checkPipeline({ file: 'bench/kafka-hop.yaml', text, registry: benchRegistry, env: process.env });
  if (!checked.graph) throw new Error(checked.diagnostics.map(formatDiagnostic).join('\n'));
  return new Engine(checked.graph, { registry: benchRegistry, log });
}

const source = (count: number, perSecond: number) => `src: { op: bench.source, with: { count: ${count}, rate: ${perSecond}, batch: ${batchSize} } }`;

/** One run over an edge inside one engine. */
async function inProcess(count: number, perSecond: number): Promise<void> {
  const engine = engineOf(`streams: 1
name: hop-local
nodes:
  ${source(count, perSecond)}
  sink: { op: bench.sink, in: src }
`);
  engine.start();
  await engine.done;
}

/**
 * One run over a Kafka hop: the sending engine produces to a fresh topic,
 * the receiving one consumes it in a group. `produce` adds settings to
 * `kafka.produce` (`batch_bytes: 1` sends each batch in its own request, one
 * request at a time: the producer as it was before its writes were pipelined).
 */
const overKafka = (produce: string) => async function overKafka(count: number, perSecond: number): Promise<void> {
  const topic = `bench-hop-${runId}-${topics.length}`;
  topics.push(topic);
  const admin = openAdmin(brokers, 'bench-kafka-hop');
  await admin.createTopic(topic, 2);
  await admin.close();
  let joined!: () => void;
  const assigned = new Promise<void>((resolve) => (joined = resolve));
  // The runtime gives each node `log.child(...)`: the child must notice too.
  const noticing: Logger & { child(): Logger } = { ...silentLogger, info: (_fields, message) => message.includes('partitions assigned') && joined(), child: () => noticing };
  const receiving = engineOf(
    `streams: 1
name: hop-receive
nodes:
  receive: { op: kafka.consume, with: { brokers: "${brokers.join(',')}", topics: [${topic}], group: ${topic}, format: json, session_timeout: 6s } }
  sink: { op: bench.sink, in: receive }
`,
    noticing,
  );
  receiving.start();
  await assigned;
  const sending = engineOf(`streams: 1
name: hop-send
nodes:
  ${source(count, perSecond)}
  send: { op: kafka.produce, in: src, with: { brokers: "${brokers.join(',')}", topic: ${topic}, key: k${produce} } }
`);
  sending.start();
  await sending.done;
  while (seen.count < count) await new Promise((resolve) => setTimeout(resolve, 2));
  await receiving.drain({ deadlineMs: 5000 });
};

interface Result {
  perSecond: number;
  /** Records per CPU-second of this process (both ends; the shared broker's CPU is not counted). */
  perCpuSecond: number;
  p50: number;
  p99: number;
}

function reset(): void {
  Object.assign(seen, { count: 0, first: Infinity, last: 0, latencies: [], sent: [], cpuFirst: 0, cpuLast: 0 });
}

/** Throughput from the first record emitted to the last at the sink (a group join before is not counted), then latency at `rate`. */
async function measure(run: (count: number, perSecond: number) => Promise<void>): Promise<Result> {
  reset();
  await run(records, 0);
  const perSecond = records / ((seen.last - seen.first) / 1000);
  const perCpuSecond = records / (seen.cpuLast - seen.cpuFirst);
  reset();
  await run(rate * latencySeconds, rate);
  // The first second warms up (a new producer's connection and metadata): steady state is what an edge costs.
  const warm = seen.first + warmupMs;
  const sorted = seen.latencies.filter((_, i) => seen.sent[i] >= warm).sort((a, b) => a - b);
  return { perSecond, perCpuSecond, p50: sorted[Math.floor(sorted.length * 0.5)], p99: sorted[Math.floor(sorted.length * 0.99)] };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fmt = (r: Result) => `${Math.round(r.perSecond).toLocaleString('en')} records/s, ${Math.round(r.perCpuSecond).toLocaleString('en')} records/CPU-s, latency p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`;

const variants = [
  { label: 'in-process edge', run: inProcess },
  { label: 'kafka hop, one batch per request', run: overKafka(', batch_bytes: 1') },
  { label: 'kafka hop, pipelined (defaults)', run: overKafka('') },
];

async function main(): Promise<void> {
  console.log(`kafka hop vs in-process edge: ${records} records in batches of ${batchSize} for throughput, ${rate}/s for ${latencySeconds} s for latency, ${rounds} rounds, brokers ${brokers.join(',')}; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const results = variants.map(() => [] as Result[]);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [i, variant] of variants.entries()) {
        results[i].push(await measure(variant.run));
        console.log(`round ${round}: ${variant.label}: ${fmt(results[i].at(-1)!)}`);
      }
    }
  } finally {
    const admin = openAdmin(brokers, 'bench-kafka-hop');
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
    await clientsClosed();
  }
  const mid = (list: Result[]): Result => ({ perSecond: median(list.map((r) => r.perSecond)), perCpuSecond: median(list.map((r) => r.perCpuSecond)), p50: median(list.map((r) => r.p50)), p99: median(list.map((r) => r.p99)) });
  const [local, ...hops] = results.map(mid);
  console.log(`median ${variants[0].label}: ${fmt(local)}`);
  for (const [i, hop] of hops.entries()) {
    console.log(`median ${variants[i + 1].label}: ${fmt(hop)}`);
    console.log(`  vs in-process: ${(hop.perSecond / local.perSecond).toFixed(3)}x the records/s, ${(hop.perCpuSecond / local.perCpuSecond).toFixed(3)}x the records/CPU-s; adds ${(hop.p50 - local.p50).toFixed(2)} ms at p50 and ${(hop.p99 - local.p99).toFixed(2)} ms at p99 at ${rate} records/s`);
  }
  const [before, after] = hops;
  console.log(`pipelined vs one batch per request: ${(after.perSecond / before.perSecond).toFixed(2)}x the records/s, ${(after.perCpuSecond / before.perCpuSecond).toFixed(2)}x the records/CPU-s, p99 ${(after.p99 / before.p99).toFixed(2)}x; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

await main();
