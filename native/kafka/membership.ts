/**
 * Whether a consumer may still act as the owner of its partitions, decided
 * from what the group coordinator answered and when (pure: the clock is
 * given). Kafka's group protocol moves a silent member's partitions to the
 * others once its session times out; the silent member is not told until it
 * reaches the coordinator again, and meanwhile it would go on handing over
 * the records it fetched and committing their offsets as if it still owned
 * them (a "zombie": every such record is processed twice, and its late
 * commit can move the group's offset back). Kafka Streams and Flink stop a
 * member that has not heard from its coordinator for a session; so does this.
 *
 * A member is *in doubt* once a session timeout (less a margin) has passed
 * since the coordinator last heard from it: since the last answered
 * heartbeat was *sent* (the coordinator times the session from when the
 * heartbeat reached it, not from when its answer came back), or since a
 * join completed. Before its first join completes it owns nothing and is
 * never in doubt, however long the join takes (a restart after a crash
 * waits out the old member's session; the broker delays a new group's
 * first rebalance). The margin lets a doubt begin before the session runs out,
 * so that records handed on just before it are not still being processed
 * when the coordinator gives their partition away. The clock is looked at
 * (`check`) as the member acts (member-guard.ts); it should be monotonic.
 * In doubt it fetches nothing, hands no record downstream (records already
 * fetched are refused) and commits nothing. When the coordinator answers
 * again (the same generation, or a rejoin), the member *reconciles*: it reads
 * the group's committed offsets and resumes each partition it still owns at
 * the later of the group's committed offset and the first record it had not
 * handed over; it never commits at or below the group's committed offset read
 * then; commits sent in an earlier generation are dropped (the client's side).
 */
import type { PartitionOffset, TopicPartition } from './client.ts';

/** `member`: acting as the owner; `in_doubt`: the coordinator has been silent for a session; `reconciling`: it answered, positions are being checked. */
export type MembershipState = 'member' | 'in_doubt' | 'reconciling';

/** Where to resume a partition after a doubt, and why. */
export interface ResumePoint extends TopicPartition {
  offset: bigint;
  /** The group's committed offset read when reconciling (`-1n`: none). */
  groupCommitted: bigint;
}

/** What a doubt was, once it is over. */
export interface DoubtSummary {
  /** How long the member refused records, in ms. */
  durationMs: number;
  /** Records refused (fetched while in doubt; they are fetched again from the resume points). */
  refused: number;
  /** Whether the member had to rejoin the group (the coordinator had given its partitions up). */
  rejoined: boolean;
  resume: ResumePoint[];
}

/**
 * The consumer's membership went in doubt (`begin`: the coordinator has not
 * answered for a session timeout, so records and commits are held back) or
 * came out of it (`end`: confirmed or rejoined, and where each partition
 * resumes).
 */
export type DoubtEvent = { phase: 'begin'; silentMs: number } | ({ phase: 'end' } & DoubtSummary);

const key = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * The membership of one consumer: feed it what the coordinator answered
 * (`answered`, `joined`), what the client fetched (`admit`) and the clock
 * (`check`); it says whether records and commits may pass.
 *
 * @example
 * const watch = new MembershipWatch({ sessionTimeoutMs: 6000, now: () => performance.now() });
 * if (watch.check()) pauseAndLog();           // a session passed in silence
 * if (watch.admit(topic, partition, first, last)) handOver(records);
 */
export class MembershipWatch {
  /** Silence after which a doubt begins: the session timeout less the margin. */
  readonly #doubtAfterMs: number;
  readonly #now: () => number;
  #state: MembershipState = 'member';
  #lastAnswered: number;
  #doubtBegan = 0;
  /** Whether a join has completed: until then there is nothing to doubt. */
  #joinedOnce = false;
  #rejoined = false;
  #refusedCount = 0;
  /** Per partition, the offset after the last record handed over. */
  readonly #handed = new Map<string, bigint>();
  /** Per partition, the first record refused during the current doubt. */
  readonly #refused = new Map<string, bigint>();
  /** Per partition, the group's committed offset read at the last reconciliation: commits must pass it. */
  readonly #floor = new Map<string, bigint>();
  #epoch = 0;

  /**
   * `marginMs`: how long before the session runs out the doubt begins, so
   * that records handed on just before the doubt are processed before the
   * coordinator may give their partition away.
   */
  constructor(options: { sessionTimeoutMs: number; marginMs?: number; now: () => number }) {
    this.#doubtAfterMs = Math.max(0, options.sessionTimeoutMs - (options.marginMs ?? 0));
    this.#now = options.now;
    this.#lastAnswered = options.now();
  }

  get state(): MembershipState {
    return this.#state;
  }

  /**
   * Grows each time a doubt begins and each time one ends: a fetch sent in
   * an earlier epoch brings nothing (its position may be one the member no
   * longer holds, or one it has since moved back from).
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Whether records and commits are held back (in doubt or reconciling). */
  get holding(): boolean {
    return this.#state !== 'member';
  }

  /** Milliseconds since the coordinator last heard from the member (see `answered`). */
  silentFor(): number {
    return this.#now() - this.#lastAnswered;
  }

