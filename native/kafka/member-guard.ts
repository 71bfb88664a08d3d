/**
 * Puts a `MembershipWatch` (membership.ts) in charge of one
 * @platformatic/kafka consumer: it hears the coordinator's answers
 * (heartbeats, joins), holds the consumer's fetches while in doubt, lets a
 * fetched run through or not, reconciles positions when the doubt ends and
 * guards commits. The client (client.ts) keeps the rest of the consumer.
 */
import type { Consumer, MessagesStream } from '@platformatic/kafka';
import type { PartitionOffset, TopicPartition } from './client.ts';
import { dropCommit, gateFetches, onHeartbeatAnswered, seek } from './library-internals.ts';
import { MembershipWatch, type DoubtEvent } from './membership.ts';

type AnyConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;

/** The guard of one consumer. */
export interface MemberGuard {
  /** The consumer's stream is open: move its positions when a doubt ends. */
  watch(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void;
  /** Whether a fetched run of one partition may be handed over (see `MembershipWatch.admit`). */
  admit(topic: string, partition: number, first: bigint, last: bigint, count: number): boolean;
  /** Commits what may be committed; false when nothing was (see `KafkaConsumer.commit`). */
  commit(offsets: readonly PartitionOffset[]): Promise<boolean>;
  /** Stops watching and lets held fetches go. */
  close(): void;
}

/** A monotonic clock in ms: a step of the wall clock (NTP, a VM resumed) neither starts a doubt nor hides one. */
const monotonicNow = (): number => performance.now();

/**
 * Guards `consumer`; `assigned` runs on each join (after the guard took
 * note of it), `doubt` when the membership goes in doubt or comes out of it.
 * Call before the consumer joins, so that the guard hears the first join
 * (no doubt begins before it completes, however long it takes), and hand
 * it the stream (`watch`) once open: a reconciliation waits for it.
 *
 * The clock (`now`, monotonic by default) is looked at only when the
 * member acts or hears from the group: as it sends a fetch, takes a fetch's
 * answer, hands records on or commits, and as a heartbeat is answered or a
 * join completes. There is no timer: a timer cannot stand in for those
 * looks (after a SIGSTOP, libuv runs the I/O that arrived before any
 * expired timer, so a fetch answer would be handed on first), and with
 * them a timer adds nothing but wake-ups. So a doubt begins, and is
 * logged, at the first of those events once the session may have run out:
 * a member cut off with a fetch in flight notices when the link comes
 * back, before that fetch's answer or the coordinator's is taken (the
 * answer of a fetch sent before the doubt is voided; the coordinator's
 * answer then ends the doubt, and the member reconciles).
 */
export function guardMembership(consumer: AnyConsumer, options: { sessionTimeoutMs: number; assigned(partitions: TopicPartition[]): void; doubt?(event: DoubtEvent): void; now?: () => number }): MemberGuard {
  const now = options.now ?? monotonicNow;
  // The doubt begins a little before the session runs out: records handed on at the last moment
  // are still processed as the coordinator gives their partition away.
  const marginMs = Math.max(100, Math.min(1000, Math.floor(options.sessionTimeoutMs / 10)));
  const watch = new MembershipWatch({ sessionTimeoutMs: options.sessionTimeoutMs, marginMs, now });
  const lookAtClock = (): void => {
    if (watch.check()) options.doubt?.({ phase: 'begin', silentMs: Math.round(watch.silentFor()) });
  };
  let closing = false;
  // Closing lets held fetches go (answered with no records), so the stream can end.
  // A fetch answer is looked at under the epoch of the clock now: one that arrives after a silent session is voided.
  const fetches = gateFetches(consumer, {
    held: () => {
      lookAtClock();
      return watch.holding && !closing;
    },
    epoch: () => {
      lookAtClock();
      return watch.epoch;
    },
    voided: (records) => watch.voided(records),
  });
  /** The partitions of the last join. */
  let owned: TopicPartition[] = [];
  const commitsInFlight = new Set<{ generation: number; offsets: unknown[] }>();
  /** The stream once `watch` hands it over; undefined when the guard closes first. */
  let streamIsOpen!: (opened: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined) => void;
  const streamOpened = new Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined>((resolve) => (streamIsOpen = resolve));

  /** The coordinator answered after a doubt: read the group's offsets, move each owned partition to where it resumes, let records pass. */
  const reconcile = async (): Promise<void> => {
    const epoch = watch.epoch;
    const partitions = owned;
    let committed: Map<string, bigint[]>;
    try {
      committed = partitions.length === 0 ? new Map() : await consumer.listCommittedOffsets({ topics: byTopic(partitions) });
    } catch {
      // Still in doubt: try again while this reconciliation is the current one.
      const retry = setTimeout(() => {
        if (!closing && watch.epoch === epoch && watch.state === 'reconciling') void reconcile();
      }, 500);
      retry.unref();
      return;
    }
    // The offsets can come back before the stream is open (a doubt ended by a rejoin while `consume()` was still
    // joining): wait for it, or the member would hold its fetches for good.
    const opened = await streamOpened;
    if (closing || !opened || watch.epoch !== epoch || watch.state !== 'reconciling') return;
    const resume = watch.resumePoints(partitions, (topic, partition) => committed.get(topic)?.[partition] ?? -1n);
    for (const point of resume) seek(opened, point.topic, point.partition, point.offset);
    const summary = watch.reconciled(epoch, resume);
    if (!summary) return;
    fetches.release();
    options.doubt?.({ phase: 'end', ...summary, durationMs: Math.round(summary.durationMs) });
  };

  // The coordinator answering after a silent session ends a doubt: look at the clock first, so
  // that the doubt has begun (and a fetch sent before it is voided) rather than being skipped.
  onHeartbeatAnswered(consumer, now, (sentAt) => {
    lookAtClock();
    if (watch.answered(sentAt)) void reconcile();
  });
  consumer.on('consumer:group:join', (payload) => {
    lookAtClock();
    const partitions: TopicPartition[] = [];
    for (const assignment of payload.assignments ?? []) for (const partition of assignment.partitions) partitions.push({ topic: assignment.topic, partition });
    owned = partitions;
    // A commit of the generation before would be sent again under this one, with offsets that may be behind the group's.
    for (const sent of commitsInFlight) if (sent.generation !== consumer.generationId) dropCommit(sent.offsets);
    const reconcileNow = watch.joined(partitions);
    options.assigned(partitions);
    if (reconcileNow) void reconcile();
  });

  return {
    watch(opened) {
      streamIsOpen(opened);
    },
    admit(topic, partition, first, last, count) {
      lookAtClock();
      return watch.admit(topic, partition, first, last, count);
    },
    async commit(offsets) {
      if (offsets.length === 0) return true;
      lookAtClock();
      const allowed = watch.committable(offsets);
      if (!allowed) return false;
      if (allowed.length === 0) return true;
      const request = allowed.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: o.leaderEpoch }));
      const sent = { generation: consumer.generationId, offsets: request };
      commitsInFlight.add(sent);
      try {
        await consumer.commit({ offsets: request });
      } finally {
        commitsInFlight.delete(sent);
      }
      return request.length > 0;
    },
    close() {
      closing = true;
      streamIsOpen(undefined);
      fetches.release();
    },
  };
}

/** Partitions grouped by topic, as the client's requests list them. */
function byTopic(partitions: readonly TopicPartition[]): { topic: string; partitions: number[] }[] {
  const topics = new Map<string, number[]>();
  for (const { topic, partition } of partitions) {
    const list = topics.get(topic);
    if (list) list.push(partition);
    else topics.set(topic, [partition]);
  }
  return [...topics].map(([topic, list]) => ({ topic, partitions: list }));
}
