/**
 * `kafka.consume` and `kafka.produce` against the real Kafka 4 broker of
 * `test/services/start.sh kafka`, run through the engine: round trips,
 * consumer groups, starting positions, dead letters, commits only after
 * acknowledgement, an unreachable broker, a broker restart, and exactly-once.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { clientsClosed } from '../../native/kafka/client.ts';
import { idCounts, idMessages, kill, produce, readTopic, recordingLogger, records, startPipeline, topicsOfThisFile, unique, until } from './kafka-harness.ts';

const services = join(import.meta.dirname, '..', 'services');
const run = promisify(execFile);

const topics = topicsOfThisFile();
const topic = (name: string, partitions?: number) => topics.topic(name, partitions);

describe('kafka.produce and kafka.consume', () => {
  it('round-trips records with keys and headers', async () => {
    const t = await topic('roundtrip', 3);
    const into = unique('roundtrip');
    const producing = startPipeline(`streams: 1
name: produce
nodes:
  gen:
    op: generate
    with: { count: 120, fields: { i: "i", device: '"dev-" + string(i % 4)' } }
  out:
    op: kafka.produce
    in: gen
    with:
      brokers: "\${env:STREAMS_KAFKA_BROKERS}"
      topic: ${t}
      key: device
      headers: { source: '"test"', n: string(i) }
      compression: lz4
`);
    await producing.done;
    const consuming = startPipeline(`streams: 1
name: consume
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${unique('g')}, format: json, kafka_field: _kafka, from: earliest }
  keep:
    op: test.collect
    in: in
    with: { into: ${into} }
`);
    const got = records(into) as { i: number; device: string; _kafka: { key: string; headers: Record<string, string>; partition: number; offset: number; timestamp: number; topic: string } }[];
    await until('120 records', () => got.length >= 120);
    await consuming.drain();
    expect(got).toHaveLength(120);
    expect(new Set(got.map((r) => r.i)).size).toBe(120);
    const partitionsByKey = new Map<string, Set<number>>();
    for (const record of got) {
      expect(record._kafka.key).toBe(record.device);
      expect(record._kafka.headers).toEqual({ source: 'test', n: String(record.i) });
      expect(record._kafka.topic).toBe(t);
      expect(record._kafka.timestamp).toBeGreaterThan(Date.now() - 120_000);
      expect(typeof record._kafka.offset).toBe('number');
      const set = partitionsByKey.get(record.device) ?? new Set();
      set.add(record._kafka.partition);
      partitionsByKey.set(record.device, set);
    }
    // One key, one partition; in order within it.
    for (const set of partitionsByKey.values()) expect(set.size).toBe(1);
    const dev0 = got.filter((r) => r.device === 'dev-0').map((r) => r.i);
    expect(dev0).toEqual([...dev0].sort((a, b) => a - b));
  });

  it('gives Bytes items their key, headers, partition, offset and timestamp in meta', async () => {
    const t = await topic('bytes');
    const into = unique('bytes');
    await produce(t, [{ key: Buffer.from('k1'), value: Buffer.from('hello'), headers: new Map([[Buffer.from('h'), Buffer.from('v')]]) }]);
    const engine = startPipeline(`streams: 1
name: bytes
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${unique('g')} }
  keep:
    op: test.collect
    in: in
    with: { into: ${into} }
`);
    const got = records(into) as { data: Buffer; meta: Record<string, unknown> }[];
    await until('1 record', () => got.length >= 1);
    await engine.drain();
    expect(got[0].data.toString()).toBe('hello');
    expect(got[0].meta).toMatchObject({ topic: t, partition: 0, offset: 0, key: 'k1', headers: { h: 'v' } });
    expect(got[0].meta.timestamp).toEqual(expect.any(Number));
  });

  it('splits the partitions between two members of one consumer group', async () => {
    const t = await topic('group', 4);
    const group = unique('g');
    const [a, b] = [unique('member-a'), unique('member-b')];
    const pipeline = (into: string) => `streams: 1
name: member
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${group}, format: json, kafka_field: _kafka, commit_interval: 100ms }
  keep:
    op: test.collect
    in: in
    with: { into: ${into} }
`;
    const logA = recordingLogger();
    const logB = recordingLogger();
    const first = startPipeline(pipeline(a), logA);
    const second = startPipeline(pipeline(b), logB);
    const assignedBoth = () =>
      [logA, logB].every((log) => {
        const last = log.entries.filter((e) => e.message.includes('partitions assigned')).at(-1);
        return last !== undefined && (last.fields.partitions as string[]).length === 2;
      });
    await until('both members to hold two partitions', assignedBoth, 60_000);
    await produce(t, idMessages(0, 400));
    const gotA = records(a) as { id: number; _kafka: { partition: number } }[];
    const gotB = records(b) as { id: number; _kafka: { partition: number } }[];
    await until('400 records between the two members', () => gotA.length + gotB.length >= 400);
    await Promise.all([first.drain(), second.drain()]);
    const partitionsA = new Set(gotA.map((r) => r._kafka.partition));
    const partitionsB = new Set(gotB.map((r) => r._kafka.partition));
    expect(partitionsA.size).toBe(2);
    expect(partitionsB.size).toBe(2);
    expect([...partitionsA].filter((p) => partitionsB.has(p))).toEqual([]);
    const { distinct, duplicates } = idCounts([...gotA, ...gotB]);
    expect(distinct.size).toBe(400);
    expect(duplicates).toBe(0);
  });

  it('hands partitions over mid-stream when a member joins, committing what was acknowledged', async () => {
    const t = await topic('rebalance', 4);
    const group = unique('g');
    const total = 12_000;
    await produce(t, idMessages(0, total), 200);
    const [a, b] = [unique('member-a'), unique('member-b')];
    const pipeline = (into: string) => `streams: 1
name: member
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${group}, format: json, commit_interval: 100ms, max_partition_bytes: 4KiB }
  slow:
    op: test.slow
    in: in
    capacity: 200
    with: { per_second: 2000 }
  keep:
    op: test.collect
    in: slow
    with: { into: ${into} }
`;
    const first = startPipeline(pipeline(a));
    await until('the first member to be under way', () => records(a).length >= 1000);
    const second = startPipeline(pipeline(b));
    await until('every record', () => idCounts([...records(a), ...records(b)]).distinct.size >= total, 60_000);
    await Promise.all([first.drain(), second.drain()]);
    const { distinct, duplicates } = idCounts([...records(a), ...records(b)]);
    console.log(`rebalance: ${total} in, ${records(a).length} to the first member, ${records(b).length} to the second, ${duplicates} duplicates`);
    expect(distinct.size).toBe(total);
    // The second member took over partitions the first had not read yet.
    expect(records(b).length).toBeGreaterThan(total / 8);
    expect(duplicates).toBeLessThan(total / 4);
  });

  it('commits what was acknowledged as the group rebalances: a member that joins re-reads none of it', async () => {
    const t = await topic('revoke-commit', 2);
    const group = unique('g');
    const total = 2000;
    await produce(t, idMessages(0, total), 200);
    const [a, b] = [unique('member-a'), unique('member-b')];
    // No commit on the interval: only the one made as the group rebalances can save the first member's work.
    const pipeline = (into: string) => `streams: 1
name: member
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${group}, format: json, commit_interval: 1h, session_timeout: 6s }
  keep:
    op: test.collect
    in: in
    with: { into: ${into} }
`;
    const log = recordingLogger();
    const first = startPipeline(pipeline(a), log);
    await until('the first member to have every record', () => records(a).length >= total);
    const second = startPipeline(pipeline(b), log);
    const assignedTwice = () => log.entries.filter((e) => e.message.endsWith('partitions assigned')).length >= 3;
    await until('the group to have rebalanced over both members', assignedTwice, 30_000);
    await produce(t, idMessages(total, total + 100));
    await until('the records written after the rebalance', () => idCounts([...records(a), ...records(b)]).distinct.size >= total + 100);
    const reread = (records(b) as { id: number }[]).filter((r) => r.id < total).length;
    await Promise.all([first.drain(), second.drain()]);
    console.log(`commit on rebalance: ${total} read by the first member, then ${reread} of them read again by the second`);
    // Before: the commit went out behind the rejoin and was refused, and the second member read its partition's ~1,000 again.
    expect(reread).toBe(0);
  });

  it('stops fetching while downstream is full', async () => {
    const t = await topic('backpressure', 2);
    const total = 20_000;
    await produce(t, idMessages(0, total), 100);
    const into = unique('slow');
    const engine = startPipeline(`streams: 1
name: backpressure
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${unique('g')}, format: json, max_partition_bytes: 4KiB }
  slow:
    op: test.slow
    in: in
    capacity: 200
    with: { per_second: 2000 }
  keep:
    op: test.collect
    in: slow
    with: { into: ${into} }
`);
    await until('records flowing', () => records(into).length >= 500);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const read = engine.runners.get('in')!.stats.recordsOut;
    const inFlight = read - records(into).length;
    console.log(`backpressure: ${read} read, ${records(into).length} written, ${inFlight} in flight`);
    // Without the pause every record would be read at once; with it, the channel
    // (200) plus what the client had fetched before pausing.
    expect(read).toBeLessThan(total / 2);
    expect(inFlight).toBeLessThan(3000);
    await engine.drain();
  });

  it('starts from the committed offset, the earliest, or the latest', async () => {
    const t = await topic('from');
    const group = unique('g');
    const consume = async (from: string, into: string, expected: number, groupName = group, beforeDrain?: () => Promise<void>) => {
      const engine = startPipeline(`streams: 1
name: from
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${groupName}, from: ${from}, format: json, commit_interval: 100ms }
  keep:
    op: test.collect
    in: in
    with: { into: ${into} }
`);
      const got = records(into);
      if (beforeDrain) await beforeDrain();
      await until(`${expected} records`, () => got.length >= expected);
      // Nothing more comes.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await engine.drain();
      await clientsClosed();
      return (got as { id: number }[]).map((r) => r.id);
    };
    await produce(t, idMessages(0, 10));
    expect(await consume('committed', unique('c1'), 10)).toEqual([...Array(10).keys()]);
    await produce(t, idMessages(10, 15));
    expect(await consume('committed', unique('c2'), 5)).toEqual([10, 11, 12, 13, 14]);
    expect(await consume('earliest', unique('e'), 15)).toHaveLength(15);
    const latest = unique('l');
    const fromLatest = await consume('latest', latest, 3, unique('g'), async () => {
      // Give the new member time to join and take the partition's end as its start.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await produce(t, idMessages(15, 18));
    });
    expect(fromLatest).toEqual([15, 16, 17]);
  });

  it('sends records that are not JSON objects to the dead-letter port and still commits them', async () => {
    const t = await topic('badjson');
    const group = unique('g');
    const [good, bad] = [unique('good'), unique('bad')];
    await produce(t, [{ value: Buffer.from('{"id":1}') }, { value: Buffer.from('not json') }, { value: Buffer.from('[1,2]') }, { value: Buffer.from('{"id":2}') }]);
    const engine = startPipeline(`streams: 1
name: badjson
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${group}, format: json, commit_interval: 100ms }
  keep:
    op: test.collect
    in: in
    with: { into: ${good} }
  dead:
    op: test.collect
    in: in.dlq
    with: { into: ${bad} }
`);
    await until('2 records and 2 dead letters', () => records(good).length >= 2 && records(bad).length >= 2);
    await engine.drain();
    await clientsClosed();
    expect(records(good)).toEqual([{ id: 1 }, { id: 2 }]);
    const letters = records(bad) as { error: string; node: string; record: { value: string; offset: number } }[];
    expect(letters.map((l) => [l.node, l.record.value, l.record.offset])).toEqual([
      ['in', 'not json', 1],
      ['in', '[1,2]', 2],
    ]);
    expect(letters[0].error).toMatch(/JSON/);
    expect(letters[1].error).toBe('expected a JSON object, got an array');
    expect(await topics.admin.committedOffsets(group, t, 1)).toEqual([4n]);
  });

  it('commits only what the graph acknowledged: after a crash the rest comes again', async () => {
    const t = await topic('acks');
    const group = unique('g');
    const [held, second] = [unique('held'), unique('second')];
    const pipeline = (into: string, hold: string) => `streams: 1
name: acks
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${t}], group: ${group}, format: json, commit_interval: 100ms }
  keep:
    op: test.collect
    in: in
    with: { into: ${into}${hold} }
`;
    await produce(t, idMessages(0, 50));
    const first = startPipeline(pipeline(held, ', hold_after: 1'));
    await until('the first batch', () => records(held).length >= 50);
    await until('offset 50 committed', async () => (await topics.admin.committedOffsets(group, t, 1))[0] === 50n);
    // More records: the sink takes them and never acknowledges them.
    await produce(t, idMessages(50, 80));
    await until('the held batch', () => records(held).length >= 80);
    await new Promise((resolve) => setTimeout(resolve, 500));
    kill(first);
    await clientsClosed();
    expect(await topics.admin.committedOffsets(group, t, 1)).toEqual([50n]);
    const again = startPipeline(pipeline(second, ''));
    await until('the unacknowledged records again', () => records(second).length >= 30);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await again.drain();
    expect((records(second) as { id: number }[]).map((r) => r.id)).toEqual(Array.from({ length: 30 }, (_, k) => 50 + k));
  });

  it('reports an unreachable broker with the node and brokers, retries with backoff, and keeps the graph running', async () => {
    const log = recordingLogger();
    const engine = startPipeline(`streams: 1
name: unreachable
nodes:
  in:
    op: kafka.consume
    with: { brokers: "127.0.0.1:1", topics: [nowhere], group: g }
  keep:
    op: test.collect
    in: in
    with: { into: ${unique('nothing')} }
  gen:
    op: generate
    with: { count: 10 }
  out:
    op: kafka.produce
    in: gen
    with: { brokers: "127.0.0.1:1", topic: nowhere }
`, log);
    const failures = () => log.entries.filter((e) => e.level === 'error' && e.message.startsWith('node `in` (kafka-test.yaml:4) failed'));
    await until('two failures of the consumer', () => failures().length >= 2, 60_000);
    expect(failures()[0].fields.error).toMatch(/^node `in` \(kafka-test.yaml:4\): cannot consume from Kafka at 127\.0\.0\.1:1 \(group `g`, topics `nowhere`\): .*127\.0\.0\.1:1/);
    expect(failures()[1].fields.restartInMs as number).toBeGreaterThan(failures()[0].fields.restartInMs as number);
    await until('a write failure of the producer', () => log.entries.some((e) => e.level === 'error' && e.message.startsWith('node `out` (kafka-test.yaml:14): cannot write to Kafka at 127.0.0.1:1')), 60_000);
    expect(engine.runners.get('in')!.stats.restarts).toBeGreaterThanOrEqual(1);
    await engine.drain({ deadlineMs: 2000 });
  });
});

describe('faults', () => {
  it('loses nothing when Kafka restarts mid-stream', async () => {
    const [input, output] = [await topic('restart-in', 2), await topic('restart-out', 2)];
    const total = 30_000;
    await produce(input, idMessages(0, total));
    const log = recordingLogger();
    const engine = startPipeline(`streams: 1
name: restart
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${input}], group: ${unique('g')}, commit_interval: 200ms }
  slow:
    op: test.slow
    in: in
    with: { per_second: 2500 }
  out:
    op: kafka.produce
    in: slow
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topic: ${output} }
`, log);
    await until('records flowing', () => (engine.runners.get('out')!.stats.recordsIn ?? 0) > 3000, 30_000);
    await run('bash', [join(services, 'stop.sh'), 'kafka']);
    await run('bash', [join(services, 'start.sh'), 'kafka']);
    const out = await readTopic(output, total, { timeoutMs: 120_000, settleMs: 3000 });
    await engine.drain();
    const { distinct, duplicates } = idCounts(out.map((m) => JSON.parse(m.value!.toString())));
    console.log(`kafka restart: ${total} in, ${out.length} out, ${distinct.size} distinct, ${duplicates} duplicates, consumer restarts ${engine.runners.get('in')!.stats.restarts}`);
    expect(distinct.size).toBe(total);
  }, 240_000);

  it('writes each input exactly once across a crash with exactly_once', async () => {
    const [input, output] = [await topic('eos-in', 2), await topic('eos-out', 2)];
    const group = unique('g');
    const transactionalId = unique('tx');
    const total = 6000;
    // Small producer batches and fetches, so that the crash falls between transactions.
    await produce(input, idMessages(0, total), 100);
    const pipeline = `streams: 1
name: eos
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${input}], group: ${group}, format: json, max_partition_bytes: 4KiB }
  slow:
    op: test.slow
    in: in
    with: { per_second: 2000 }
  out:
    op: kafka.produce
    in: slow
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topic: ${output}, exactly_once: true, transactional_id: ${transactionalId}, group: ${group}, commit_interval: 1s }
`;
    const first = startPipeline(pipeline);
    await until('some transactions committed', async () => (await topics.admin.committedOffsets(group, input, 2)).some((o) => o > 0n), 30_000);
    // Mid-transaction: records written since the last commit are in the open one.
    await new Promise((resolve) => setTimeout(resolve, 400));
    kill(first);
    const committedAtCrash = (await topics.admin.committedOffsets(group, input, 2)).reduce((a, b) => a + (b > 0n ? b : 0n), 0n);
    expect(committedAtCrash).toBeLessThan(BigInt(total));
    await clientsClosed();
    const second = startPipeline(pipeline);
    const out = await readTopic(output, total, { isolation: 'read_committed', timeoutMs: 60_000, settleMs: 2000 });
    await second.drain();
    const { distinct, duplicates } = idCounts(out.map((m) => JSON.parse(m.value!.toString())));
    // What the crashed run wrote in its open transaction is in the log, aborted: a reader of everything sees it twice.
    const everything = await readTopic(output, total, { isolation: 'read_uncommitted', timeoutMs: 30_000, settleMs: 1000 });
    console.log(`exactly-once: ${total} in, ${committedAtCrash} committed at the crash, ${out.length} out with read_committed (${duplicates} duplicates), ${everything.length} with read_uncommitted`);
    expect(distinct.size).toBe(total);
    expect(duplicates).toBe(0);
    expect(out).toHaveLength(total);
    expect(everything.length).toBeGreaterThan(total);
  }, 180_000);

  it('halts the exactly-once producer rather than duplicate when the group moves a partition with records in flight', async () => {
    const [input, output] = [await topic('eos-halt-in', 2), await topic('eos-halt-out', 2)];
    const group = unique('g');
    await produce(input, idMessages(0, 6000), 100);
    const log = recordingLogger();
    const transactional = startPipeline(`streams: 1
name: eos
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${input}], group: ${group}, format: json, max_partition_bytes: 4KiB }
  slow:
    op: test.slow
    in: in
    capacity: 200
    with: { per_second: 1000 }
  out:
    op: kafka.produce
    in: slow
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topic: ${output}, exactly_once: true, transactional_id: ${unique('tx')}, group: ${group}, commit_interval: 100ms }
`, log);
    await until('some transactions committed', async () => (await topics.admin.committedOffsets(group, input, 2)).some((o) => o > 0n), 30_000);
    const joiner = startPipeline(`streams: 1
name: joiner
nodes:
  in:
    op: kafka.consume
    with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${input}], group: ${group}, format: json }
  keep:
    op: test.collect
    in: in
    with: { into: ${unique('joiner')} }
`);
    const halted = () => log.entries.find((e) => e.level === 'error' && e.message.includes('exactly-once cannot go on'));
    await until('the transactional producer to halt', () => halted() !== undefined, 30_000);
    // Either the pipeline's own consumer reports the partitions it lost with records in flight, or the broker refuses
    // the commit of the stale group generation first: both halt before anything is written twice. (The joiner runs in
    // its own engine, as another process would, so it cannot reach the producer's claim.)
    expect(halted()!.message).toMatch(/^node `out` \(kafka-test.yaml:12\): exactly-once cannot go on \((the group took partitions .* from node `in` while their records were in flight|.*generation id is not valid)\)/);
    kill(transactional);
    await joiner.drain();
    const out = await readTopic(output, 1, { isolation: 'read_committed', timeoutMs: 30_000, settleMs: 2000 });
    const { duplicates } = idCounts(out.map((m) => JSON.parse(m.value!.toString())));
    expect(duplicates).toBe(0);
  }, 120_000);
});
