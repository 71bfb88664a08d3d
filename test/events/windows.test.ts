import { describe, expect, it } from 'vitest';
import { map } from 'rxjs';
import { TestScheduler, type RunHelpers } from 'rxjs/testing';
import tumbling from '../../nodes/events/window-tumbling.ts';
import sliding from '../../nodes/events/window-sliding.ts';
import session from '../../nodes/events/window-session.ts';
import aggregate from '../../nodes/events/aggregate.ts';
import { batchOf, drive, fakeContext, probeAck, schedulerClock, type TestClock } from '../helpers/fake-context.ts';
import type { Batch, EventRecord } from '../../runtime/api.ts';

function marbles(test: (helpers: RunHelpers) => void): void {
  new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(test);
}

/** Items of each output batch, which is what marble diagrams compare. */
const itemsOf = map((batch: Batch) => batch.items);

function pane(start: number, end: number, records: EventRecord[], key: unknown = null): EventRecord {
  return { key, start, end, records };
}

/** A scheduler clock that counts the timers still pending, to prove finalisers cancel them. */
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

const a = { device: 'x', value: 1 };
const b = { device: 'y', value: 2 };
const c = { device: 'x', value: 3 };

describe('window.tumbling in processing time', () => {
  it('completes without output on empty input', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(tumbling, { size: '1s' });
      expectObservable(tumbling.create(ctx)(cold<Batch>('|')).pipe(itemsOf)).toBe('|');
    });
  });

  it('emits the partial window of a single record when its input ends', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(tumbling, { size: '1s' });
      const input = cold<Batch>('a|', { a: batchOf([a]) });
      expectObservable(tumbling.create(ctx)(input).pipe(itemsOf)).toBe('-(x|)', { x: [pane(0, 1000, [a])] });
    });
  });

  it('closes each window on the clock at its end and flushes the partial one on completion', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(tumbling, { size: '1s' });
      const input = cold<Batch>('a 499ms b 999ms c 299ms |', { a: batchOf([a]), b: batchOf([b]), c: batchOf([c]) });
      expectObservable(tumbling.create(ctx)(input).pipe(itemsOf)).toBe('1000ms x 799ms (y|)', {
        x: [pane(0, 1000, [a, b])],
        y: [pane(1000, 2000, [c])],
      });
    });
  });

  it('keeps one window per key, ordered by key within a window', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(tumbling, { size: '1s', key: 'device' });
      const input = cold<Batch>('a 99ms b|', { a: batchOf([b, a]), b: batchOf([c]) });
      expectObservable(tumbling.create(ctx)(input).pipe(itemsOf)).toBe('101ms (x|)', {
        x: [pane(0, 1000, [a, c], 'x'), pane(0, 1000, [b], 'y')],
      });
    });
  });

  it('passes an input error on without emitting its open windows', () => {
    marbles(({ cold, expectObservable }) => {
      const clock = countingClock();
      const ctx = fakeContext(tumbling, { size: '1s' }, { clock });
      const input = cold<Batch>('a 99ms #', { a: batchOf([a]) }, new Error('upstream broke'));
      expectObservable(tumbling.create(ctx)(input).pipe(itemsOf)).toBe('100ms #', undefined, new Error('upstream broke'));
    });
  });

  it('goes on closing windows on the clock while its input never ends', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(tumbling, { size: '1s' });
      const input = cold<Batch>('a 1999ms b', { a: batchOf([a]), b: batchOf([b]) });
      expectObservable(tumbling.create(ctx)(input).pipe(itemsOf)).toBe('1000ms x 1999ms y', {
        x: [pane(0, 1000, [a])],
        y: [pane(2000, 3000, [b])],
      });
    });
  });

  it('cancels its timers and its input when unsubscribed early', () => {
    const clock = countingClock();
    marbles(({ cold, expectObservable, expectSubscriptions }) => {
      const ctx = fakeContext(tumbling, { size: '1s' }, { clock });
      const input = cold<Batch>('a 999ms b', { a: batchOf([a]), b: batchOf([b]) });
      expectObservable(tumbling.create(ctx)(input).pipe(itemsOf), '^ 500ms !').toBe('');
      expectSubscriptions(input.subscriptions).toBe('^ 500ms !');
    });
    expect(clock.active).toBe(0);
  });

  it('sends a record whose key expression throws to dead letters and goes on with the rest', () => {
    const ctx = fakeContext(tumbling, { size: '1s', key: 'device.name' });
    const good = { device: { name: 'n1' }, value: 1 };
    const bad = { device: 'plain', value: 2 };
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a|', { a: batchOf([bad, good]) });
      expectObservable(tumbling.create(ctx)(input).pipe(itemsOf)).toBe('-(x|)', { x: [pane(0, 1000, [good], 'n1')] });
    });
    expect(ctx.failures.map((f) => f.item)).toEqual([bad]);
    expect(ctx.failures[0].reason).toMatch(/^key: /);
  });
});

