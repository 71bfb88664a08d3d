/**
 * `kafka.produce` writes through failures, against the real Kafka of
 * `test/services/start.sh kafka`: a `kafka.consume` → `kafka.produce` copy
 * whose producer's writes fail for a while (the request refused, or written
 * and its answer lost), injected at the client wrapper while the consumer
 * and its commits stay healthy. The process is then killed mid-failure and
 * a new one resumes from what was committed. A record acknowledged before
 * its request was written would be committed and lost; with `max_in_flight:
 * 1` every key's records must also come out in order (first copies).
 */
import { describe, expect, it, vi } from 'vitest';
import { clientsClosed, type KafkaProducer, type ProducerOptions } from '../../native/kafka/client.ts';
import { idMessages, kill, produce, readTopic, recordingLogger, startPipeline, topicsOfThisFile, unique, until } from './kafka-harness.ts';

/** Failures to inject into the sends of the pipeline's producers: how many are left, and how many there were. */
const faults = vi.hoisted(() => ({ remaining: 0, injected: 0 }));

vi.mock('../../native/kafka/client.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../native/kafka/client.ts')>();
  return {
    ...real,
    openProducer(options: ProducerOptions): KafkaProducer {
      const producer = real.openProducer(options);
      // Only the nodes' producers (the test writes its input with its own).
      if (!options.clientId.startsWith('ami-streams-')) return producer;
      return {
        ...producer,
        async send(messages, requestBytes) {
          if (faults.remaining <= 0) return producer.send(messages, requestBytes);
          faults.remaining -= 1;
          faults.injected += 1;
          // Alternately refused before writing, and written with the answer lost.
          if (faults.injected % 2 === 1) throw new Error('injected fault: connection refused');
          await producer.send(messages, requestBytes);
          throw new Error('injected fault: the broker\'s answer was lost');
        },
      };
    },
  };
});

const topics = topicsOfThisFile();
const topic = (name: string, partitions: number) => topics.topic(name, partitions);

const copy = (input: string, output: string, group: string, maxInFlight: number) => `streams: 1
name: copy
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${input}], group: ${group}, format: json, commit_interval: 50ms, max_partition_bytes: 2KiB }
  out:
    op: kafka.produce
    in: in
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topic: ${output}, key: '"k" + string(int(id) % 16)', max_in_flight: ${maxInFlight} }
`;

/**
 * Copies `total` ids; once some are written, the producer's writes fail
 * (`failures` of them), and the process is killed after the second; a new
 * process finishes the copy. Returns the output's ids, per key in offset order.
 */
async function copyThroughFailures(maxInFlight: number, total: number) {
  const [input, output] = [await topic('faults-in', 2), await topic('faults-out', 2)];
  const group = unique('g');
  // Half the input first: the writes that fail are of the other half, written only once the faults are on (a fast
  // copy could otherwise finish everything before them).
  await produce(input, idMessages(0, total / 2), 200);
  const log = recordingLogger();
  const first = startPipeline(copy(input, output, group, maxInFlight), log);
  await until('records written', () => (first.runners.get('out')!.stats.recordsIn ?? 0) > total / 5);
  faults.injected = 0;
  faults.remaining = 1000;
  await produce(input, idMessages(total / 2, total), 200);
  // Killed while its writes fail: records taken in and not written must not be committed.
  await until('two failed writes', () => faults.injected >= 2);
  kill(first);
  faults.remaining = 0;
  await clientsClosed();
  const retried = log.entries.filter((e) => e.level === 'error' && e.message.includes('cannot write to Kafka')).length;
  const second = startPipeline(copy(input, output, group, maxInFlight));
  const out = await readTopic(output, total, { timeoutMs: 90_000, settleMs: 2000 });
  await second.drain();
  const byKey = new Map<string, number[]>();
  for (const message of out) {
    const key = message.key!.toString();
    byKey.set(key, [...(byKey.get(key) ?? []), (JSON.parse(message.value!.toString()) as { id: number }).id]);
  }
  return { out, byKey, retried };
}

describe('kafka.produce through failed writes', () => {
  it('writes every record at least once, each key in order, with max_in_flight 1, across a crash mid-failure', async () => {
    const total = 8000;
    const { out, byKey, retried } = await copyThroughFailures(1, total);
    const ids = new Set(out.map((m) => (JSON.parse(m.value!.toString()) as { id: number }).id));
    const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !ids.has(i));
    console.log(`write faults (max_in_flight 1): ${total} in, ${out.length} out, ${missing.length} missing, ${out.length - ids.size} duplicates, ${faults.injected} failed writes, ${retried} retries logged`);
    expect(retried).toBeGreaterThanOrEqual(1);
    expect(missing).toEqual([]);
    for (const [key, list] of byKey) {
      // First copies in order: a retried request is written again before any later one.
      const firsts = list.filter((id, i) => list.indexOf(id) === i);
      expect(firsts, `key ${key}`).toEqual([...firsts].sort((a, b) => a - b));
    }
  });

  it('writes every record at least once with max_in_flight 4, across a crash mid-failure', async () => {
    const total = 8000;
    const { out } = await copyThroughFailures(4, total);
    const ids = new Set(out.map((m) => (JSON.parse(m.value!.toString()) as { id: number }).id));
    const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !ids.has(i));
    console.log(`write faults (max_in_flight 4): ${total} in, ${out.length} out, ${missing.length} missing, ${out.length - ids.size} duplicates, ${faults.injected} failed writes`);
    expect(missing).toEqual([]);
  });
});
