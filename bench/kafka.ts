/**
 * Kafka to Kafka, windowed IoT aggregation: the engine pipeline
 * `kafka.consume (json) -> window.tumbling 1s -> aggregate -> kafka.produce`
 * against a hand-written loop on the same client doing the same
 * aggregation and producing the same results, in one run.
 *
 *   node bench/kafka.ts [readings=1000000] [rounds=3]
 *
 * Needs the broker of `test/services/start.sh kafka` (STREAMS_KAFKA_BROKERS,
 * default 127.0.0.1:9092). The readings `{"ts","device","value"}` are
 * produced once to a fresh topic (4 partitions); each round reads them all
 * with a fresh consumer group, engine and baseline alternating. A run's time
 * goes from its start (joining the group included) to the last result
 * acknowledged by the broker. Prints records per second for both (each
 * round and the medians) and the engine's ratio to the baseline.
 */
import { randomUUID } from 'node:crypto';
import { checkPipeline } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import kafkaConsume from '../nodes/messaging/kafka-consume.ts';
import kafkaProduce from '../nodes/messaging/kafka-produce.ts';
import { clientsClosed, openAdmin, openConsumer, openProducer, type KafkaMessage, type OutgoingMessage } from '../native/kafka/client.ts';
import { registry } from '../nodes/all.ts';
import type { OperatorDefinition } from '../runtime/api.ts';
import { Engine } from '../runtime/engine.ts';