describe('window.sliding in processing time', () => {
  it('puts each record in every overlapping window, each closing on the clock', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(sliding, { size: '1s', every: '500ms' });
      const input = cold<Batch>('a 1199ms |', { a: batchOf([a]) });
      expectObservable(sliding.create(ctx)(input).pipe(itemsOf)).toBe('500ms x 499ms y 199ms |', {
        x: [pane(-500, 500, [a])],
        y: [pane(0, 1000, [a])],
      });
    });
  });

  it('refuses a slide longer than the window', () => {
    const parsed = sliding.settings.safeParse({ size: '1s', every: '2s' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0].path).toEqual(['every']);
  });
});

describe('window.session in processing time', () => {
  it('closes a session a gap after its last record and flushes the open one on completion', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(session, { gap: '300ms' });
      const input = cold<Batch>('a 199ms b 499ms c 99ms |', { a: batchOf([a]), b: batchOf([b]), c: batchOf([c]) });
      expectObservable(session.create(ctx)(input).pipe(itemsOf)).toBe('500ms x 299ms (y|)', {
        x: [pane(0, 500, [a, b])],
        y: [pane(700, 1000, [c])],
      });
    });
  });

  it('cancels its timers when unsubscribed early', () => {
    const clock = countingClock();
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(session, { gap: '300ms' }, { clock });
      expectObservable(session.create(ctx)(cold<Batch>('a', { a: batchOf([a]) })).pipe(itemsOf), '^ 100ms !').toBe('');
    });
    expect(clock.active).toBe(0);
  });

  it('refuses a max_size shorter than the gap', () => {
    expect(session.settings.safeParse({ gap: '1m', max_size: '30s' }).success).toBe(false);
  });
});

