/**
 * Exactly-once from Kafka to Kafka, within one process: how a
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

const sources = new Map<string, OffsetSource>();
const claims = new Map<string, OffsetClaim>();

/** Registers a consumer group's offsets; returns the function that withdraws them. */
export function offerOffsets(group: string, source: OffsetSource): () => void {
  sources.set(group, source);
  return function withdrawOffsets() {
    if (sources.get(group) === source) sources.delete(group);
  };
}

/** The consumer of `group` in this process, if one runs. */
export function offsetSource(group: string): OffsetSource | undefined {
  return sources.get(group);
}

/**
 * Claims a group's offsets for a transactional producer. A group can have
 * one claimant node: another node's claim is refused with the name of the first.
 */
export function claimOffsets(group: string, claim: OffsetClaim): () => void {
  const holder = claims.get(group);
  // A node restarting after a failure claims again in place of its earlier incarnation.
  if (holder && holder !== claim && holder.node !== claim.node) throw new Error(`consumer group \`${group}\` is already committed through the transactions of node \`${holder.node}\``);
  claims.set(group, claim);
  return function releaseClaim() {
    if (claims.get(group) === claim) claims.delete(group);
  };
}

/** The producer that commits `group`'s offsets, if one has claimed them. */
export function offsetClaim(group: string): OffsetClaim | undefined {
  return claims.get(group);
}
