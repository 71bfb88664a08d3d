/**
 * A consumer group member that "processes" a record by noting it and
 * commits each run as soon as it is noted: the membership tests run one in
 * the test's process and one in a child process (kafka-member-child.ts)
 * that they pause with SIGSTOP. Every record handed over and every
 * membership event becomes a `MemberEvent`.
 */
import { openConsumer, type KafkaConsumer } from '../../native/kafka/client.ts';
import type { DoubtEvent } from '../../native/kafka/membership.ts';

export type MemberEvent =
  | { event: 'record'; id: number; partition: number; offset: string }
  | { event: 'assigned'; partitions: number[] }
  | { event: 'doubt'; phase: 'begin'; silentMs: number }
  | { event: 'doubt'; phase: 'end'; durationMs: number; refused: number; rejoined: boolean; resume: string[] }
  | { event: 'failed'; error: string };

export interface MemberOptions {
  brokers: string;
  topic: string;
  group: string;
  sessionTimeoutMs: number;
}

/** Joins the group and reads; `note` receives each event. */
export async function startMember(options: MemberOptions, note: (event: MemberEvent) => void): Promise<KafkaConsumer> {
  let consumer: KafkaConsumer | undefined;
  let committing = Promise.resolve();
  const doubt = (event: DoubtEvent) => {
    if (event.phase === 'begin') note({ event: 'doubt', phase: 'begin', silentMs: event.silentMs });
    else note({ event: 'doubt', phase: 'end', durationMs: event.durationMs, refused: event.refused, rejoined: event.rejoined, resume: event.resume.map((p) => `${p.partition}@${p.offset}`) });
  };
  consumer = await openConsumer({
    brokers: options.brokers.split(','),
    clientId: 'membership-test',
    group: options.group,
    topics: [options.topic],
    from: 'committed',
    isolation: 'read_committed',
    sessionTimeoutMs: options.sessionTimeoutMs,
    heartbeatIntervalMs: Math.floor(options.sessionTimeoutMs / 3),
    handlers: {
      messages(_topic, partition, run) {
        for (const message of run) note({ event: 'record', id: (JSON.parse(message.value!.toString()) as { id: number }).id, partition, offset: String(message.offset) });
        const last = run[run.length - 1];
        const offsets = [{ topic: last.topic, partition, offset: last.offset + 1n, leaderEpoch: last.leaderEpoch }];
        committing = committing.then(() => consumer?.commit(offsets).then(() => undefined, () => undefined));
      },
      revoking() {},
      assigned(partitions) {
        note({ event: 'assigned', partitions: partitions.map((p) => p.partition).sort() });
      },
      failed(error) {
        note({ event: 'failed', error: error.message });
      },
      doubt,
    },
  });
  return consumer;
}
