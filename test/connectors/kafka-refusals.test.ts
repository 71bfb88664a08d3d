/**
 * `writeIsolating` against a fake producer that answers as the Kafka client
 * does (a `MultipleErrors` of per-broker `ResponseError`s holding the produce
 * response): the broker takes or refuses each partition's batch whole, and
 * refuses for size a batch above its limit. The real broker is in
 * `kafka-refusals.services.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import type { OutgoingMessage } from '../../native/kafka/client.ts';
import { keyPartition } from '../../native/kafka/partitioner.ts';
import { tooLargeVerdicts, writeIsolating, type IsolatingProducer, type IsolatingProgress } from '../../native/kafka/refusals.ts';

const partitions = 3;

/** A broker taking batches of at most `limit` value bytes per partition, keeping what it took. */
function fakeBroker(limit: number, fail?: () => Error | undefined) {
  const log = new Map<number, string[]>();
  let sends = 0;
  const producer: IsolatingProducer = {
    async partitions() {
      return partitions;
    },
    async send(messages) {
      sends += 1;
      const injected = fail?.();
      if (injected) throw injected;
      const batches = new Map<number, OutgoingMessage[]>();
      for (const m of messages) {
        const p = m.partition !== undefined ? m.partition % partitions : m.key ? keyPartition(m.key, partitions) : 0;
        batches.set(p, [...(batches.get(p) ?? []), m]);
      }
      const answers: { index: number; errorCode: number }[] = [];
      for (const [p, batch] of batches) {
        const bytes = batch.reduce((sum, m) => sum + (m.value?.length ?? 0), 0);
        if (bytes > limit) answers.push({ index: p, errorCode: 10 });
        else {
          log.set(p, [...(log.get(p) ?? []), ...batch.map((m) => m.value!.toString().slice(0, 3))]);
          answers.push({ index: p, errorCode: 0 });
        }
      }
      if (answers.some((a) => a.errorCode !== 0)) throw produceError(answers);
    },
  };
  return { producer, log, sends: () => sends };
}

/** The client's error for a produce answer with refusals: wrapped as its retries and concurrent sends wrap it. */
function produceError(answers: { index: number; errorCode: number }[]): Error {
  const response = { responses: [{ name: 't', partitionResponses: answers }] };
  const inner = Object.assign(new Error('Received response with error while executing API Produce(v11)'), { response, errors: [new Error('The request included a message larger than the max message size the server will accept.')] });
  return Object.assign(new Error('Producing messages failed.'), { errors: [inner] });
}

const message = (id: string, bytes: number, key?: string): OutgoingMessage => ({ topic: 't', value: Buffer.from(id.padEnd(bytes, '.')), ...(key !== undefined && { key: Buffer.from(key) }) });

