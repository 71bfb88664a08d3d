import type { NodeMetricFamily } from './types.ts';

/**
 * Live counters of a running graph, kept as plain numbers on the hot path
 * and read by the Prometheus endpoint, the visualiser and tests.
 */

/** Per-node counters, under fixed names (see `metrics.ts`). */
export class NodeStats {
  recordsIn = 0;
  recordsOut = 0;
  bytesRead = 0;
  bytesWritten = 0;
  errors = 0;
  deadLetters = 0;
  /** Dead letters with no `dlq` consumer to take them: gone, so the run reports them at exit. */
  deadLettersLost = 0;
  dropped = new Map<string, number>();
  starts = 0;
  restarts = 0;
  /** Processing time per batch, in seconds, not yet folded into the histogram. */
  pendingTimings: number[] = [];
  /** Why the node last failed (it restarts, or failed for good): shown by the visualiser. */
  lastError: string | undefined = undefined;
  state: 'starting' | 'running' | 'draining' | 'stopped' | 'failed' | 'backoff' = 'starting';
  /** The node's own metrics, read at each scrape (`NodeMetrics.expose`). */
  exposed: (() => readonly NodeMetricFamily[]) | undefined = undefined;

  drop(count: number, reason: string): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + count);
  }

  timing(seconds: number): void {
    // Bounded: a scrape folds them; without scrapes keep only a recent sample.
    if (this.pendingTimings.length < 4096) this.pendingTimings.push(seconds);
  }
}

/** Per-edge counters: the channel in front of a node, fed by one upstream port. */
export class EdgeStats {
  depth = 0;
  /** Bytes (of Bytes and Media items) waiting in the channel. */
  bytes = 0;
  capacity: number;
  drops = 0;
  /** Records pushed into the channel. */
  records = 0;
  /** Records handed to the consumer. */
  delivered = 0;
  /**
   * Bytes of the Bytes and Media items (those with `data` or `text`) pushed
   * and handed on. Events count none here: their size is not cheap to know
   * per record, so the live feed estimates it from `sampled`.
   */
  bytesIn = 0;
  bytesOut = 0;
  /** Set by a sampler (the live feed) to keep the items of the next batch pushed in `sampled`; the channel clears it. */
  wantSample = false;
  /** The items of a batch kept at the sampler's request; the sampler reads them and clears this. */
  sampled: readonly unknown[] | undefined = undefined;
  /**
   * True for an edge fused away (a window with its aggregate): no channel,
   * the consumer runs inside the producer. `records` and `delivered` count
   * what crossed it, as the fused node emits; nothing queues, nothing is
   * dropped, and no items are there to size.
   */
  readonly fused: boolean;
  constructor(capacity: number, fused = false) {
    this.capacity = capacity;
    this.fused = fused;
  }

  /**
   * Takes on the totals of what crossed the edge before (records and bytes
   * in and out) from the counters it had as another kind of edge: a reload
   * that fuses or unfuses a window and its aggregate swaps a channel for a
   * fused edge or back, and the edge's totals run on. The queue's own
   * numbers (depth, drops) stay with the channel that had them.
   */
  continueFrom(previous: EdgeStats): void {
    this.records = previous.records;
    this.delivered = previous.delivered;
    this.bytesIn = previous.bytesIn;
    this.bytesOut = previous.bytesOut;
  }
}
