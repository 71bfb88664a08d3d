/**
 * The Kafka client choice, measured: kafkajs 2.2.4 (named by the design,
 * unreleased since 2023) against @platformatic/kafka 2 (the client the
 * Kafka operators use), producing and consuming the same JSON readings on
 * the broker of `test/services/start.sh kafka`, each with its own fresh
 * topic (4 partitions) and group, the order alternating between rounds;
 * both consumers read the same topic in a round.
 *
 *   node bench/kafka-clients.ts [records=300000] [rounds=5]
 *
 * Produce: batches of 1000, 4 in flight, idempotent, acks=all. Consume: a
 * group from the earliest offset, parsing each value as JSON. Prints
 * records per second per round and the medians.
 */
import kafkajs from 'kafkajs';
import { Admin, Consumer, Producer, ProduceAcks } from '@platformatic/kafka';
const { Kafka, logLevel } = kafkajs;

const brokers = (process.env.STREAMS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const N = Number(process.argv[2] ?? 300_000);
const rounds = Number(process.argv[3] ?? 5);
const chunk = 1000;
const inflight = 4;

function record(i: number): string {
  return JSON.stringify({ ts: 1_700_000_000_000 + i, device: `dev-${i % 100}`, value: (i * 7) % 1000 / 10 });
}

async function parallelChunks(send: (from: number, to: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const from = next;
      next = Math.min(N, next + chunk);
      await send(from, next);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
}

const kafka = new Kafka({ clientId: 'tp', brokers, logLevel: logLevel.NOTHING });

async function kjsProduce(topic: string): Promise<number> {
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  const t0 = performance.now();
  await parallelChunks((from, to) =>
    p.send({ topic, acks: -1, messages: Array.from({ length: to - from }, (_, k) => ({ key: `dev-${(from + k) % 100}`, value: record(from + k) })) }),
  );
  const ms = performance.now() - t0;
  await p.disconnect();
  return (N / ms) * 1000;
}

async function pfProduce(topic: string): Promise<number> {
  const p = new Producer({ clientId: 'tp', bootstrapBrokers: brokers, idempotent: true, acks: ProduceAcks.ALL, strict: false, autocreateTopics: false });
  const t0 = performance.now();
  await parallelChunks((from, to) =>
    p.send({ messages: Array.from({ length: to - from }, (_, k) => ({ topic, key: Buffer.from(`dev-${(from + k) % 100}`), value: Buffer.from(record(from + k)) })) }),
  );
  const ms = performance.now() - t0;
  await p.close();
  return (N / ms) * 1000;
}

async function kjsConsume(topic: string): Promise<number> {
  const c = kafka.consumer({ groupId: `tp-kjs-${topic}-${Math.random()}`, maxBytesPerPartition: 1024 * 1024, maxBytes: 10 * 1024 * 1024 });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let sum = 0; // parsed and summed, as a real consumer would, so the work is not skipped
  let t0 = 0;
  const done = new Promise<void>((resolve) => {
    c.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (t0 === 0) t0 = performance.now();
        for (const m of batch.messages) sum += (JSON.parse(m.value!.toString()) as { value: number }).value;
        count += batch.messages.length;
        if (count >= N) resolve();
      },
    });
  });
  await done;
  const ms = performance.now() - t0;
  await c.disconnect();
  if (!Number.isFinite(sum)) throw new Error('bad sum');
  return (N / ms) * 1000;
}

async function pfConsume(topic: string): Promise<number> {
  const c = new Consumer({ groupId: `tp-pf-${topic}-${Math.random()}`, clientId: 'tp', bootstrapBrokers: brokers, maxBytes: 10 * 1024 * 1024, strict: false });
  const stream = await c.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxBytesPerPartition: 1024 * 1024 });
  let count = 0;
  let sum = 0; // parsed and summed, as a real consumer would, so the work is not skipped
  let t0 = 0;
  await new Promise<void>((resolve) => {
    stream.on('data', (m) => {
      if (t0 === 0) t0 = performance.now();
      sum += (JSON.parse(m.value.toString()) as { value: number }).value;
      if (++count >= N) resolve();
    });
  });
  const ms = performance.now() - t0;
  await stream.close();
  await c.close();
  if (!Number.isFinite(sum)) throw new Error('bad sum');
  return (N / ms) * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const admin = new Admin({ clientId: 'tp', bootstrapBrokers: brokers });
const results: Record<string, number[]> = { kjsProduce: [], pfProduce: [], kjsConsume: [], pfConsume: [] };
for (let r = 0; r < rounds; r++) {
  const t1 = `tp-kjs-${Date.now()}`;
  const t2 = `tp-pf-${Date.now()}`;
  await admin.createTopics({ topics: [t1, t2], partitions: 4, replicas: 1 });
  await new Promise((res) => setTimeout(res, 1000));
  // Alternate the order, and both consumers read the same topic: the one produced by
  // kafkajs in even rounds, by @platformatic/kafka in odd ones (their record batches differ).
  const source = r % 2 === 0 ? t1 : t2;
  if (r % 2 === 0) {
    results.kjsProduce.push(await kjsProduce(t1));
    results.pfProduce.push(await pfProduce(t2));
    results.kjsConsume.push(await kjsConsume(source));
    results.pfConsume.push(await pfConsume(source));
  } else {
    results.pfProduce.push(await pfProduce(t2));
    results.kjsProduce.push(await kjsProduce(t1));
    results.pfConsume.push(await pfConsume(source));
    results.kjsConsume.push(await kjsConsume(source));
  }
  console.log(`round ${r + 1} (consumers read the ${r % 2 === 0 ? 'kafkajs' : 'platformatic'}-produced topic)`, Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(v[v.length - 1])])));
  await admin.deleteTopics({ topics: [t1, t2] });
}
console.log('median records/s', Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))])));
await admin.close();
