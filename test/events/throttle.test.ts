import { describe, expect, it } from 'vitest';
import { map } from 'rxjs';
import { TestScheduler, type RunHelpers } from 'rxjs/testing';
import throttle from '../../nodes/events/throttle.ts';
import { batchOf, fakeContext, probeAck, schedulerClock, type TestClock } from '../helpers/fake-context.ts';
import type { Batch, EventRecord } from '../../runtime/api.ts';

function marbles(test: (helpers: RunHelpers) => void): void {
  new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(test);
}

const itemsOf = map((batch: Batch) => batch.items);

const r = (n: number, device = 'x'): EventRecord => ({ n, device });

/** A scheduler clock counting pending timers, to prove finalisers cancel them. */
function countingClock(): TestClock & { readonly active: number } {
  const clock = schedulerClock();
  let active = 0;
  return {
    now: clock.now,
    schedule(ms, fn) {
      active += 1;
      let live = true;
      const cancel = clock.schedule(ms, () => {
        live = false;
        active -= 1;
        fn();
      });
      return () => {
        if (live) active -= 1;
        live = false;
        cancel();
      };
    },
    get active() {
      return active;
    },
  };
}

describe('throttle dropping the excess', () => {
  it('completes without output on empty input', () => {
    marbles(({ cold, expectObservable }) => {
      expectObservable(throttle.create(fakeContext(throttle, { rate: 2 }))(cold<Batch>('|')).pipe(itemsOf)).toBe('|');
    });
  });

  it('passes a single record at once', () => {
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a|', { a: batchOf([r(1)]) });
      expectObservable(throttle.create(fakeContext(throttle, { rate: 2 }))(input).pipe(itemsOf)).toBe('a|', { a: [r(1)] });
    });
  });

  it('lets a burst of `rate` through, drops what exceeds it, and refills over `per`', () => {
    const ctx = fakeContext(throttle, { rate: 2, per: '1s' });
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a 99ms b 99ms c 799ms d|', { a: batchOf([r(1)]), b: batchOf([r(2)]), c: batchOf([r(3)]), d: batchOf([r(4)]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf)).toBe('a 99ms b 899ms d|', { a: [r(1)], b: [r(2)], d: [r(4)] });
    });
    expect(ctx.drops).toEqual({ throttled: 1 });
  });

  it('limits each key separately', () => {
    const ctx = fakeContext(throttle, { rate: 1, key: 'device' });
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a|', { a: batchOf([r(1, 'x'), r(2, 'y'), r(3, 'x')]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf)).toBe('a|', { a: [r(1, 'x'), r(2, 'y')] });
    });
    expect(ctx.drops).toEqual({ throttled: 1 });
  });

  it('releases a batch dropped whole at once and passes a partial batch\'s ack on', () => {
    const ctx = fakeContext(throttle, { rate: 1 });
    const kept = probeAck();
    const dropped = probeAck();
    const outputs: Batch[] = [];
    marbles(({ cold }) => {
      cold<Batch>('ab|', { a: batchOf([r(1), r(2)], kept.ack), b: batchOf([r(3)], dropped.ack) })
        .pipe((input) => throttle.create(ctx)(input))
        .subscribe((batch) => outputs.push(batch));
    });
    expect(outputs.map((batch) => batch.items)).toEqual([[r(1)]]);
    expect([kept.done, dropped.done]).toEqual([0, 1]);
    outputs[0].ack.release();
    expect(kept.done).toBe(1);
  });

  it('sends a record whose key expression throws to dead letters and goes on', () => {
    const ctx = fakeContext(throttle, { rate: 5, key: 'device.name' });
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a|', { a: batchOf([r(1), { n: 2, device: { name: 'x' } }]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf)).toBe('a|', { a: [{ n: 2, device: { name: 'x' } }] });
    });
    expect(ctx.failures.map((f) => f.item)).toEqual([r(1)]);
  });

  it('passes an input error on', () => {
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a#', { a: batchOf([r(1)]) });
      expectObservable(throttle.create(fakeContext(throttle, { rate: 1 }))(input).pipe(itemsOf)).toBe('a#', { a: [r(1)] });
    });
  });

  it('tells the runtime it is done with each batch, so the next may come', async () => {
    const ctx = fakeContext(throttle, { rate: 1 });
    marbles(({ cold }) => {
      throttle.create(ctx)(cold<Batch>('ab', { a: batchOf([r(1)]), b: batchOf([r(2)]) })).subscribe();
    });
    await Promise.resolve();
    expect(ctx.batchesDone).toBe(2);
  });
});

describe('throttle delaying the excess', () => {
  it('holds records over the rate until tokens refill, then completes once all are out', () => {
    const ctx = fakeContext(throttle, { rate: 1, per: '1s', when_over: 'delay' });
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a 499ms |', { a: batchOf([r(1), r(2), r(3)]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf)).toBe('a 999ms b 999ms (c|)', { a: [r(1)], b: [r(2)], c: [r(3)] });
    });
    expect(ctx.drops).toEqual({});
    expect(ctx.batchesDone).toBe(1);
  });

  it('keeps each key\'s records in order and does not make one key wait for another', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(throttle, { rate: 1, per: '100ms', key: 'device', when_over: 'delay' });
      const input = cold<Batch>('a 9ms b|', { a: batchOf([r(1, 'x'), r(2, 'x')]), b: batchOf([r(3, 'y')]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf)).toBe('a 9ms b 89ms (c|)', { a: [r(1, 'x')], b: [r(3, 'y')], c: [r(2, 'x')] });
    });
  });

  it('releases the source\'s ack only after every delayed record is acknowledged', () => {
    const ctx = fakeContext(throttle, { rate: 1, when_over: 'delay' });
    const probe = probeAck();
    const outputs: Batch[] = [];
    marbles(({ cold }) => {
      throttle.create(ctx)(cold<Batch>('a|', { a: batchOf([r(1), r(2)], probe.ack) })).subscribe((batch) => outputs.push(batch));
    });
    expect(outputs.map((batch) => batch.items)).toEqual([[r(1)], [r(2)]]);
    outputs[0].ack.release();
    expect(probe.done).toBe(0);
    outputs[1].ack.release();
    expect(probe.done).toBe(1);
  });

  it('goes on releasing delayed records while its input never ends', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(throttle, { rate: 1, per: '100ms', when_over: 'delay' });
      const input = cold<Batch>('a', { a: batchOf([r(1), r(2)]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf)).toBe('a 99ms b', { a: [r(1)], b: [r(2)] });
    });
  });

  it('cancels its timer when unsubscribed early', () => {
    const clock = countingClock();
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(throttle, { rate: 1, when_over: 'delay' }, { clock });
      const input = cold<Batch>('a', { a: batchOf([r(1), r(2)]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf), '^ 100ms !').toBe('a', { a: [r(1)] });
    });
    expect(clock.active).toBe(0);
  });

  it('cancels its timer on an input error', () => {
    const clock = countingClock();
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(throttle, { rate: 1, when_over: 'delay' }, { clock });
      const input = cold<Batch>('a 9ms #', { a: batchOf([r(1), r(2)]) });
      expectObservable(throttle.create(ctx)(input).pipe(itemsOf)).toBe('a 9ms #', { a: [r(1)] });
    });
    expect(clock.active).toBe(0);
  });
});
