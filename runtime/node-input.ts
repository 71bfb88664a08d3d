/**
 * A node's input: the channels into it merged into the one Observable its
 * function reads, with the pacing each channel asks of its consumer (a
 * paced node's `batchDone`), its completion when every producer has finished,
 * and what happens to waiting batches when the node fails or is replaced.
 * The channels themselves (capacity, policies, counting) are `channel.ts`.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { Channel } from './channel.ts';
import type { Batch } from './types.ts';

/**
 * The channels into a node, as one Observable for its NodeFunction. It
 * completes when every channel's producer has finished and the channel is
 * empty, or when the node is detached for a reload (the channels keep what
 * is waiting for the node that replaces it).
 */
export class NodeInput {
  readonly channels: Channel[] = [];
  #subscriber: Subscriber<Batch> | undefined;
  #closing = false;
  /** Batches given to a paced node (a transform or a sink) and not yet done, oldest first: their channel and delivery. */
  #pending: { channel: Channel; delivery: number }[] = [];

  #deliverer(channel: Channel, subscriber: Subscriber<Batch>): (batch: Batch) => void {
    if (channel.options.pacing !== 'explicit' && channel.options.pacing !== 'taken') return (batch) => subscriber.next(batch);
    return (batch) => {
      this.#pending.push({ channel, delivery: channel.delivery });
      subscriber.next(batch);
    };
  }

  /** The consumer failed: whatever it held is abandoned, and its channels may deliver to its successor. */
  abandonInFlight(): void {
    this.#pending.length = 0;
    for (const channel of this.channels) if (!channel.idle) channel.requeue();
  }

  /**
   * A paced node finished its oldest batch (a transform), or took it in (a
   * sink): its channel may deliver the next.
   */
  batchDone(): void {
    const oldest = this.#pending.shift();
    if (oldest?.channel.options.pacing === 'taken') oldest.channel.taken(oldest.delivery);
    else oldest?.channel.free();
    this.#maybeComplete();
  }

  observable(): Observable<Batch> {
    return new Observable<Batch>((subscriber) => {
      this.#subscriber = subscriber;
      this.#closing = false;
      for (const { channel } of this.#pending.splice(0)) channel.free();
      for (const channel of this.channels) channel.attach(this.#deliverer(channel, subscriber));
      this.#maybeComplete();
      return () => {
        if (this.#subscriber === subscriber) this.#subscriber = undefined;
        for (const channel of this.channels) channel.detach();
      };
    });
  }

  add(channel: Channel): void {
    this.channels.push(channel);
    if (this.#subscriber) channel.attach(this.#deliverer(channel, this.#subscriber));
    // A channel handed over by a reload whose producer already finished: this input completes once it drains.
    if (channel.producerDone) void this.producerFinished(channel);
  }

  remove(channel: Channel): void {
    const index = this.channels.indexOf(channel);
    if (index >= 0) this.channels.splice(index, 1);
    channel.detach();
    this.#maybeComplete();
  }

  /** Called when an upstream producer finishes: the input completes once all have and all is delivered. */
  async producerFinished(channel: Channel): Promise<void> {
    await channel.finish();
    this.#maybeComplete();
  }

  #maybeComplete(): void {
    const subscriber = this.#subscriber;
    if (!subscriber || this.#closing) return;
    if (this.channels.length > 0 && this.channels.every((c) => c.producerDone && c.idle)) {
      this.#closing = true;
      subscriber.complete();
    }
  }

  /** The consumer failed for good: its channels drop (and count) what they hold and what comes. */
  failConsumer(): number {
    this.#pending.length = 0;
    this.#subscriber = undefined;
    let dropped = 0;
    for (const channel of this.channels) dropped += channel.consumerFailed();
    return dropped;
  }

  /** Completes the current consumer's input now (it drains); waiting batches stay for the next consumer. */
  close(): void {
    const subscriber = this.#subscriber;
    if (!subscriber) return;
    for (const channel of this.channels) channel.detach();
    this.#subscriber = undefined;
    subscriber.complete();
  }
}