describe('windows in event time', () => {
  const r = (ts: number | string, device = 'x', value = 1): EventRecord => ({ ts, device, value });

  it('reads ISO 8601 time strings as event time', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts' });
    const record = r('1970-01-01T00:00:01.500Z');
    const run = drive(tumbling.create(ctx), [batchOf([record])]);
    expect(run.items()).toEqual([pane(1000, 2000, [record])]);
  });

  it('sends records with a missing or unreadable time to dead letters with the reason', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts' });
    const missing = { device: 'x' };
    const garbled = r('yesterday-ish');
    const wrongType = r(true as never);
    const run = drive(tumbling.create(ctx), [batchOf([missing, garbled, wrongType, r(5)])]);
    expect(run.items()).toEqual([pane(0, 1000, [r(5)])]);
    expect(ctx.failures.map((f) => f.reason)).toEqual([
      'no such field `ts`',
      'time field `ts` is not a date: `yesterday-ish`',
      'time field `ts` is a boolean, not epoch milliseconds or an ISO date',
    ]);
  });

  it('closes a window once the watermark passes its end, without waiting for the input to end', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts' });
    const run = drive(tumbling.create(ctx), [batchOf([r(100), r(999)]), batchOf([r(1000)])]);
    expect(run.batches.map((batch) => batch.items)).toEqual([[pane(0, 1000, [r(100), r(999)])], [pane(1000, 2000, [r(1000)])]]);
  });

  it('keeps a window open for `lateness` past its end, then sends stragglers to the late port', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts', lateness: '500ms' });
    const probe = probeAck();
    const run = drive(tumbling.create(ctx), [batchOf([r(100), r(1400), r(900)]), batchOf([r(1500), r(800, 'y')], probe.ack)]);
    // 900 arrives while the watermark (1400) is within lateness: still on time. 1500 closes [0, 1s); 800 is late.
    expect(run.batches[0].items).toEqual([pane(0, 1000, [r(100), r(900)])]);
    expect(ctx.portItems('late')).toEqual([r(800, 'y')]);
    run.releaseAll();
    expect(probe.done).toBe(0);
    ctx.ports.get('late')![0].ack.release();
    expect(probe.done).toBe(1);
  });

  it('orders the windows of one flush by start, then key', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts', key: 'device', lateness: '1s' });
    const run = drive(tumbling.create(ctx), [batchOf([r(1500, 'b'), r(200, 'b'), r(300, 'a'), r(1600, 'a')]), batchOf([r(5000)])]);
    expect(run.batches[0].items.map((p) => [(p as EventRecord).start, (p as EventRecord).key])).toEqual([
      [0, 'a'],
      [0, 'b'],
      [1000, 'a'],
      [1000, 'b'],
    ]);
  });

  it('splits a flush of many keys into batches of 1024 and releases the source once all are acknowledged', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts', key: 'device' });
    const probe = probeAck();
    const records = Array.from({ length: 3000 }, (_, i) => r(i % 1000, `d${String(i).padStart(4, '0')}`));
    const run = drive(tumbling.create(ctx), [batchOf(records, probe.ack)]);
    expect(run.batches.map((batch) => batch.items.length)).toEqual([1024, 1024, 952]);
    expect(run.items().map((p) => (p as EventRecord).key)).toEqual(records.map((record) => record.device));
    run.batches[0].ack.release();
    run.batches[1].ack.release();
    expect(probe.done).toBe(0);
    run.batches[2].ack.release();
    expect(probe.done).toBe(1);
  });

  it('keys by a CEL expression, turning CEL integers into numbers and keeping 1 and "1" apart', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts', key: 'int(n) % 2' });
    const odd = { ts: 1, n: 3 };
    const even = { ts: 2, n: 4 };
    const run = drive(tumbling.create(ctx), [batchOf([odd, even])]);
    expect(run.items()).toEqual([pane(0, 1000, [even], 0), pane(0, 1000, [odd], 1)]);

    const mixed = fakeContext(tumbling, { size: '1s', time: 'ts', key: 'id' });
    const number = { ts: 1, id: 1 };
    const text = { ts: 2, id: '1' };
    expect(drive(tumbling.create(mixed), [batchOf([number, text])]).items()).toHaveLength(2);
  });

  it('sends a record whose key field is missing to dead letters', () => {
    const ctx = fakeContext(tumbling, { size: '1s', time: 'ts', key: 'device' });
    drive(tumbling.create(ctx), [batchOf([{ ts: 1 }])]);
    expect(ctx.failures.map((f) => f.reason)).toEqual(['no such field `device`']);
  });

  it('starts a new session rather than grow one past max_size, and merges sessions an out-of-order record bridges', () => {
    const ctx = fakeContext(session, { gap: '100ms', time: 'ts', max_size: '250ms', lateness: '200ms' });
    const run = drive(session.create(ctx), [batchOf([r(0), r(60), r(120), r(180), r(500), r(640), r(570)])]);
    expect(run.items()).toEqual([pane(0, 220, [r(0), r(60), r(120)]), pane(180, 280, [r(180)]), pane(500, 740, [r(500), r(570), r(640)])]);
  });
});

describe('window and aggregate fused', () => {
  const settings = { size: '1s', time: 'ts', key: 'device' };
  const stats = { count: 'count()', total: 'sum(value)', low: 'min(value)', high: 'max(value)', mean: 'avg(value)' };

  it('folds records into aggregates per window and key as they arrive', () => {
    const windowCtx = fakeContext(tumbling, settings);
    const aggregateCtx = fakeContext(aggregate, stats);
    const records = [
      { ts: 10, device: 'a', value: 4 },
      { ts: 20, device: 'b', value: 1 },
      { ts: 30, device: 'a', value: 2 },
      { ts: 1200, device: 'a', value: 9 },
    ];
    const run = drive(tumbling.fuse!.aggregate(windowCtx, aggregateCtx), [batchOf(records)]);
    expect(run.items()).toEqual([
      { key: 'a', start: 0, end: 1000, count: 2, total: 6, low: 2, high: 4, mean: 3 },
      { key: 'b', start: 0, end: 1000, count: 1, total: 1, low: 1, high: 1, mean: 1 },
      { key: 'a', start: 1000, end: 2000, count: 1, total: 9, low: 9, high: 9, mean: 9 },
    ]);
  });

  it('sends records the aggregate cannot read to the aggregate\'s dead letters, and key failures to the window\'s', () => {
    const windowCtx = fakeContext(tumbling, settings);
    const aggregateCtx = fakeContext(aggregate, stats);
    const noValue = { ts: 10, device: 'a' };
    const textValue = { ts: 10, device: 'a', value: 'high' };
    const noKey = { ts: 10, value: 1 };
    const run = drive(tumbling.fuse!.aggregate(windowCtx, aggregateCtx), [batchOf([noValue, textValue, noKey, { ts: 10, device: 'a', value: 5 }])]);
    expect(run.items()).toEqual([{ key: 'a', start: 0, end: 1000, count: 1, total: 5, low: 5, high: 5, mean: 5 }]);
    expect(aggregateCtx.failures.map((f) => f.reason)).toEqual(['no such field `value`', '`value` is a string, not a number']);
    expect(windowCtx.failures.map((f) => f.item)).toEqual([noKey]);
  });
});

