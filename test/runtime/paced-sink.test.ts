/**
 * A paced sink (`taken` pacing): it gets its next batch once it has taken
 * the last in (`ctx.batchDone()`) or acknowledged it, holds several batches
 * unacknowledged, and gives them all back, in order, when it fails.
 */
import { describe, expect, it } from 'vitest';
import { Ack } from '../../runtime/ack.ts';
import { Channel } from '../../runtime/channel.ts';
import { NodeInput } from '../../runtime/node-input.ts';
import type { Batch } from '../../runtime/types.ts';

/** A channel into a paced sink, what the sink got and what its source saw acknowledged. */
function pacedSink(pacing: 'taken' | 'ack' = 'taken') {
  const channel = new Channel('src.out', 'sink', { capacity: 100, capacityBytes: Infinity, whenFull: 'block', pacing });
  const input = new NodeInput();
  input.add(channel);
  const released: number[] = [];
  const push = (...numbers: number[]): void => {
    for (const n of numbers) channel.push({ items: [n], ack: new Ack(() => released.push(n)) });
  };
  const subscribe = () => {
    const got: Batch[] = [];
    const subscription = input.observable().subscribe({ next: (batch) => got.push(batch) });
    const items = (): unknown[] => got.map((b) => b.items[0]);
    return { got, items, subscription };
  };
  return { channel, input, released, push, subscribe };
}

describe('a paced sink', () => {
  it('gets the next batch once it has taken the last in, before acknowledging it', () => {
    const { channel, input, released, push, subscribe } = pacedSink();
    const sink = subscribe();
    push(1, 2, 3);
    expect(sink.items()).toEqual([1]);
    input.batchDone();
    expect(sink.items()).toEqual([1, 2]);
    input.batchDone();
    expect(sink.items()).toEqual([1, 2, 3]);
    expect(released).toEqual([]);
    // Holding three unacknowledged batches: the channel is not idle, its source not acknowledged.
    expect(channel.idle).toBe(false);
    sink.got[0].ack.release();
    sink.got[1].ack.release();
    expect(released).toEqual([1, 2]);
    input.batchDone();
    sink.got[2].ack.release();
    expect(released).toEqual([1, 2, 3]);
    expect(channel.idle).toBe(true);
  });

  it('is also freed by an acknowledgement, and a late batchDone then frees nothing more', () => {
    const { input, push, subscribe } = pacedSink();
    const sink = subscribe();
    push(1, 2, 3);
    sink.got[0].ack.release();
    expect(sink.items()).toEqual([1, 2]);
    // The batchDone owed for batch 1 comes after its ack: batch 2 is not taken in by it.
    input.batchDone();
    expect(sink.items()).toEqual([1, 2]);
    input.batchDone();
    expect(sink.items()).toEqual([1, 2, 3]);
  });

  it('without batchDone, gets one batch at a time as an unpaced sink does', () => {
    const { released, push, subscribe } = pacedSink('ack');
    const sink = subscribe();
    push(1, 2);
    expect(sink.items()).toEqual([1]);
    sink.got[0].ack.release();
    expect(sink.items()).toEqual([1, 2]);
    expect(released).toEqual([1]);
  });

  it('gives every unacknowledged batch back, in order, when it fails; its late acks count for nothing', async () => {
    const { channel, input, released, push, subscribe } = pacedSink();
    const failed = subscribe();
    push(1, 2, 3, 4);
    input.batchDone();
    input.batchDone();
    expect(failed.items()).toEqual([1, 2, 3]);
    failed.got[0].ack.release();
    failed.subscription.unsubscribe();
    input.abandonInFlight();
    expect(channel.depth).toBe(3);
    // A write of the failed sink that ends after the failure: the batch went back, its ack is not its to give.
    failed.got[1].ack.release();
    expect(released).toEqual([1]);
    const restarted = subscribe();
    await Promise.resolve();
    expect(restarted.items()).toEqual([2]);
    input.batchDone();
    input.batchDone();
    expect(restarted.items()).toEqual([2, 3, 4]);
    for (const batch of restarted.got) batch.ack.release();
    failed.got[2].ack.release();
    expect(released).toEqual([1, 2, 3, 4]);
    expect(channel.idle).toBe(true);
  });

  it('ends its input only once every batch it took in is acknowledged', async () => {
    const { channel, input, push, subscribe } = pacedSink();
    const sink = subscribe();
    let completed = false;
    push(1);
    input.batchDone();
    const drained = channel.finish().then(() => (completed = true));
    await Promise.resolve();
    expect(completed).toBe(false);
    sink.got[0].ack.release();
    await drained;
    expect(completed).toBe(true);
  });
});
