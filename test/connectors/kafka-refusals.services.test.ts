/**
 * A record the broker can never take (issue #11): against the real Kafka of
 * `test/services/start.sh kafka`, topics made with a small
 * `max.message.bytes` refuse some records for good (MESSAGE_TOO_LARGE).
 * `kafka.produce` must write the rest, each key's records in order and
 * once, dead-letter the refused records with the reason, say so once, and
 * end: retrying the refused request for ever (what it did before) hangs.
 */
import { Observable } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaProducer, ProducerOptions } from '../../native/kafka/client.ts';
import { packedCount, unpackValues } from '../../nodes/messaging/kafka/packing.ts';
import { defineOperator, z, type Batch, type BytesItem } from '../../runtime/api.ts';
import type { Engine } from '../../runtime/engine.ts';
import { LIMIT_RETRY_MS, refusalHandler } from '../../nodes/messaging/kafka/refused-records.ts';
import { contextWithSettings, VirtualClock } from '../helpers/fake-context.ts';
import { kafkaBrokers, kafkaRegistry, kill, produce, readTopic, recordingLogger, records, startPipeline, topicsOfThisFile, unique, until, type RecordingLogger } from './kafka-harness.ts';

/**
 * The transactions of the nodes' transactional producers, in the order they
 * were begun: the records of each request written in it, and the input
 * offsets it committed (`undefined` until it commits).
 */
const transactions = vi.hoisted(() => [] as { writes: number[]; offsets?: bigint[] }[]);

vi.mock('../../native/kafka/client.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../native/kafka/client.ts')>();
  return {
    ...real,
    openProducer(options: ProducerOptions): KafkaProducer {
      const producer = real.openProducer(options);
      if (options.transactionalId === undefined) return producer;
      let open: { writes: number[]; offsets?: bigint[] } | undefined;
      return {
        ...producer,
        async begin() {
          await producer.begin();
          open = { writes: [] };
          transactions.push(open);
        },
        async send(messages, requestBytes) {
          await producer.send(messages, requestBytes);
          open?.writes.push(messages.length);
        },
        async commitTransaction(offsets) {
          await producer.commitTransaction(offsets);
          if (open) open.offsets = offsets?.offsets.map((o) => o.offset) ?? [];
          open = undefined;
        },
      };
    },
  };
});

const topics = topicsOfThisFile();

/** The batches `test.emit` sends, by name. */
const toEmit = new Map<string, BytesItem[][]>();

/** A source that sends the batches put under `from` in `toEmit`, then ends. */
const emitOperator = defineOperator({
  name: 'test.emit',
  summary: 'Test source: send given batches.',
  doc: 'Sends the batches the test put under `from`, then ends.',
  inputs: {},
  outputs: { out: { type: 'Any', doc: 'The given records.' } },
  settings: z.object({ from: z.string() }),
  create(ctx) {
    return function emitBatches() {
      return new Observable<Batch>((subscriber) => {
        for (const items of toEmit.get(ctx.settings.from) ?? []) subscriber.next({ items, ack: ctx.newAck() });
        subscriber.complete();
      });
    };
  },
});

const registry = new Map([...kafkaRegistry, [emitOperator.name, emitOperator]]);

/** A topic that refuses a record batch above `maxBytes`. */
function smallTopic(name: string, partitions: number, maxBytes: number): Promise<string> {
  return topics.topic(name, partitions, { 'max.message.bytes': String(maxBytes) });
}

