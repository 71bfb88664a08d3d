import { describe, expect, it } from 'vitest';
import aggregate from '../../nodes/events/aggregate.ts';
import { batchOf, drive, fakeContext, probeAck } from '../helpers/fake-context.ts';
import type { EventRecord } from '../../runtime/api.ts';

const stats = { n: 'count()', total: 'sum(value)', low: 'min(value)', high: 'max(value)', mean: 'avg(value)' };

describe('aggregate over records without a window', () => {
  it('keeps one running aggregate and emits it once when the input ends', () => {
    const ctx = fakeContext(aggregate, stats);
    const run = drive(aggregate.create(ctx), [batchOf([{ value: 1 }, { value: 5 }]), batchOf([{ value: 3 }])]);
    expect(run.batches.map((batch) => batch.items)).toEqual([[{ n: 3, total: 9, low: 1, high: 5, mean: 3 }]]);
    expect(run.completed).toBe(true);
  });

  it('emits nothing when no record came', () => {
    const ctx = fakeContext(aggregate, stats);
    const run = drive(aggregate.create(ctx), []);
    expect(run.items()).toEqual([]);
    expect(run.completed).toBe(true);
  });

  it('holds every input batch until the result is acknowledged, then releases each exactly once', () => {
    const ctx = fakeContext(aggregate, stats);
    const probes = [probeAck(), probeAck()];
    const run = drive(aggregate.create(ctx), [batchOf([{ value: 1 }], probes[0].ack), batchOf([{ value: 2 }, { value: 3 }], probes[1].ack)]);
    expect(probes.map((p) => [p.done, p.settled])).toEqual([
      [0, 1],
      [0, 1],
    ]);
    run.releaseAll();
    expect(probes.map((p) => p.done)).toEqual([1, 1]);
  });

  it('sends records whose values are missing or not numbers to dead letters, counting them nowhere', () => {
    const ctx = fakeContext(aggregate, stats);
    const run = drive(aggregate.create(ctx), [batchOf([{ value: 2 }, { other: 1 }, { value: '7' }, { value: null }])]);
    expect(run.items()).toEqual([{ n: 1, total: 2, low: 2, high: 2, mean: 2 }]);
    expect(ctx.failures.map((f) => f.reason)).toEqual(['no such field `value`', '`value` is a string, not a number', '`value` is null, not a number']);
    expect(ctx.failures.every((f) => f.ack !== undefined)).toBe(true);
  });

  it('evaluates CEL expressions, turning CEL integers into numbers', () => {
    const ctx = fakeContext(aggregate, { total: 'sum(int(value) * 2)', big: 'max(value * 1.5)', kinds: 'distinct(device + "!")' });
    const run = drive(aggregate.create(ctx), [batchOf([{ value: 1, device: 'a' }, { value: 4, device: 'b' }, { value: 2, device: 'a' }])]);
    expect(run.items()).toEqual([{ total: 14, big: 6, kinds: 2 }]);
  });

  it('takes first and last in arrival order, and counts distinct values exactly', () => {
    const ctx = fakeContext(aggregate, { opening: 'first(name)', closing: 'last(name)', kinds: 'distinct(tag)' });
    const records = [{ name: 'x', tag: 1 }, { name: 'y', tag: '1' }, { name: 'z', tag: { a: 1 } }, { name: 'w', tag: { a: 1 } }];
    expect(drive(aggregate.create(ctx), [batchOf(records)]).items()).toEqual([{ opening: 'x', closing: 'w', kinds: 3 }]);
  });

  it('carries the running aggregate over to its successor when replaced', () => {
    const first = fakeContext(aggregate, stats, { stopReason: 'replaced' });
    const probe = probeAck();
    const before = drive(aggregate.create(first), [batchOf([{ value: 1 }, { value: 2 }], probe.ack)]);
    expect(before.items()).toEqual([]);
    expect(probe.done).toBe(1);
    const second = fakeContext(aggregate, stats, { restored: JSON.parse(JSON.stringify(first.takeSnapshot())) });
    const after = drive(aggregate.create(second), [batchOf([{ value: 6 }])]);
    expect(after.items()).toEqual([{ n: 3, total: 9, low: 1, high: 6, mean: 3 }]);
  });
});

describe('aggregate over window panes', () => {
  const pane = (key: string, start: number, records: EventRecord[]) => ({ key, start, end: start + 1000, records });

  it('emits one result per pane with its key and bounds, passing the batch\'s ack on', () => {
    const ctx = fakeContext(aggregate, { ...stats, opening: 'first(value)', closing: 'last(value)' });
    const probe = probeAck();
    const run = drive(aggregate.create(ctx), [batchOf([pane('a', 0, [{ value: 4 }, { value: 2 }]), pane('b', 0, [{ value: 7 }])], probe.ack)]);
    expect(run.items()).toEqual([
      { key: 'a', start: 0, end: 1000, n: 2, total: 6, low: 2, high: 4, mean: 3, opening: 4, closing: 2 },
      { key: 'b', start: 0, end: 1000, n: 1, total: 7, low: 7, high: 7, mean: 7, opening: 7, closing: 7 },
    ]);
    expect(run.batches[0].ack).toBe(probe.ack);
    run.releaseAll();
    expect(probe.done).toBe(1);
  });

  it('skips a pane none of whose records it can read, and releases an emptied batch', () => {
    const ctx = fakeContext(aggregate, stats);
    const probe = probeAck();
    const run = drive(aggregate.create(ctx), [batchOf([pane('a', 0, [{ value: 'x' }])], probe.ack)]);
    expect(run.items()).toEqual([]);
    expect(ctx.failures).toHaveLength(1);
    expect(probe.done).toBe(1);
  });
});

describe('aggregate settings', () => {
  it('refuses an unknown aggregate function, suggesting the nearest', () => {
    const parsed = aggregate.settings.safeParse({ m: 'avrg(value)' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0].message).toBe('unknown aggregate function `avrg`');
  });

  it('infers its output fields, with key and window bounds when fed by a window', () => {
    const settings = aggregate.settings.parse({ n: 'count()', p: 'quantile(v, 0.5)', f: 'first(v)' });
    expect(aggregate.infer!(settings, { in: { kind: 'event', schema: { key: 'any', start: 'number', end: 'number', records: 'list' } } })).toEqual({
      out: { kind: 'event', schema: { key: 'any', start: 'number', end: 'number', n: 'number', p: 'number', f: 'any' } },
    });
    expect(aggregate.infer!(settings, { in: { kind: 'event' } })).toEqual({ out: { kind: 'event', schema: { n: 'number', p: 'number', f: 'any' } } });
  });
});
