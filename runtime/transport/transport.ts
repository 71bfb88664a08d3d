/**
 * The contract of a transport: what carries the records of an edge whose
 * two ends the planner put on different hosts. Events cross through a Kafka
 * topic per edge (partitioned by the upstream node's key), media segments
 * through object storage and HTTP pull; each is one implementation of this
 * interface, built on a client in `native/`.
 *
 * Delivery stays at-least-once end to end across the hop: the sending end
 * releases a batch's ack only once the transport holds the records
 * durably, and the receiving end commits its position (a consumer offset)
 * only once every sink downstream on its host has acknowledged them.
 */
import type { Ack } from '../ack.ts';

/** One cross-host edge, named as the plan names it. */
export interface EdgeAddress {
  /** The pipeline's name: transports keep the edges of different pipelines apart. */
  readonly pipeline: string;
  /** The upstream node and its output port. */
  readonly from: { node: string; port: string };
  /** The downstream node and its input port. */
  readonly to: { node: string; port: string };
}

/** The end of an edge on the upstream node's host. */
export interface TransportSender {
  /**
   * Hands records to the transport. Resolves once they are durable there
   * (the broker acknowledged them); the caller then releases their ack.
   * Rejects on a failure the caller retries with backoff.
   */
  send(items: readonly unknown[], key?: (item: unknown) => string | undefined): Promise<void>;
  /** Waits for what is being sent, then closes. */
  close(): Promise<void>;
}

/** What the receiving end hands to the graph for each batch it reads. */
export type DeliverBatch = (items: unknown[], ack: Ack) => void;

/** The end of an edge on the downstream node's host. */
export interface TransportReceiver {
  /** Stops reading while the downstream channel is full (backpressure crosses the hop). */
  pause(): void;
  resume(): void;
  /** Stops reading; positions already acknowledged are committed first. */
  close(): Promise<void>;
}

/** A transport: one kind of cross-host carrier. */
export interface Transport {
  /** What carries the records: `kafka`, `object-store`. */
  readonly kind: string;
  openSender(edge: EdgeAddress): Promise<TransportSender>;
  /**
   * Starts reading the edge. `newAck(onDone)` makes the ack of a batch
   * (the runtime's acknowledgements), whose `onDone` commits the batch's
   * position; `deliver` passes the batch into the graph.
   */
  openReceiver(edge: EdgeAddress, newAck: (onDone: () => void) => Ack, deliver: DeliverBatch): Promise<TransportReceiver>;
}
