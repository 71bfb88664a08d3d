/**
 * Bounded channels: the backpressure RxJS has none of. A node reads its
 * channels as one Observable through its input (`node-input.ts`).
 *
 * Every edge is a `Channel` in front of its consumer. A transform consumes
 * synchronously, so its channel stays empty unless the node is detached (for
 * a reload). A sink takes one batch at a time and the next only when it has
 * acknowledged the last (or, a paced sink, taken the last in), so a slow sink
 * fills its channel. A full channel blocks the sources upstream of it
 * (`block`), or drops the newest or oldest batch (`drop_newest`,
 * `drop_oldest`), counting every drop.
 */
import { Ack } from './ack.ts';
import type { Batch, BytesItem } from './types.ts';
import { EdgeStats } from './stats.ts';
import type { WhenFull } from '../graph/model.ts';

export interface ChannelOptions {
  /** Records the channel holds before it is full. */
  capacity: number;
  /** Bytes (of Bytes items) the channel holds before it is full. */
  capacityBytes: number;
  /** What a full channel does; the policies are defined once, with the node fields. */
  whenFull: WhenFull;
  /**
   * How the consumer takes batches: `free` as fast as they come (synchronous
   * transforms), `ack` one at a time, the next once the last is acknowledged
   * (sinks), `explicit` one at a time, the next once the node says it is done
   * with the last (`ctx.batchDone()`, asynchronous transforms), `taken` one
   * at a time, the next once the sink has taken the last in
   * (`ctx.batchDone()`) or acknowledged it, whichever comes first (paced
   * sinks: a Kafka producer gathers the next batches while a request is out).
   * Under `ack` and `taken` the channel keeps every batch the sink has not
   * acknowledged, to give them back if it fails.
   */
  pacing: 'free' | 'ack' | 'explicit' | 'taken';
}

/** Something upstream that can be told to wait: a source's gate. */
export interface Blockable {
  block(channel: Channel): void;
  unblock(channel: Channel): void;
}

/** Bytes of a batch of Bytes items; events are counted in records only (their size is not cheap to know). */
function batchBytes(batch: Batch): number {
  const first = batch.items[0] as BytesItem | undefined;
  if (!first || typeof first !== 'object' || (first.data === undefined && typeof first.text !== 'string')) return 0;
  let total = 0;
  for (const item of batch.items as BytesItem[]) {
    if (item !== null && typeof item === 'object') {
      if (item.data) total += item.data.length;
      else if (typeof item.text === 'string') total += item.text.length;
    }
  }
  return total;
}

export class Channel {
  readonly from: string;
  readonly to: string;
  readonly stats: EdgeStats;
  options: ChannelOptions;
  /** Sees every batch pushed, while set (a tap of the admin API); must not throw nor keep the array. */
  tap: ((items: readonly unknown[]) => void) | undefined = undefined;
  /** The gates upstream, closed while this channel is full under `block`. */
  get upstream(): Blockable[] {
    return this.#upstream;
  }

  /** New gates (after a reload) start closed if the channel is full now. */
  set upstream(gates: Blockable[]) {
    if (this.#blocking) for (const gate of gates) if (!this.#upstream.includes(gate)) gate.block(this);
    this.#upstream = gates;
  }
  #queue: { batch: Batch; bytes: number }[] = [];
  #head = 0;
  #target: ((batch: Batch) => void) | undefined;
  #busy = false;
  /** The consumer failed for good: batches are dropped (counted) instead of waiting for it. */
  #consumerFailed = false;
  #blocking = false;
  #producerDone = false;
  /** Who waits for the channel to empty after its producer finished (its consumer, and a successor's input after a reload). */
  #onDrained: (() => void)[] = [];
  #pumping = false;
  /** The batches a sink holds, unacknowledged, oldest first (`ack` and `taken` pacing). */
  #unacked: Batch[] = [];
  /** Counts deliveries, so that only the latest one's acknowledgement frees the channel. */
  #deliveries = 0;
  /**
   * Bumped when the sink fails: what it held went back to the channel (or was
   * dropped), and its late acknowledgements must not release them again.
   */
  #generation = 0;
  #upstream: Blockable[] = [];

  constructor(from: string, to: string, options: ChannelOptions) {
    this.from = from;
    this.to = to;
    this.options = options;
    this.stats = new EdgeStats(options.capacity);
  }

  get depth(): number {
    return this.stats.depth;
  }

  get producerDone(): boolean {
    return this.#producerDone;
  }

  /** True when nothing waits in the channel and nothing delivered is unacknowledged. */
  get idle(): boolean {
    return this.#queue.length - this.#head === 0 && !this.#busy && this.#unacked.length === 0;
  }

  /** The number of the latest delivery, which `taken` names. */
  get delivery(): number {
    return this.#deliveries;
  }

  #full(): boolean {
    return this.stats.depth >= this.options.capacity || this.stats.bytes >= this.options.capacityBytes;
  }