describe('writeIsolating', () => {
  it('writes every partition in order, once, and refuses only the records the broker refuses alone', async () => {
    const broker = fakeBroker(10_000);
    // Keys a, b and d take a partition each (checked below); d's records the broker takes at once.
    const messages = [message('a00', 3000, 'a'), message('b00', 20_000, 'b'), message('a01', 3000, 'a'), message('d00', 100, 'd'), message('a02', 30_000, 'a'), message('b01', 100, 'b'), message('a03', 5000, 'a')];
    expect(new Set(['a', 'b', 'd'].map((k) => keyPartition(Buffer.from(k), partitions))).size).toBe(3);
    const refused = await writeIsolating(broker.producer, messages);
    expect(refused.map((r) => r.message.value!.toString().slice(0, 3))).toEqual(['b00', 'a02']);
    expect(refused[0].reason).toContain('20001 bytes');
    expect(refused[0].reason).toContain('topic `t`');
    expect(refused[0].code).toBe('MESSAGE_TOO_LARGE');
    expect(broker.log.get(keyPartition(Buffer.from('a'), partitions))).toEqual(['a00', 'a01', 'a03']);
    expect(broker.log.get(keyPartition(Buffer.from('b'), partitions))).toEqual(['b01']);
    expect(broker.log.get(keyPartition(Buffer.from('d'), partitions))).toEqual(['d00']);
  });

  it('writes what `instead` gives in place of a refused message, keeping its partition in order', async () => {
    const broker = fakeBroker(10_000);
    const pack = { ...message('pk0', 15_000), partition: 1, tag: 'pack' };
    const parts = [message('pk1', 6000), message('pk2', 6000)].map((m) => ({ ...m, partition: 1 }));
    const refused = await writeIsolating(broker.producer, [message('x00', 100, undefined), pack, { ...message('y00', 100), partition: 1 }], { instead: (m) => (m.tag === 'pack' ? parts : undefined) });
    expect(refused).toEqual([]);
    expect(broker.log.get(1)).toEqual(['pk1', 'pk2', 'y00']);
  });

  it('cuts what `instead` gives into requests of `requestBytes`, as the rest, not of the default size', async () => {
    const broker = fakeBroker(8000);
    const pack = { ...message('pk0', 15_000), partition: 1, tag: 'pack' };
    const parts = [message('pk1', 3000), message('pk2', 3000), message('pk3', 3000)].map((m) => ({ ...m, partition: 1 }));
    const refused = await writeIsolating(broker.producer, [pack], { requestBytes: 7000, instead: (m) => (m.tag === 'pack' ? parts : undefined) });
    expect(refused).toEqual([]);
    expect(broker.log.get(1)).toEqual(['pk1', 'pk2', 'pk3']);
    // The pack, then its records in two requests under 7000 bytes: none of them refused (one request of all three would be).
    expect(broker.sends()).toBe(3);
  });

  it('spreads keyless records over the partitions itself, so a refusal names them', async () => {
    const broker = fakeBroker(10_000);
    const turns = new Map<string, number>();
    const refused = await writeIsolating(broker.producer, [message('k00', 100), message('k01', 20_000), message('k02', 100), message('k03', 100)], { turns });
    expect(refused.map((r) => r.message.value!.toString().slice(0, 3))).toEqual(['k01']);
    expect([...broker.log.values()].flat().sort()).toEqual(['k00', 'k02', 'k03']);
    expect(broker.log.get(0)).toEqual(['k00', 'k03']);
    expect(turns.get('t')).toBe(4);
  });

  it('goes on after a failure from the first request not written, so the requests taken before it are not written twice', async () => {
    const network = new Error('connect ECONNREFUSED');
    let sends = 0;
    // The second request fails once; the broker took the first.
    const broker = fakeBroker(10_000, () => (++sends === 2 ? network : undefined));
    const messages = [message('r00', 4000, 'a'), message('r01', 4000, 'a'), message('r02', 20_000, 'a'), message('r03', 4000, 'a'), message('r04', 4000, 'a')];
    const progress: IsolatingProgress = { done: 0, refused: [] };
    await expect(writeIsolating(broker.producer, messages, { requestBytes: 9000, progress })).rejects.toBe(network);
    expect(progress.done).toBe(2);
    const refused = await writeIsolating(broker.producer, messages, { requestBytes: 9000, progress });
    expect(broker.log.get(keyPartition(Buffer.from('a'), partitions))).toEqual(['r00', 'r01', 'r03', 'r04']);
    expect(refused.map((r) => r.message.value!.toString().slice(0, 3))).toEqual(['r02']);
    expect(progress.done).toBe(messages.length);
  });

  it('refuses a record once when the request that refused it fails later and is written again', async () => {
    const network = new Error('connect ECONNREFUSED');
    let sends = 0;
    // One partition: the request is refused, then its halves; r02 alone is refused, then r01's half fails once.
    const broker = fakeBroker(10_000, () => (++sends === 4 ? network : undefined));
    const messages = [message('r02', 20_000, 'a'), message('r01', 4000, 'a'), message('r03', 4000, 'a')];
    const progress: IsolatingProgress = { done: 0, refused: [] };
    await expect(writeIsolating(broker.producer, messages, { progress })).rejects.toBe(network);
    const refused = await writeIsolating(broker.producer, messages, { progress });
    expect(refused.map((r) => r.message.value!.toString().slice(0, 3))).toEqual(['r02']);
    expect(broker.log.get(keyPartition(Buffer.from('a'), partitions))).toEqual(['r01', 'r03']);
  });

  it('rejects as `send` does on any other failure, and when nothing was refused for size', async () => {
    const network = new Error('connect ECONNREFUSED');
    await expect(writeIsolating(fakeBroker(10, () => network).producer, [message('a', 100)])).rejects.toBe(network);
    const other = produceError([{ index: 0, errorCode: 6 }]);
    await expect(writeIsolating(fakeBroker(10, () => other).producer, [message('a', 100)])).rejects.toBe(other);
    expect(tooLargeVerdicts(produceError([{ index: 0, errorCode: 10 }, { index: 1, errorCode: 6 }]))).toBeUndefined();
    expect(tooLargeVerdicts(produceError([{ index: 2, errorCode: 18 }, { index: 1, errorCode: 0 }]))).toEqual(new Map([['t:2', 'RECORD_LIST_TOO_LARGE']]));
  });
});