describe('window state', () => {
  const settings = { size: '1s', time: 'ts' };
  const r = (ts: number): EventRecord => ({ ts, value: ts });

  it('keeps open windows for its successor when replaced, and the restored node resumes them', () => {
    const first = fakeContext(tumbling, settings, { stopReason: 'replaced' });
    const probe = probeAck();
    const before = drive(tumbling.create(first), [batchOf([r(100), r(600)], probe.ack)]);
    expect(before.completed).toBe(true);
    expect(before.items()).toEqual([]);
    // The snapshot now owns the folded records: the source may commit them.
    expect(probe.done).toBe(1);
    const saved = JSON.parse(JSON.stringify(first.takeSnapshot()));

    const second = fakeContext(tumbling, settings, { restored: saved });
    const after = drive(tumbling.create(second), [batchOf([r(700), r(1500)])]);
    expect(after.batches[0].items).toEqual([pane(0, 1000, [r(100), r(600), r(700)])]);
    expect(after.items()).toEqual([pane(0, 1000, [r(100), r(600), r(700)]), pane(1000, 2000, [r(1500)])]);
  });

  it('restores the watermark, so records late before the restart are late after it', () => {
    const first = fakeContext(tumbling, settings, { stopReason: 'suspend' });
    drive(tumbling.create(first), [batchOf([r(2500)])]);
    const second = fakeContext(tumbling, settings, { restored: JSON.parse(JSON.stringify(first.takeSnapshot())) });
    drive(tumbling.create(second), [batchOf([r(900)])]);
    expect(second.portItems('late')).toEqual([r(900)]);
  });

  it('resumes fused aggregates, sketches included, from a snapshot', () => {
    const aggregates = { n: 'count()', p50: 'quantile(value, 0.5)', kinds: 'distinct(value)', opening: 'first(value)', closing: 'last(value)' };
    const first = fakeContext(session, { gap: '1s', time: 'ts' }, { stopReason: 'replaced' });
    drive(session.fuse!.aggregate(first, fakeContext(aggregate, aggregates)), [batchOf([r(100), r(300)])]);
    const saved = JSON.parse(JSON.stringify(first.takeSnapshot()));
    const second = fakeContext(session, { gap: '1s', time: 'ts' }, { restored: saved });
    const run = drive(session.fuse!.aggregate(second, fakeContext(aggregate, aggregates)), [batchOf([r(200), r(500)])]);
    const [result] = run.items() as EventRecord[];
    expect({ ...result, p50: undefined }).toEqual({ key: null, start: 100, end: 1500, n: 4, p50: undefined, kinds: 4, opening: 100, closing: 500 });
    expect(Math.abs((result.p50 as number) - 200)).toBeLessThanOrEqual(2);
  });

  it('flushes its open windows when the input ends for good', () => {
    const ctx = fakeContext(tumbling, settings, { stopReason: 'shutdown' });
    const run = drive(tumbling.create(ctx), [batchOf([r(100)])]);
    expect(run.items()).toEqual([pane(0, 1000, [r(100)])]);
    expect((ctx.takeSnapshot() as { panes: unknown[] }).panes).toEqual([]);
  });

  it('re-windows, and says so, the records of a snapshot saved under other window settings', () => {
    const first = fakeContext(tumbling, settings, { stopReason: 'replaced' });
    drive(tumbling.create(first), [batchOf([r(100)])]);
    const second = fakeContext(tumbling, { size: '2s', time: 'ts' }, { restored: first.takeSnapshot() });
    const run = drive(tumbling.create(second), [batchOf([r(2100)])]);
    expect(run.items()).toEqual([pane(0, 2000, [r(100)]), pane(2000, 4000, [r(2100)])]);
    expect(second.logs.map((log) => log.message)).toEqual(['re-windowed 1 record saved under other window settings']);
  });
});
