/**
 * Memory over a long run: a window node must hold only the windows still
 * open, however many have passed, and give back every acknowledgement and
 * timer it took. These drive many windows on a virtual clock and check the
 * node's state (its snapshot), its timers and its acks stay bounded.
 */
import { describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import sliding from '../../nodes/events/window-sliding.ts';
import tumbling from '../../nodes/events/window-tumbling.ts';
import aggregate from '../../nodes/events/aggregate.ts';
import type { WindowSnapshot } from '../../nodes/events/windowing/window-node.ts';
import { batchOf, drive, fakeContext, probeAck, VirtualClock, type AckProbe } from '../helpers/fake-context.ts';
import type { Batch } from '../../runtime/api.ts';

const keys = 20;
const stats = { count: 'count()', avg: 'avg(value)', p99: 'quantile(value, 0.99)', users: 'distinct(user)' };

/** One batch of `perKey` records for each key, users and values varying so sets and sketches fill. */
function batchAt(tick: number, perKey: number, ack: AckProbe): Batch {
  const items = [];
  for (let k = 0; k < keys; k++) {
    for (let r = 0; r < perKey; r++) items.push({ device: `dev-${k}`, value: 1 + ((tick * 7 + r * 13) % 100), user: (tick * perKey + r) % 500 });
  }
  return batchOf(items, ack.ack);
}

describe('window memory over many windows', () => {
  it('holds at most size/every open windows per key in processing time, and frees timers and acks of closed ones', () => {
    const clock = new VirtualClock(1_000_000);
    const ctx = fakeContext(sliding, { size: '10s', every: '1s', key: 'device' }, { clock });
    const fused = sliding.fuse!.aggregate(ctx, fakeContext(aggregate, stats, { clock }));
    const input = new Subject<Batch>();
    const run = drive(fused, input);
    const probes: AckProbe[] = [];
    let mostPanes = 0;
    // 600 ticks of 100 ms: 60 s of clock, 60 windows per key opened and closed.
    for (let tick = 0; tick < 600; tick++) {
      const probe = probeAck();
      probes.push(probe);
      input.next(batchAt(tick, 2, probe));
      clock.advance(100);
      run.releaseAll();
      expect(clock.pending).toBeLessThanOrEqual(1);
      // A snapshot copies every pane's sketch and set: take one every 11th tick, which still meets every phase of the 10-tick slide.
      if (tick % 11 === 0) mostPanes = Math.max(mostPanes, (ctx.takeSnapshot() as WindowSnapshot).panes.length);
    }
    // A record at time t is in windows starting in (t - 10 s, t]: ten open windows per key, one more while one is closing.
    expect(mostPanes).toBeLessThanOrEqual(11 * keys);
    // Every batch older than the longest window has been released by the windows that held it.
    const releasedByNow = probes.slice(0, -110);
    expect(releasedByNow.every((probe) => probe.done === 1)).toBe(true);
    input.complete();
    run.releaseAll();
    expect(probes.every((probe) => probe.done === 1)).toBe(true);
    expect((ctx.takeSnapshot() as WindowSnapshot).panes).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('holds only the windows the event-time watermark has not passed', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts', key: 'device' });
    const fused = tumbling.fuse!.aggregate(ctx, fakeContext(aggregate, stats));
    const input = new Subject<Batch>();
    const run = drive(fused, input);
    let mostPanes = 0;
    for (let tick = 0; tick < 1000; tick++) {
      const batch = batchAt(tick, 1, probeAck());
      for (const record of batch.items as Record<string, unknown>[]) record.ts = tick * 250;
      input.next(batch);
      run.releaseAll();
      if (tick % 10 === 0) mostPanes = Math.max(mostPanes, (ctx.takeSnapshot() as WindowSnapshot).panes.length);
    }
    expect(mostPanes).toBe(keys);
    // 250 s of event time in 1 s windows: all but the last, still open, have been emitted.
    expect(run.items()).toHaveLength(249 * keys);
  });

  it('keeps a sliding window\'s records once, in the slice of time they fall in, not once per window they belong to', () => {
    const ctx = fakeContext(sliding, { size: '10s', every: '1s', time: 'ts' });
    const input = new Subject<Batch>();
    const run = drive(sliding.fuse!.aggregate(ctx, fakeContext(aggregate, { n: 'count()' })), input);
    input.next(batchOf(Array.from({ length: 10 }, (_, i) => ({ ts: i * 100 }))));
    // Ten windows, [-9 s, 1 s) to [0 s, 10 s), hold these records; the node holds them once, in [0 s, 1 s).
    const saved = (ctx.takeSnapshot() as WindowSnapshot).panes;
    expect(saved.map((pane) => [pane.start, pane.end])).toEqual([[0, 1000]]);
    // When the input ends, the ten windows each count all ten.
    input.complete();
    expect(run.items()).toEqual(Array.from({ length: 10 }, (_, i) => ({ key: null, start: (i - 9) * 1000, end: (i + 1) * 1000, n: 10 })));
  });
});