/** Runs `emit → kafka.produce` (dead letters to `test.collect`) and waits, bounded, for it to end. */
async function produceAll(topic: string, batches: BytesItem[][], produce: string): Promise<{ dead: { error: string; node: string; record: BytesItem }[]; log: RecordingLogger; engine: Engine }> {
  const name = unique('emit');
  toEmit.set(name, batches);
  const into = unique('dead');
  const text = `streams: 1
name: refusals
nodes:
  src: { op: test.emit, with: { from: ${name} } }
  out:
    op: kafka.produce
    in: src
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topic: ${topic}, ${produce} }
  dead: { op: test.collect, in: out.dlq, with: { into: ${into} } }
`;
  const log = recordingLogger();
  const engine = startPipeline(text, log, registry);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the pipeline did not end in 30 s (a refused record retried for ever?); log: ${log.entries.slice(0, 3).map((e) => e.message).join(' | ')}`)), 30_000);
  });
  try {
    await Promise.race([engine.done, hung]);
  } catch (error) {
    kill(engine);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { dead: records(into) as { error: string; node: string; record: BytesItem }[], log, engine };
}

/** `kafka.consume` of `input` -> `kafka.produce` to `output` with `exactly_once` in `group`, its dead letters into `into`. */
function startExactlyOnce(name: string, { input, output, group, into }: { input: string; output: string; group: string; into: string }, log: RecordingLogger): Engine {
  return startPipeline(`streams: 1
name: ${name}
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${input}], group: ${group}, format: json, from: earliest }
  out:
    op: kafka.produce
    in: in
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topic: ${output}, exactly_once: true, transactional_id: ${unique('tx')}, group: ${group}, commit_interval: 100ms }
  dead: { op: test.collect, in: out.dlq, with: { into: ${into} } }
