/**
 * Packed Kafka messages (several records per message, the engine's
 * cross-host edges) without a broker: the partitioner against the client
 * library's, packing and unpacking, and `kafka.produce` / `kafka.consume`
 * over a stand-in client: partitions per key, traces per record, and a
 * message's offset committed only once every record unpacked from it is
 * acknowledged.
 */
import { murmur2 as libraryMurmur2 } from '@platformatic/kafka';
import { firstValueFrom, lastValueFrom, of, toArray } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import type { ConsumerOptions, KafkaMessage, OutgoingMessage, PartitionOffset } from '../../native/kafka/client.ts';
import { keyPartition, murmur2 } from '../../native/kafka/partitioner.ts';
import kafkaConsume from '../../nodes/messaging/kafka-consume.ts';
import kafkaProduce from '../../nodes/messaging/kafka-produce.ts';
import { packedCount, packedHeader, packMessages, unpackValues } from '../../nodes/messaging/kafka/packing.ts';
import { Ack } from '../../runtime/ack.ts';
import type { Batch } from '../../runtime/types.ts';
import { fakeContext, VirtualClock } from '../helpers/fake-context.ts';

/** What the stand-in client saw: the messages written, the consumer's handlers, the offsets committed. */
const client = vi.hoisted(() => ({
  sent: [] as OutgoingMessage[][],
  partitions: 4,
  consumer: undefined as ConsumerOptions | undefined,
  commits: [] as PartitionOffset[][],
}));

vi.mock('../../native/kafka/client.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../native/kafka/client.ts')>();
  return {
    ...real,
    openProducer() {
      return {
        async send(messages: OutgoingMessage[]) {
          client.sent.push([...messages]);
        },
        async partitions() {
          return client.partitions;
        },
        close: async () => undefined,
      };
    },
    async openConsumer(options: ConsumerOptions) {
      client.consumer = options;
      return {
        member: () => undefined,
        pause() {},
        resume() {},
        async commit(offsets: PartitionOffset[]) {
          client.commits.push([...offsets]);
          return true;
        },
        close: async () => undefined,
      };
    },
  };
});

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const message = (key: string | undefined, value: unknown, headers?: Map<Buffer, Buffer>): OutgoingMessage => ({ topic: 't', value: json(value), ...(key !== undefined && { key: Buffer.from(key) }), ...(headers && { headers }) });
const values = (packed: OutgoingMessage) => unpackValues(packed.value, packedCount(packed.headers!)!).map((v) => JSON.parse(v.toString()));

describe('the partitioner', () => {
  it('gives every key the hash and partition the Kafka client gives it', () => {
    for (let n = 0; n < 3000; n++) {
      const key = Buffer.alloc(n % 41);
      for (let i = 0; i < key.length; i++) key[i] = (n * 131 + i * 29 + (n >> 4)) & 255;
      expect(murmur2(key)).toBe(libraryMurmur2(key));
      expect(keyPartition(key, 7)).toBe((libraryMurmur2(key) >>> 0) % 7);
    }
    expect(keyPartition(Buffer.from('device-42'), 12)).toBe((libraryMurmur2(Buffer.from('device-42')) >>> 0) % 12);
  });
});

