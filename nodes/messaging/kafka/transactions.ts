/**
 * Exactly-once from Kafka to Kafka, within one engine: how a
 * `kafka.produce` node with `exactly_once: true` commits the offsets of an
 * upstream `kafka.consume` node inside its own transaction, instead of the
 * consumer committing them itself.
 *
 * The two nodes meet here by consumer group. The consumer registers its
 * group as a source of offsets; the producer claims the group. While a claim
 * stands, the consumer does not commit: it reports each advance of its
 * acknowledged offsets, and the producer commits them with the records it
 * wrote in the same transaction.
 *
 * Why that is exactly once: the producer acknowledges a batch once it is
 * written inside the open transaction, so an offset that becomes
 * acknowledged belongs to a record whose output is in that transaction or
 * an earlier committed one (never lost). It acknowledges inside its
 * serialised transactional step, and when the producer is the records' only
 * sink the acknowledgement frees their offsets at once (a window frees its
 * records when its result is acknowledged), so a commit queued after the
 * step includes the offsets of every record whose output it commits (never
 * read again after a crash). A crash aborts the open transaction, and the
 * records are read again from the last committed offsets.
 */
import type { GroupMember, PartitionOffset } from '../../../native/kafka/client.ts';
import type { NodeContext } from '../../../runtime/api.ts';

/** What `kafka.consume` offers the producer that claims its group. */
export interface OffsetSource {
  /** The consuming node's name, for messages. */
  readonly node: string;
  /** The consumer's current membership, needed to commit offsets in a transaction. */
  member(): GroupMember | undefined;
  /** Offsets acknowledged by the graph and not yet committed. */
  acknowledged(): PartitionOffset[];
  /** The claimant committed these offsets. */
  committed(offsets: readonly PartitionOffset[]): void;
}

/** What `kafka.produce` registers when it claims a group's offsets. */
export interface OffsetClaim {
  readonly node: string;
  /** Offsets were acknowledged: commit a transaction soon. */
  acknowledged(): void;
  /** The group is rebalancing: commit now, while the membership is still valid. */
  revoking(): void;
  /** Resolves once everything acknowledged so far is committed (or the claim is gone). */
  flushed(): Promise<void>;
  /**
   * The consumer lost records in flight (it failed, or the group took
   * partitions whose records were still in the graph): their outputs may
   * reach the producer and be read again elsewhere, so the open transaction
   * must not commit.
   */
  sourceFailed(reason: string): void;
}

/**
 * Where the consumers and transactional producers of one engine meet, by
 * consumer group. One per engine (`offsetPairing(ctx)`), never per
 * process: two engines in one process (tests, a future multi-pipeline host)
 * must not pair each other's nodes.
 */
export class OffsetPairing {
  readonly #sources = new Map<string, OffsetSource>();
  readonly #claims = new Map<string, OffsetClaim>();

  /** Registers a consumer group's offsets; returns the function that withdraws them. */
  offerOffsets(group: string, source: OffsetSource): () => void {
    this.#sources.set(group, source);
    return () => {
      if (this.#sources.get(group) === source) this.#sources.delete(group);
    };
  }

  /** The consumer of `group` in this engine, if one runs. */
  offsetSource(group: string): OffsetSource | undefined {
    return this.#sources.get(group);
  }

  /**
   * Claims a group's offsets for a transactional producer. A group can have
   * one claimant node: another node's claim is refused with the name of the first.
   */
  claimOffsets(group: string, claim: OffsetClaim): () => void {
    const holder = this.#claims.get(group);
    // A node restarting after a failure claims again in place of its earlier incarnation.
    if (holder && holder !== claim && holder.node !== claim.node) throw new Error(`consumer group \`${group}\` is already committed through the transactions of node \`${holder.node}\``);
    this.#claims.set(group, claim);
    return () => {
      if (this.#claims.get(group) === claim) this.#claims.delete(group);
    };
  }

  /** The producer that commits `group`'s offsets, if one has claimed them. */
  offsetClaim(group: string): OffsetClaim | undefined {
    return this.#claims.get(group);
  }
}

/** The pairing of the engine that runs this node. */
export function offsetPairing(ctx: NodeContext<unknown>): OffsetPairing {
  return ctx.shared('kafka.offsets', () => new OffsetPairing());
}