  /** A producer hands a batch over. */
  push(batch: Batch): void {
    const stats = this.stats;
    stats.records += batch.items.length;
    // One check per batch each; a tap is set only while someone asks to see
    // records (the admin API), a sample only once a second while the live feed runs.
    if (this.tap !== undefined) this.tap(batch.items);
    if (stats.wantSample) {
      stats.wantSample = false;
      stats.sampled = batch.items;
    }
    if (this.#consumerFailed) {
      stats.drops += batch.items.length;
      batch.ack.release();
      return;
    }
    const bytes = batchBytes(batch);
    stats.bytesIn += bytes;
    if (this.#target && !this.#busy && this.#queue.length === this.#head) {
      this.#deliver(batch, bytes);
      return;
    }
    if (this.#full()) {
      if (this.options.whenFull === 'drop_newest') {
        this.stats.drops += batch.items.length;
        batch.ack.release();
        return;
      }
      if (this.options.whenFull === 'drop_oldest' && this.#queue.length > this.#head) {
        const oldest = this.#queue[this.#head];
        this.#queue[this.#head++] = undefined as never;
        this.stats.depth -= oldest.batch.items.length;
        this.stats.bytes -= oldest.bytes;
        this.stats.drops += oldest.batch.items.length;
        oldest.batch.ack.release();
      }
    }
    this.#queue.push({ batch, bytes });
    this.stats.depth += batch.items.length;
    this.stats.bytes += bytes;
    if (this.options.whenFull === 'block' && !this.#blocking && this.#full()) {
      this.#blocking = true;
      for (const source of this.upstream) source.block(this);
    }
  }

