/**
 * A group member that goes silent past its session and comes back (a
 * process paused with SIGSTOP, as a long GC pause or a frozen VM does),
 * against the real Kafka: the group gives its partition to the other
 * member meanwhile; when it wakes it must not hand over what it had fetched
 * nor go on reading the partition as if it still owned it (a "zombie"), and
 * nothing may be lost. Two members of one group read a two-partition topic
 * while ids are written to it; one runs in a child process (paused), one
 * here. Every id must be read, and the ids read twice after the pause are
 * counted: only those in flight when it began may be.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openProducer, type KafkaConsumer } from '../../native/kafka/client.ts';
import { admin, kafkaBrokers, unique, until } from './kafka-harness.ts';
import { startMember, type MemberEvent } from './kafka-member.ts';

const child = new URL('./kafka-member-child.ts', import.meta.url).pathname;
const sessionTimeoutMs = 6000; // the broker's smallest by default (group.min.session.timeout.ms)
const topics: string[] = [];
const running: ChildProcess[] = [];
const consumers: KafkaConsumer[] = [];

afterEach(async () => {
  for (const process of running.splice(0)) if (process.exitCode === null && process.signalCode === null) process.kill('SIGKILL');
  for (const consumer of consumers.splice(0)) await consumer.close().catch(() => undefined);
});

afterAll(async () => {
  const client = admin();
  await client.deleteTopics(topics).catch(() => undefined);
  await client.close();
});

/** A member in a child process, its events as they come. */
function childMember(topic: string, group: string): { process: ChildProcess; events: MemberEvent[]; stderr: () => string } {
  const events: MemberEvent[] = [];
  let stderr = '';
  let pending = '';
  const member = spawn(process.execPath, [child, kafkaBrokers(), topic, group, String(sessionTimeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  member.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line) events.push(JSON.parse(line) as MemberEvent);
  });
  member.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  running.push(member);
  return { process: member, events, stderr: () => stderr };
}

const lastAssigned = (events: readonly MemberEvent[]) => events.findLast((e) => e.event === 'assigned')?.partitions;
const ids = (events: readonly MemberEvent[]) => events.flatMap((e) => (e.event === 'record' ? [e.id] : []));

describe('a consumer group member silent past its session', () => {
  it('refuses what it fetched, rejoins, and resumes where the group got to: every id read, the backlog of its old partition not replayed', async () => {
    const brokers = kafkaBrokers();
    const topic = unique('membership');
    const group = unique('membership-group');
    topics.push(topic);
    const client = admin();
    await client.createTopic(topic, 2);
    await client.close();

    const paused = childMember(topic, group);
    await until('the child member holding both partitions', () => lastAssigned(paused.events)?.length === 2);
    const here: MemberEvent[] = [];
    consumers.push(await startMember({ brokers, topic, group, sessionTimeoutMs }, (event) => here.push(event)));
    await until('one partition each', () => lastAssigned(paused.events)?.length === 1 && lastAssigned(here)?.length === 1);

    // 8,000 ids at 500 a second, alternating partitions.
    const total = 8000;
    const producer = openProducer({ brokers: brokers.split(','), clientId: 'membership-test', acks: 'all', compression: 'none', idempotent: true });
    let written = 0;
    const writing = (async function writeIds() {
      while (written < total) {
        const batch = Array.from({ length: 50 }, (_, k) => written + k);
        await producer.send(batch.map((id) => ({ topic, partition: id % 2, value: Buffer.from(JSON.stringify({ id })) })));
        written += batch.length;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await until('2,000 ids read', () => new Set([...ids(paused.events), ...ids(here)]).size >= 2000);
      const atPause = Math.max(...ids(paused.events), ...ids(here));
      const assignedHere = here.filter((e) => e.event === 'assigned').length;
      const pausedAt = Date.now();
      paused.process.kill('SIGSTOP');
      const movedAt = await until('the other member taking both partitions', () => here.filter((e) => e.event === 'assigned').length > assignedHere && lastAssigned(here)?.length === 2, 20_000).then(() => Date.now());
      // The pause itself is the fault: a session and a half of silence.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, sessionTimeoutMs * 1.5 - (Date.now() - pausedAt))));
      const resumedAt = Date.now();
      paused.process.kill('SIGCONT');
      await until('the paused member out of doubt, rejoined', () => paused.events.some((e) => e.event === 'doubt' && e.phase === 'end' && e.rejoined), 30_000);
      await writing;
      const seen = new Map<number, number>();
      await until(`all ${total} ids read`, () => {
        seen.clear();
        for (const id of [...ids(paused.events), ...ids(here)]) seen.set(id, (seen.get(id) ?? 0) + 1);
        return seen.size === total;
      }, 30_000).catch((error: Error) => {
        throw new Error(`${error.message}: ${total - seen.size} missing; child events: ${JSON.stringify(paused.events.filter((e) => e.event !== 'record'))}; stderr: ${paused.stderr()}`);
      });
      const begin = paused.events.find((e) => e.event === 'doubt' && e.phase === 'begin');
      const end = paused.events.find((e) => e.event === 'doubt' && e.phase === 'end');
      const replayed = [...seen].filter(([id, n]) => id > atPause && n > 1).reduce((sum, [, n]) => sum + n - 1, 0);
      const before = [...seen].filter(([id, n]) => id <= atPause && n > 1).reduce((sum, [, n]) => sum + n - 1, 0);
      const afterWake = paused.events.filter((e) => e.event === 'record').length - ids(paused.events).filter((id) => id <= atPause).length;
      console.log(`SIGSTOP for ${resumedAt - pausedAt} ms at id ${atPause}: partitions moved after ${movedAt - pausedAt} ms; ids in ${total}, read ${[...seen.values()].reduce((a, n) => a + n, 0)}, duplicates ${replayed} after the pause (${before} before it); paused member: ${JSON.stringify(begin)}, ${JSON.stringify(end)}, ${afterWake} records read after it woke`);
      expect(begin).toBeDefined();
      expect(end).toMatchObject({ rejoined: true });
      // At least once, never the zombie's replay: duplicates are the records in flight when the pause began (handed
      // on, not yet committed: 0 to 25, one fetch) and, when the rejoin moves a partition back, what the other member
      // had handed on past its last commit (up to a commit interval and a fetch at 500 ids/s: 650 seen once in CI).
      // A zombie replays its old partition's backlog: about 2,200 ids written during the pause (2,200 measured
      // with the guard bypassed).
      expect(replayed).toBeLessThan(1_000);
    } finally {
      await writing.catch(() => undefined);
      await producer.close();
    }
  }, 120_000);
});