describe('packing', () => {
  it('packs each partition\'s records into one message, in order, to the partition their keys give', () => {
    const input = Array.from({ length: 200 }, (_, i) => message(`device-${i % 13}`, { id: i, device: `device-${i % 13}` }));
    const packed = packMessages(input, { partitions: 4, maxBytes: 64 * 1024 });
    expect(packed.length).toBeLessThanOrEqual(4);
    const seen: number[] = [];
    for (const pack of packed) {
      expect(pack.key).toBeUndefined();
      const records = values(pack) as { id: number; device: string }[];
      for (const record of records) expect(pack.partition).toBe(keyPartition(Buffer.from(record.device), 4));
      // In the order they came.
      expect(records.map((r) => r.id)).toEqual([...records.map((r) => r.id)].sort((a, b) => a - b));
      seen.push(...records.map((r) => r.id));
    }
    expect(seen.sort((a, b) => a - b)).toEqual(input.map((_, i) => i));
  });

  it('caps a packed message at `maxBytes`, a larger record going alone, unpacked, in its partition and in order', () => {
    const small = Array.from({ length: 100 }, (_, i) => message('k', { id: i, pad: 'x'.repeat(80) }));
    const trace = new Map([[Buffer.from('traceparent'), Buffer.from('00-big')]]);
    const big = message('k', { id: 100, pad: 'y'.repeat(5000) }, trace);
    const packed = packMessages([...small.slice(0, 50), big, ...small.slice(50)], { partitions: 3, maxBytes: 1024 });
    // The big one is the message it would be unpacked (its bytes, key and headers, no pack header), to the key's partition.
    const alone = packed.find((p) => p.value === big.value)!;
    for (const pack of packed) if (pack !== alone) expect(pack.value!.length).toBeLessThanOrEqual(1024);
    expect(alone).toEqual({ ...big, partition: keyPartition(Buffer.from('k'), 3) });
    expect(packedCount(alone.headers!)).toBeUndefined();
    const ids = (p: OutgoingMessage) => (p === alone ? [JSON.parse(p.value!.toString()).id] : values(p).map((r: { id: number }) => r.id));
    expect(packed.flatMap(ids)).toEqual([...Array.from({ length: 50 }, (_, i) => i), 100, ...Array.from({ length: 50 }, (_, i) => i + 50)]);
    expect(new Set(packed.map((p) => p.partition))).toEqual(new Set([keyPartition(Buffer.from('k'), 3)]));
    expect(packed.length).toBeGreaterThan(10);
  });

  it('keeps each record\'s headers (its trace) and a partition\'s order across batches with other headers', () => {
    const trace = (id: string) => new Map([[Buffer.from('traceparent'), Buffer.from(id)]]);
    const a = trace('00-a-01');
    const b = trace('00-b-01');
    // Batch A, then batch B, then untraced records, all to one partition.
    const input = [message('k', { id: 0 }, a), message('k', { id: 1 }, new Map(a)), message('k', { id: 2 }, b), message('k', { id: 3 }), message('k', { id: 4 })];
    const packed = packMessages(input, { partitions: 2, maxBytes: 64 * 1024 });
    expect(packed.map((p) => [p.headers!.get([...p.headers!.keys()].find((k) => k.toString() === 'traceparent')!)?.toString(), values(p).map((r: { id: number }) => r.id)])).toEqual([
      ['00-a-01', [0, 1]],
      ['00-b-01', [2]],
      [undefined, [3, 4]],
    ]);
  });

  it('writes records with a fixed partition there, and keyless ones to the partition of the request\'s turn', () => {
    const fixed = packMessages([{ ...message(undefined, { id: 0 }), partition: 2 }], { partitions: 4, maxBytes: 1024 });
    expect(fixed.map((p) => p.partition)).toEqual([2]);
    const turns = [0, 1, 2, 3, 4].map((spread) => packMessages([message(undefined, { id: 0 }), message(undefined, { id: 1 })], { partitions: 4, maxBytes: 1024, spread }));
    expect(turns.map((t) => t.map((p) => p.partition))).toEqual([[0], [1], [2], [3], [0]]);
  });

  it('refuses a packed message cut short or whose count disagrees, naming what is wrong', () => {
    const [packed] = packMessages([message('k', { id: 0 }), message('k', { id: 1 })], { partitions: 1, maxBytes: 1024 });
    expect(unpackValues(packed.value, 2)).toHaveLength(2);
    expect(() => unpackValues(packed.value, 3)).toThrow(`packed message holds 2 records, its \`${packedHeader}\` header says 3`);
    expect(() => unpackValues(packed.value!.subarray(0, packed.value!.length - 2), 2)).toThrow(/cut short: record 2 says \d+ bytes/);
    expect(() => unpackValues(Buffer.from([0, 0]), 1)).toThrow('cut short: 2 bytes left');
    expect(packedCount(new Map([[Buffer.from(packedHeader), Buffer.from('x')]]))).toBe(-1);
    expect(packedCount(new Map())).toBeUndefined();
  });
});

/** The messages the consumer reads back for what the producer wrote, at offsets from `first`. */
function fetched(sent: OutgoingMessage[], first: number): KafkaMessage[] {
  return sent.map((m, i) => ({ topic: m.topic, partition: m.partition ?? 0, offset: BigInt(first + i), value: m.value, headers: m.headers ?? new Map(), timestamp: 0n, leaderEpoch: 0 }));
}