  #deliver(batch: Batch, bytes: number): void {
    const target = this.#target!;
    this.stats.delivered += batch.items.length;
    this.stats.bytesOut += bytes;
    if (this.options.pacing === 'free') {
      target(batch);
      return;
    }
    this.#busy = true;
    const delivery = ++this.#deliveries;
    if (this.options.pacing === 'explicit') {
      target(batch);
      return;
    }
    const parent = batch.ack;
    const channel = this;
    const generation = this.#generation;
    this.#unacked.push(batch);
    const ack = new Ack(
      function sinkAcknowledged() {
        // A delivery abandoned by a failed sink was put back for its successor,
        // which acknowledges it: this late answer must not do it twice.
        if (generation !== channel.#generation) return;
        const unacked = channel.#unacked;
        // Usually the oldest: a sink acknowledges in order.
        unacked.splice(unacked[0] === batch ? 0 : unacked.indexOf(batch), 1);
        parent.release();
        // An earlier delivery (a paced sink took it in already) does not free the latest.
        if (delivery === channel.#deliveries) channel.#busy = false;
        channel.#pump();
      },
      () => parent.settle(),
    );
    target({ items: batch.items, ack, port: batch.port, trace: batch.trace });
  }

  #pump(): void {
    // A consumer that frees itself while we deliver (`batchDone` in the same
    // call) is picked up by this loop, not by a nested one.
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      this.#deliverWaiting();
    } finally {
      this.#pumping = false;
    }
    this.#checkUnblock();
    if (this.idle) {
      this.#drained();
    }
  }

  #deliverWaiting(): void {
    while (this.#target && !this.#busy && this.#queue.length > this.#head) {
      const { batch, bytes } = this.#queue[this.#head];
      this.#queue[this.#head++] = undefined as never;
      this.stats.depth -= batch.items.length;
      this.stats.bytes -= bytes;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#deliver(batch, bytes);
    }
  }

  #checkUnblock(): void {
    // Hysteresis: resume sources at half capacity so they do not flap.
    if (this.#blocking && this.stats.depth <= this.options.capacity / 2 && this.stats.bytes <= this.options.capacityBytes / 2) {
      this.#blocking = false;
      for (const source of this.upstream) source.unblock(this);
    }
  }

  /**
   * The consumer failed. A sink's unacknowledged batches go back to the head
   * of the channel, in their order, so the restarted sink writes them (at
   * least once); an asynchronous transform's batch is given up (it may have
   * been emitted).
   */
  requeue(): void {
    const held = this.#unacked;
    this.#unacked = [];
    this.#generation++;
    for (let i = held.length - 1; i >= 0; i--) {
      const batch = held[i];
      if (this.#head > 0) this.#queue[--this.#head] = { batch, bytes: 0 };
      else this.#queue.unshift({ batch, bytes: 0 });
      this.stats.depth += batch.items.length;
    }
    this.free();
  }

  /**
   * A paced sink has taken delivery `delivery` in (`taken` pacing): the next
   * batch may come while it still holds that one unacknowledged. A delivery
   * that is no longer the latest (acknowledged already) changes nothing.
   */
  taken(delivery: number): void {
    if (delivery !== this.#deliveries || !this.#busy) return;
    this.#busy = false;
    this.#pump();
  }

  /** The consumer is done with the batch it was given last (`explicit` pacing). */
  free(): void {
    this.#deliveries++;
    this.#busy = false;
    this.#pump();
  }

  /** Starts delivering to a consumer (a node's input). */
  attach(target: (batch: Batch) => void): void {
    this.#target = target;
    this.#consumerFailed = false;
    queueMicrotask(() => this.#pump());
  }

  /** Stops delivering; batches wait in the channel (for a reload). */
  detach(): void {
    this.#target = undefined;
  }

  /** Delivers what waits, to a consumer attached by a reload. */
  resume(): void {
    this.#pump();
  }

  #drained(): void {
    if (this.#onDrained.length === 0) return;
    const waiting = this.#onDrained;
    this.#onDrained = [];
    for (const resolve of waiting) resolve();
  }

  /** The producer has finished; resolves once everything has been delivered and acknowledged. */
  finish(): Promise<void> {
    this.#producerDone = true;
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onDrained.push(resolve);
      this.#pump();
    });
  }

  /**
   * The consumer failed for good: what waits and what comes next is dropped
   * and counted (acknowledged, so sources feeding other branches go on),
   * until a reload attaches a new consumer. Returns the records dropped now.
   */
  consumerFailed(): number {
    this.#consumerFailed = true;
    this.#target = undefined;
    const lost = this.#takeQueued();
    lost.push(...this.#unacked);
    this.#unacked = [];
    this.#generation++;
    for (const batch of lost) batch.ack.release();
    const dropped = recordCount(lost);
    this.stats.drops += dropped;
    this.#deliveries++;
    this.#busy = false;
    this.#checkUnblock();
    this.#drained();
    return dropped;
  }

  /**
   * Drops every waiting batch (its consumer was removed): they are counted
   * and acknowledged, so their source may commit; returns how many records.
   */
  discard(): number {
    const lost = this.takeWaiting();
    for (const batch of lost) batch.ack.release();
    const dropped = recordCount(lost);
    this.stats.drops += dropped;
    return dropped;
  }

  /**
   * Takes out the batches waiting, oldest first, to be handed on elsewhere
   * (a reload that moved this edge); the sources it held back go on.
   */
  takeWaiting(): Batch[] {
    const waiting = this.#takeQueued();
    this.#checkUnblock();
    return waiting;
  }

  /** Empties the queue (its gauges to 0); returns the batches that waited, oldest first. */
  #takeQueued(): Batch[] {
    const waiting: Batch[] = [];
    while (this.#queue.length > this.#head) {
      waiting.push(this.#queue[this.#head].batch);
      this.#queue[this.#head++] = undefined as never;
    }
    this.stats.depth = 0;
    this.stats.bytes = 0;
    return waiting;
  }
}

/** How many records `batches` carry. */
function recordCount(batches: readonly Batch[]): number {
  let records = 0;
  for (const batch of batches) records += batch.items.length;
  return records;
}