  /** Looks at the clock: true when a doubt begins now (a session timeout, less the margin, passed in silence since the member joined). */
  check(): boolean {
    if (!this.#joinedOnce || this.#state === 'in_doubt' || this.silentFor() < this.#doubtAfterMs) return false;
    // A reconciliation that has not finished within a session is abandoned by the epoch change.
    this.#state = 'in_doubt';
    this.#doubtBegan = this.#now();
    this.#rejoined = false;
    this.#refusedCount = 0;
    this.#refused.clear();
    this.#epoch++;
    return true;
  }

  /**
   * A heartbeat sent at `sentAt` (default: now) was answered: the member is
   * in the group, with the same generation, and the coordinator's session
   * clock restarted no later than `sentAt`. True when that ends a doubt
   * (reconcile now); an answer to a heartbeat sent a session ago vouches for
   * nothing now and ends none.
   */
  answered(sentAt = this.#now()): boolean {
    if (sentAt > this.#lastAnswered) this.#lastAnswered = sentAt;
    if (this.#state !== 'in_doubt' || this.silentFor() >= this.#doubtAfterMs) return false;
    this.#state = 'reconciling';
    return true;
  }

  /**
   * The member (re)joined the group and owns `owned`: what it knew of other
   * partitions is forgotten. True when that ends a doubt (reconcile now).
   */
  joined(owned: readonly TopicPartition[]): boolean {
    this.#joinedOnce = true;
    this.#lastAnswered = this.#now();
    const keep = new Set(owned.map((p) => key(p.topic, p.partition)));
    for (const map of [this.#handed, this.#refused, this.#floor]) for (const k of [...map.keys()]) if (!keep.has(k)) map.delete(k);
    if (this.#state === 'member') return false;
    this.#rejoined = true;
    // A reconciliation under way read the offsets of the generation before: start again.
    if (this.#state === 'reconciling') this.#epoch++;
    this.#state = 'reconciling';
    return true;
  }

  /**
   * A fetched run of one partition, `first`..`last` by offset: true when it
   * may be handed over; false when it is refused (the member is not sure it
   * owns the partition), remembering where the refused records began.
   */
  admit(topic: string, partition: number, first: bigint, last: bigint, count: number): boolean {
    const k = key(topic, partition);
    if (this.#state !== 'member') {
      const earlier = this.#refused.get(k);
      if (earlier === undefined || first < earlier) this.#refused.set(k, first);
      this.#refusedCount += count;
      return false;
    }
    const handed = this.#handed.get(k);
    if (handed === undefined || last + 1n > handed) this.#handed.set(k, last + 1n);
    return true;
  }

  /** Records fetched by a request of an earlier epoch, dropped before they were read (they count as refused). */
  voided(records: number): void {
    this.#refusedCount += records;
  }

  /**
   * Where each owned partition resumes, given the group's committed offsets
   * (`-1n` where none): the later of that and the first record not handed
   * over (refused or never fetched); undefined for a partition the member
   * knows nothing of, where the client's own start (the committed offset)
   * is right.
   */
  resumePoints(owned: readonly TopicPartition[], groupCommitted: (topic: string, partition: number) => bigint): ResumePoint[] {
    const points: ResumePoint[] = [];
    for (const { topic, partition } of owned) {
      const k = key(topic, partition);
      const committed = groupCommitted(topic, partition);
      const own = this.#handed.get(k) ?? this.#refused.get(k);
      if (own === undefined && committed < 0n) continue;
      const offset = own === undefined || committed > own ? committed : own;
      points.push({ topic, partition, offset, groupCommitted: committed });
    }
    return points;
  }

  /**
   * The reconciliation begun at `epoch` is done, with these resume points
   * (from `resumePoints`): records pass again, commits pass above the
   * group's committed offsets. Undefined when another doubt began meanwhile.
   */
  reconciled(epoch: number, resume: readonly ResumePoint[]): DoubtSummary | undefined {
    if (epoch !== this.#epoch || this.#state !== 'reconciling') return undefined;
    for (const point of resume) {
      const k = key(point.topic, point.partition);
      if (point.groupCommitted >= 0n) this.#floor.set(k, point.groupCommitted);
      // Records from the resume point on are not handed over yet.
      this.#handed.set(k, point.offset);
    }
    this.#state = 'member';
    this.#epoch++;
    this.#lastAnswered = this.#now();
    const summary = { durationMs: this.#now() - this.#doubtBegan, refused: this.#refusedCount, rejoined: this.#rejoined, resume: [...resume] };
    this.#refused.clear();
    return summary;
  }

  /**
   * The offsets that may be committed now: undefined while holding (commit
   * nothing); otherwise those past the group's committed offset read at the
   * last reconciliation (one at or below it would move the group back).
   */
  committable(offsets: readonly PartitionOffset[]): PartitionOffset[] | undefined {
    if (this.#state !== 'member') return undefined;
    return offsets.filter((o) => {
      const floor = this.#floor.get(key(o.topic, o.partition));
      return floor === undefined || o.offset > floor;
    });
  }
}
