/**
 * How a partitioned source (a Kafka consumer) tells the keyed nodes of its
 * engine that its group is moving partitions: `revoking` before a
 * rebalance (checkpoint now), `assigned` after it (drop the state of
 * partitions that went to another member). One bus per engine, met through
 * `ctx.shared`, so two pipelines in one process never hear each other.
 */
import type { NodeContext } from '../types.ts';

/** What a keyed node hears of a source's partitions. */
export interface PartitionListener {
  /** The group is rebalancing: partitions of `topics` may go. */
  revoking(topics: readonly string[]): void;
  /** After a rebalance: of `topics`, this member now holds only `partitions` (`TOPIC/pN`). */
  assigned(topics: readonly string[], partitions: ReadonlySet<string>): void;
}

/** The engine's bus of partition moves; get it with `partitionEvents(ctx)`. */
export class PartitionEvents {
  readonly #listeners = new Set<PartitionListener>();

  /** Listens until the returned function is called. */
  listen(listener: PartitionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  revoking(topics: readonly string[]): void {
    for (const listener of this.#listeners) listener.revoking(topics);
  }

  assigned(topics: readonly string[], partitions: readonly { topic: string; partition: number }[]): void {
    const held = new Set(partitions.map((p) => partitionName(p.topic, p.partition)));
    for (const listener of this.#listeners) listener.assigned(topics, held);
  }
}

/** A partition as batches name it (`BatchOrigin.partition`): `TOPIC/pN`. */
export function partitionName(topic: string, partition: number): string {
  return `${topic}/p${partition}`;
}

/** The topic of a partition named by `partitionName`. */
export function topicOf(name: string): string {
  return name.slice(0, name.lastIndexOf('/p'));
}

/** The engine's bus of partition moves (made on first use). */
export function partitionEvents(ctx: Pick<NodeContext, 'shared'>): PartitionEvents {
  return ctx.shared('runtime.partition-events', () => new PartitionEvents());
}
