/**
 * Which offsets a consumer may commit: per partition, the highest offset
 * below which every record delivered has been acknowledged by the graph.
 * Acknowledgements complete out of order (sinks and windows finish batches
 * at their own pace); a partition's commit point only moves past a batch once
 * every earlier batch of that partition is done, as `file.read` does for its
 * checkpoint.
 */
import type { KafkaMessage, PartitionOffset, TopicPartition } from '../../../native/kafka/client.ts';

interface Span {
  end: bigint;
  leaderEpoch: number;
  done: boolean;
}

/** Progress of one assigned partition. */
export class PartitionProgress {
  readonly topic: string;
  readonly partition: number;
  /** The next offset this member expects; records below it were already delivered in this assignment. */
  position = -1n;
  /** Every delivered record below this offset is acknowledged (`-1n`: nothing yet). */
  acknowledged = -1n;
  leaderEpoch = -1;
  /** What was last committed for this partition by this member (`-1n`: nothing). */
  committed = -1n;
  #spans: Span[] = [];
  #head = 0;

  constructor(topic: string, partition: number) {
    this.topic = topic;
    this.partition = partition;
  }

  get idle(): boolean {
    return this.#spans.length === this.#head;
  }

  /** Records the batch ending before `end`; the returned callback marks it acknowledged. */
  track(end: bigint, leaderEpoch: number, onAdvance: () => void): () => void {
    const span: Span = { end, leaderEpoch, done: false };
    this.#spans.push(span);
    const progress = this;
    return function partitionBatchAcknowledged() {
      if (span.done) return;
      span.done = true;
      let moved = false;
      while (progress.#head < progress.#spans.length && progress.#spans[progress.#head].done) {
        const head = progress.#spans[progress.#head];
        progress.#spans[progress.#head++] = undefined as never;
        progress.acknowledged = head.end;
        progress.leaderEpoch = head.leaderEpoch;
        moved = true;
      }
      if (progress.#head > 256 && progress.#head * 2 > progress.#spans.length) {
        progress.#spans = progress.#spans.slice(progress.#head);
        progress.#head = 0;
      }
      if (moved) onAdvance();
    };
  }
}

/** The partitions a consumer holds, and what it may commit for them. */
export class OffsetLedger {
  readonly #partitions = new Map<string, PartitionProgress>();
  /** The partitions the group last assigned; undefined until it has. */
  #assigned: Set<string> | undefined;
  readonly #onAdvance: () => void;
  #idleWaiters: (() => void)[] = [];

  /** `onAdvance` runs when a partition's acknowledged point moves. */
  constructor(onAdvance: () => void) {
    this.#onAdvance = onAdvance;
  }

  #progress(topic: string, partition: number): PartitionProgress {
    const key = `${topic}:${partition}`;
    let progress = this.#partitions.get(key);
    if (!progress) {
      progress = new PartitionProgress(topic, partition);
      this.#partitions.set(key, progress);
    }
    return progress;
  }

  /**
   * Takes a partition's fetched run: drops records already delivered (a
   * client re-reads from the committed offset after a rebalance) and records
   * of partitions no longer assigned (fetched before the rebalance: their new
   * owner reads them from the committed offset), and returns the new ones
   * with the callback that acknowledges them, or undefined when none is new.
   */
  admit(topic: string, partition: number, messages: KafkaMessage[]): { fresh: KafkaMessage[]; done: () => void } | undefined {
    if (this.#assigned && !this.#assigned.has(`${topic}:${partition}`)) return undefined;
    const progress = this.#progress(topic, partition);
    let fresh = messages;
    if (messages[0].offset < progress.position) fresh = messages.filter((m) => m.offset >= progress.position);
    if (fresh.length === 0) return undefined;
    const last = fresh[fresh.length - 1];
    progress.position = last.offset + 1n;
    const ledger = this;
    const acknowledge = progress.track(progress.position, last.leaderEpoch, function advanced() {
      ledger.#onAdvance();
      ledger.#checkIdle();
    });
    return { fresh, done: acknowledge };
  }

  /** Offsets acknowledged past what was committed, one per partition. */
  committable(): PartitionOffset[] {
    const list: PartitionOffset[] = [];
    for (const p of this.#partitions.values()) {
      if (p.acknowledged > p.committed) list.push({ topic: p.topic, partition: p.partition, offset: p.acknowledged, leaderEpoch: p.leaderEpoch });
    }
    return list;
  }

  /** Notes a successful commit. */
  committed(offsets: readonly PartitionOffset[]): void {
    for (const o of offsets) {
      const p = this.#partitions.get(`${o.topic}:${o.partition}`);
      if (p && o.offset > p.committed) p.committed = o.offset;
    }
  }

  /**
   * The group assigned these partitions: forget the others (their records
   * still in flight may be delivered again to their new owner).
   */
  keep(assigned: readonly TopicPartition[]): void {
    const keys = new Set(assigned.map((a) => `${a.topic}:${a.partition}`));
    this.#assigned = keys;
    for (const key of [...this.#partitions.keys()]) if (!keys.has(key)) this.#partitions.delete(key);
    this.#checkIdle();
  }

  /** Partitions outside `assigned` with records still waiting for their acknowledgement. */
  busyOutside(assigned: readonly TopicPartition[]): string[] {
    const keys = new Set(assigned.map((a) => `${a.topic}:${a.partition}`));
    return [...this.#partitions].filter(([key, p]) => !keys.has(key) && !p.idle).map(([key]) => key);
  }

  /** True when no delivered record waits for its acknowledgement. */
  get idle(): boolean {
    for (const p of this.#partitions.values()) if (!p.idle) return false;
    return true;
  }

  /** Resolves once every delivered record is acknowledged (or its partition revoked). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.idle) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