/** Lets pending promise callbacks and immediates run. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('kafka.produce and kafka.consume with packing', () => {
  it('writes a batch as one packed message per partition with `pack_bytes`, one record per message without', async () => {
    const items = Array.from({ length: 40 }, (_, i) => ({ id: i, device: `d${i % 5}` }));
    for (const pack_bytes of [0, 65536]) {
      client.sent = [];
      let acked = 0;
      const ctx = fakeContext(kafkaProduce, { brokers: ['127.0.0.1:9092'], topic: 't', key: 'device', pack_bytes });
      await lastValueFrom(kafkaProduce.create(ctx)(of<Batch>({ items, ack: new Ack(() => acked++) })), { defaultValue: undefined });
      const sent = client.sent.flat();
      expect(acked).toBe(1);
      if (pack_bytes === 0) {
        expect(sent).toHaveLength(40);
        expect(sent.every((m) => m.key !== undefined && m.partition === undefined)).toBe(true);
      } else {
        const partitions = new Set(items.map((r) => keyPartition(Buffer.from(r.device), client.partitions)));
        expect(sent).toHaveLength(partitions.size);
        expect(sent.flatMap((m) => values(m)).sort((x, y) => x.id - y.id)).toEqual(items);
      }
    }
  });

  it('hands on every record of a packed message with its offset, and commits the offset only once all are acknowledged', async () => {
    client.sent = [];
    client.consumer = undefined;
    const items = [{ id: 0 }, { id: 1 }, { id: 2 }];
    await lastValueFrom(kafkaProduce.create(fakeContext(kafkaProduce, { brokers: ['127.0.0.1:9092'], topic: 't', pack_bytes: 65536, partition: 0 }))(of<Batch>({ items, ack: new Ack() })), { defaultValue: undefined });
    const [packed] = client.sent.flat();
    const plain = message(undefined, { id: 3 });
    const corrupt = { ...message(undefined, { id: 4 }), headers: new Map([[Buffer.from(packedHeader), Buffer.from('2')]]) };

    const clock = new VirtualClock();
    const ctx = fakeContext(kafkaConsume, { brokers: ['127.0.0.1:9092'], topics: ['t'], group: 'g', format: 'json', unpack: true, commit_interval: '100ms' }, { clock });
    const batches: Batch[] = [];
    // Subscribed throughout: an unsubscribed consumer stops committing on a schedule.
    const subscription = kafkaConsume.create(ctx)(of()).subscribe((b) => batches.push(b));
    await vi.waitFor(() => expect(client.consumer).toBeDefined());
    client.consumer!.handlers.assigned([{ topic: 't', partition: 0 }]);
    client.consumer!.handlers.messages('t', 0, fetched([packed, plain, corrupt], 5));
    expect(batches).toHaveLength(1);
    const [batch] = batches;
    expect(batch.items).toEqual([{ id: 0 }, { id: 1 }, { id: 2 }, { id: 3 }]);
    expect(batch.origin).toEqual({ partition: 't/p0', offsets: [5, 5, 5, 6] });
    expect(ctx.failures.map((f) => f.reason)).toEqual([expect.stringMatching(/^packed message cut short: record 1 says \d+ bytes, 4 are left$/)]);

    // Downstream splits the batch: the records of offset 5 in one part, the rest in another.
    batch.ack.retain(2);
    batch.ack.release();
    batch.ack.release();
    await settled();
    clock.advance(1000);
    await settled();
    expect(client.commits).toEqual([]);
    batch.ack.release();
    await settled();
    clock.advance(1000);
    await settled();
    expect(client.commits).toEqual([[{ topic: 't', partition: 0, offset: 8n, leaderEpoch: 0 }]]);
    subscription.unsubscribe();
  });

  it('hands on a packed message as one item without `unpack`', async () => {
    client.consumer = undefined;
    const [packed] = packMessages([message('k', { id: 0 }), message('k', { id: 1 })], { partitions: 1, maxBytes: 1024 });
    const ctx = fakeContext(kafkaConsume, { brokers: ['127.0.0.1:9092'], topics: ['t'], group: 'g2' });
    const out = firstValueFrom(kafkaConsume.create(ctx)(of()).pipe(toArray<Batch>()), { defaultValue: [] });
    await vi.waitFor(() => expect(client.consumer).toBeDefined());
    client.consumer!.handlers.assigned([{ topic: 't', partition: 0 }]);
    client.consumer!.handlers.messages('t', 0, fetched([packed], 0));
    ctx.abort();
    const batches = await out;
    expect(batches.flatMap((b) => b.items)).toHaveLength(1);
    expect((batches[0].items[0] as { data: Buffer }).data.equals(packed.value!)).toBe(true);
  });
});