const readings = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 3);
const brokers = (process.env.STREAMS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const devices = 100;
/**
 * How long a window stays open past its end: the four partitions are read
 * side by side, a fetch at a time, so event time runs several seconds apart
 * between them.
 */
const latenessMs = 30_000;
const partitions = 4;
const id = randomUUID().slice(0, 8);
const input = `bench-readings-${id}`;

/** Ten readings per millisecond of event time: one-second windows of 10,000 readings, 100 per device. */
function reading(i: number): string {
  return JSON.stringify({ ts: 1_700_000_000_000 + Math.floor(i / 10), device: `dev-${i % devices}`, value: ((i * 7919) % 10_000) / 100 });
}

async function produceReadings(): Promise<number> {
  const producer = openProducer({ brokers, clientId: 'bench-loader', acks: 'all', compression: 'none', idempotent: true });
  const started = performance.now();
  const chunk = 2000;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < readings) {
      const from = next;
      next = Math.min(readings, next + chunk);
      const messages: OutgoingMessage[] = [];
      for (let i = from; i < next; i++) messages.push({ topic: input, key: Buffer.from(`dev-${i % devices}`), value: Buffer.from(reading(i)) });
      await producer.send(messages);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  await producer.close();
  return (readings / (performance.now() - started)) * 1000;
}

interface Result {
  seconds: number;
  results: number;
  count: number;
  /** Records that came after their window closed (dropped). */
  late: number;
}

/** The engine: the pipeline below, drained once every reading has reached the window. */
async function runEngine(output: string): Promise<Result> {
  const text = `streams: 1
name: kafka-bench
nodes:
  readings:
    op: kafka.consume
    with: { brokers: "${brokers.join(',')}", topics: [${input}], group: bench-engine-${randomUUID().slice(0, 8)}, from: earliest, format: json }
  per-second:
    op: window.tumbling
    in: readings
    with: { size: 1s, time: ts, key: device, lateness: ${latenessMs}ms }
  stats:
    op: aggregate
    in: per-second
    with: { count: count(), avg: avg(value), max: max(value) }
  out:
    op: kafka.produce
    in: stats
    with: { brokers: "${brokers.join(',')}", topic: ${output}, key: string(key) }
`;
  const ops: OperatorDefinition[] = [kafkaConsume, kafkaProduce];
  const benchRegistry = new Map([...registry, ...ops.map((op) => [op.name, op] as const)]);
  const checked = checkPipeline({ file: 'bench/kafka.yaml', text, registry: benchRegistry, env: process.env });
  if (!checked.graph) throw new Error(checked.diagnostics.map(formatDiagnostic).join('\n'));
  const started = performance.now();
  const engine = new Engine(checked.graph, { registry: benchRegistry });
  engine.start();
  const window = engine.runners.get('per-second')!;
  const out = engine.runners.get('out')!;
  while (window.stats.recordsIn < readings) await new Promise((resolve) => setTimeout(resolve, 5));
  // The end is when the sink has written the last results, which the drain flushes.
  const draining = engine.drain({ deadlineMs: 5000 });
  while (out.stats.state !== 'stopped') await new Promise((resolve) => setTimeout(resolve, 2));
  const seconds = (performance.now() - started) / 1000;
  await draining;
  await clientsClosed();
  return { seconds, results: out.stats.recordsIn, count: window.stats.recordsIn, late: window.stats.dropped.get('unconnected_late') ?? 0 };
}

interface Pane {
  count: number;
  sum: number;
  max: number;
}

/** The baseline: the same client, a plain loop, the same windows and results. */
async function runBaseline(output: string): Promise<Result> {
  const started = performance.now();
  const producer = openProducer({ brokers, clientId: 'bench-baseline', acks: 'all', compression: 'none', idempotent: true });
  const open = new Map<number, Map<string, Pane>>();
  let watermark = -Infinity;
  /** Windows starting before this are closed: their late records are dropped, as the engine does. */
  let closedBefore = -Infinity;
  let count = 0;
  let late = 0;
  let results = 0;
  let sending: Promise<void> = Promise.resolve();
  const emit = (start: number, panes: Map<string, Pane>): void => {
    const messages: OutgoingMessage[] = [];
    for (const [device, pane] of panes) {
      messages.push({ topic: output, key: Buffer.from(device), value: Buffer.from(JSON.stringify({ key: device, start, end: start + 1000, count: pane.count, avg: pane.sum / pane.count, max: pane.max })) });
    }
    results += messages.length;
    sending = sending.then(() => producer.send(messages));
  };
  const closeWindows = (): void => {
    for (const [start, panes] of [...open].sort((a, b) => a[0] - b[0])) {
      if (start + 1000 + latenessMs > watermark) break;
      open.delete(start);
      closedBefore = start + 1000;
      emit(start, panes);
    }
  };
  let readAll!: () => void;
  const allRead = new Promise<void>((resolve) => (readAll = resolve));
  const consumer = await openConsumer({
    brokers,
    clientId: 'bench-baseline',
    group: `bench-baseline-${randomUUID().slice(0, 8)}`,
    topics: [input],
    from: 'earliest',
    isolation: 'read_committed',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    handlers: {
      messages(_topic, _partition, messages: KafkaMessage[]) {
        for (const message of messages) {
          const r = JSON.parse(message.value!.toString('utf8')) as { ts: number; device: string; value: number };
          if (r.ts > watermark) watermark = r.ts;
          const start = r.ts - (r.ts % 1000);
          if (start < closedBefore) {
            late++;
            continue;
          }
          let panes = open.get(start);
          if (!panes) open.set(start, (panes = new Map()));
          const pane = panes.get(r.device);
          if (pane) {
            pane.count++;
            pane.sum += r.value;
            if (r.value > pane.max) pane.max = r.value;
          } else panes.set(r.device, { count: 1, sum: r.value, max: r.value });
        }
        count += messages.length;
        closeWindows();
        if (count >= readings) readAll();
      },
      revoking() {},
      assigned() {},
      failed(error) {
        throw error;
      },
    },
  });
  await allRead;
  for (const [start, panes] of [...open].sort((a, b) => a[0] - b[0])) emit(start, panes);
  open.clear();
  await sending;
  const seconds = (performance.now() - started) / 1000;
  await consumer.close();
  await producer.close();
  return { seconds, results, count, late };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const admin = openAdmin(brokers, 'bench-admin');
const topics = [input];
try {
  await admin.createTopic(input, partitions);
  const loadRate = await produceReadings();
  console.log(`produced ${readings} readings to \`${input}\` (${partitions} partitions) at ${Math.round(loadRate)} records/s`);
  const engineRates: number[] = [];
  const baselineRates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['engine', 'baseline'] as const) : (['baseline', 'engine'] as const);
    for (const which of order) {
      const output = `bench-stats-${which}-${id}-${round}`;
      topics.push(output);
      await admin.createTopic(output, partitions);
      const result = which === 'engine' ? await runEngine(output) : await runBaseline(output);
      const rate = result.count / result.seconds;
      (which === 'engine' ? engineRates : baselineRates).push(rate);
      console.log(`round ${round + 1} ${which.padEnd(8)} ${Math.round(rate).toString().padStart(8)} records/s  (${result.count} read, ${result.results} results written, ${result.late} late, ${result.seconds.toFixed(2)} s)`);
      (globalThis as { gc?: () => void }).gc?.();
    }
  }
  const engine = median(engineRates);
  const baseline = median(baselineRates);
  console.log(`median: engine ${Math.round(engine)} records/s, hand-written client loop ${Math.round(baseline)} records/s, ratio ${(engine / baseline).toFixed(2)} (aim >= 0.8)`);
} finally {
  await admin.deleteTopics(topics).catch(() => undefined);
  await admin.close();
}