`, log);
}

/** A Bytes record `id` of `bytes` bytes (filled with `fill`), on stream `stream`. */
function record(id: number, bytes: number, stream: string, fill = 'a', keyframe = false): BytesItem {
  const data = Buffer.alloc(bytes, fill);
  data.write(`${String(id).padStart(4, '0')}:`);
  return { data, meta: { stream, ...(keyframe && { keyframe }) } };
}

const idOf = (value: Buffer): number => Number(value.subarray(0, 4).toString());

describe('kafka.produce and records the broker refuses for their size', () => {
  it('writes the rest in order, dead-letters the refused records with the reason, says so once, and ends', { timeout: 90_000 }, async () => {
    const topic = await smallTopic('refuse', 3, 64 * 1024);
    // Three streams in one write: cam0 and cam1 each hold a record above the limit, cam2 none.
    const items: BytesItem[] = [];
    for (let id = 0; id < 30; id++) {
      const stream = `cam${id % 3}`;
      const big = id === 7 || id === 12 || id === 22;
      items.push(record(id, big ? 100_000 + id : 1000, stream, big ? 'Z' : 'a'));
    }
    const { dead, log } = await produceAll(topic, [items.slice(0, 10), items.slice(10)], 'key: stream');

    expect(dead.map((d) => idOf(d.record.data!)).sort((a, b) => a - b)).toEqual([7, 12, 22]);
    for (const d of dead) {
      expect(d.node).toBe('out');
      // Its key and value.
      expect(d.error).toContain(`${d.record.data!.length + 4} bytes`);
      expect(d.error).toContain(`topic \`${topic}\``);
      expect(d.error).toMatch(/MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/);
      expect(d.error).toContain('`max.message.bytes` is 65536');
    }
    const written = await readTopic(topic, 27);
    expect(written).toHaveLength(27);
    const ids = written.map((m) => idOf(m.value!));
    expect(new Set(ids).size).toBe(27);
    for (const stream of ['cam0', 'cam1', 'cam2']) {
      const mine = written.filter((m) => m.key?.toString() === stream).map((m) => idOf(m.value!));
      expect(mine).toEqual(items.map((item, id) => ({ item, id })).filter(({ item, id }) => item.meta!.stream === stream && ![7, 12, 22].includes(id)).map(({ id }) => id));
    }
    // Said once for the cause, naming the topic and the size, never with the payload.
    const said = log.entries.filter((e) => e.level === 'error' && /the rest is written/.test(e.message));
    expect(said).toHaveLength(1);
    expect(said[0].message).toContain(topic);
    expect(JSON.stringify(log.entries)).not.toContain('ZZZZ');
  });

  it('writes a refused pack as its records, and counts and logs a refused keyframe of a media edge', { timeout: 90_000 }, async () => {
    // Packs of up to 64 KiB on a topic that takes 16 KiB: every full pack is refused.
    const topic = await smallTopic('refuse-packed', 2, 16 * 1024);
    const items: BytesItem[] = [];
    for (let id = 0; id < 60; id++) items.push(record(id, 3000, `cam${id % 2}`, 'a', id % 10 === 0));
    items[20] = record(20, 40_000, 'cam0', 'K', true);
    const { dead, log, engine } = await produceAll(topic, [items.slice(0, 30), items.slice(30)], 'key: stream, pack_bytes: 64KiB');

    expect(dead.map((d) => idOf(d.record.data!))).toEqual([20]);
    expect(engine.runners.get('out')!.stats.deadLetters).toBe(1);
    const keyframeLog = log.entries.filter((e) => e.level === 'error' && /keyframe of stream `cam0`/.test(e.message));
    expect(keyframeLog).toHaveLength(1);
    expect(keyframeLog[0].message).toContain('gap');
    expect(JSON.stringify(log.entries)).not.toContain('KKKK');

    const messages = await readTopic(topic, 1, { settleMs: 2000 });
    const perStream = new Map<string, number[]>();
    let count = 0;
    for (const message of messages) {
      const packed = packedCount(message.headers);
      const values = packed === undefined ? [message.value!] : unpackValues(message.value, packed);
      for (const value of values) {
        count += 1;
        const id = idOf(value);
        const stream = `cam${id % 2}`;
        perStream.set(stream, [...(perStream.get(stream) ?? []), id]);
      }
    }
    expect(count).toBe(59);
    expect(perStream.get('cam1')).toEqual(items.map((_, id) => id).filter((id) => id % 2 === 1));
    expect(perStream.get('cam0')).toEqual(items.map((_, id) => id).filter((id) => id % 2 === 0 && id !== 20));
  });

  it('with exactly_once, refuses a record above the topic\'s limit before it is sent, and the transactions go on', { timeout: 90_000 }, async () => {
    const input = await topics.topic('refuse-eos-in', 1);
    const output = await smallTopic('refuse-eos-out', 1, 64 * 1024);
    const group = unique('refuse-eos');
    // JSON events: 40 small ones, and one of about 100 KB among them.
    await produce(input, Array.from({ length: 41 }, (_, id) => ({ value: Buffer.from(JSON.stringify({ id, pad: id === 17 ? 'Z'.repeat(100_000) : 'a'.repeat(3000) })) })));
    const into = unique('eos-dead');
    const log = recordingLogger();
    const engine = startExactlyOnce('refusals-eos', { input, output, group, into }, log);
    try {
      await until('the input\'s offsets committed through the transactions', async () => (await topics.admin.committedOffsets(group, input, 1))[0] === 41n, 30_000);
      const dead = records(into) as { error: string; record: { id: number } }[];
      expect(dead.map((d) => d.record.id)).toEqual([17]);
      expect(dead[0].error).toContain('`max.message.bytes` is 65536');
      const out = await readTopic(output, 40, { isolation: 'read_committed' });
      expect(out.map((m) => (JSON.parse(m.value!.toString()) as { id: number }).id)).toEqual(Array.from({ length: 41 }, (_, id) => id).filter((id) => id !== 17));
      expect(log.entries.filter((e) => /exactly-once cannot go on/.test(e.message))).toEqual([]);
    } finally {
      await engine.drain();
    }
  });

  it('reads the topic\'s limit again after a failed read (the topic not made yet), not on every write, and says so once', { timeout: 60_000 }, async () => {
    const topic = unique('refuse-late');
    const clock = new VirtualClock(1_000_000);
    const ctx = contextWithSettings({ topic, brokers: kafkaBrokers().split(',') }, { clock });
    const refusals = refusalHandler(ctx);
    const warned = () => ctx.logs.filter((log) => log.level === 'warn' && /cannot read the `max.message.bytes`/.test(log.message));
    try {
      expect(await refusals.limit()).toBeUndefined();
      expect(warned()).toHaveLength(1);
      expect(warned()[0].message).toContain(topic);
      // The first write made the topic: its limit is there to read, but not before the retry is due.
      await topics.admin.createTopic(topic, 1, { 'max.message.bytes': String(64 * 1024) });
      clock.advance(LIMIT_RETRY_MS - 1);
      expect(await refusals.limit()).toBeUndefined();
      clock.advance(1);
      expect(await refusals.limit()).toBe(64 * 1024);
      expect(refusals.requestBytes()).toBeLessThan(64 * 1024);
      expect(warned()).toHaveLength(1);
    } finally {
      await topics.admin.deleteTopics([topic]).catch(() => undefined);
    }
  });

  it('with exactly_once, a write whose records are all refused leaves no empty transaction to commit', { timeout: 90_000 }, async () => {
    const topic = await smallTopic('refuse-eos-empty', 1, 64 * 1024);
    // No `kafka.consume` of the group upstream: the commit at the end has no offsets to add to the transaction.
    const { dead, log } = await produceAll(topic, [[record(0, 100_000, 'cam0'), record(1, 100_000, 'cam0')]], `exactly_once: true, transactional_id: ${unique('tx')}, group: ${unique('eos-empty')}, commit_interval: 100ms`);
    expect(dead.map((d) => idOf(d.record.data!))).toEqual([0, 1]);
    expect(log.entries.filter((e) => /exactly-once cannot go on/.test(e.message))).toEqual([]);
  });

  it('with exactly_once, a batch whose records are all refused writes nothing in a transaction: their offsets commit alone, and the transactions go on', { timeout: 90_000 }, async () => {
    const input = await topics.topic('refuse-eos-all-in', 1);
    const output = await smallTopic('refuse-eos-all-out', 1, 64 * 1024);
    const group = unique('refuse-eos-all');
    const event = (id: number, bytes: number) => ({ value: Buffer.from(JSON.stringify({ id, pad: 'Z'.repeat(bytes) })) });
    // Only records above the limit first: every batch the consumer makes of them is screened out whole.
    await produce(input, [event(0, 100_000), event(1, 100_000), event(2, 100_000)]);
    const into = unique('eos-all-dead');
    const log = recordingLogger();
    transactions.length = 0;
    const engine = startExactlyOnce('refusals-eos-all', { input, output, group, into }, log);
    try {
      await until('the refused records\' offsets committed', async () => (await topics.admin.committedOffsets(group, input, 1))[0] === 3n, 30_000);
      expect((records(into) as { record: { id: number } }[]).map((d) => d.record.id)).toEqual([0, 1, 2]);
      // The transactions that committed their offsets were begun by the commit, for the offsets alone:
      // no batch of refused records wrote in one, not even an empty request.
      const refusedOnly = transactions.filter((t) => t.offsets !== undefined);
      expect(refusedOnly.map((t) => t.offsets!.at(-1))).toContain(3n);
      expect(refusedOnly.flatMap((t) => t.writes)).toEqual([]);
      await produce(input, [event(3, 100), event(4, 100)]);
      await until('the later records\' offsets committed', async () => (await topics.admin.committedOffsets(group, input, 1))[0] === 5n, 30_000);
      const out = await readTopic(output, 2, { isolation: 'read_committed' });
      expect(out.map((m) => (JSON.parse(m.value!.toString()) as { id: number }).id)).toEqual([3, 4]);
      // The later records were written, each request carrying some, in transactions that went on committing.
      const later = transactions.slice(refusedOnly.length);
      expect(later.flatMap((t) => t.writes).reduce((sum, n) => sum + n, 0)).toBe(2);
      expect(later.flatMap((t) => t.writes).every((n) => n > 0)).toBe(true);
      expect(later.filter((t) => t.offsets !== undefined).map((t) => t.offsets!.at(-1))).toContain(5n);
      expect(log.entries.filter((e) => /exactly-once cannot go on/.test(e.message))).toEqual([]);
    } finally {
      await engine.drain();
    }
  });
});
