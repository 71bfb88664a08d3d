import { describe, expect, it } from 'vitest';
import { map } from 'rxjs';
import { TestScheduler, type RunHelpers } from 'rxjs/testing';
import dedupe from '../../nodes/events/dedupe.ts';
import { batchOf, drive, fakeContext, probeAck } from '../helpers/fake-context.ts';
import type { Batch } from '../../runtime/api.ts';

function marbles(test: (helpers: RunHelpers) => void): void {
  new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(test);
}

const itemsOf = map((batch: Batch) => batch.items);

const one = { id: 1, value: 'a' };
const again = { id: 1, value: 'b' };
const two = { id: 2, value: 'c' };

describe('dedupe', () => {
  it('completes without output on empty input', () => {
    marbles(({ cold, expectObservable }) => {
      expectObservable(dedupe.create(fakeContext(dedupe, {}))(cold<Batch>('|')).pipe(itemsOf)).toBe('|');
    });
  });

  it('passes a single record through unchanged', () => {
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a|', { a: batchOf([one]) });
      expectObservable(dedupe.create(fakeContext(dedupe, { key: 'id' }))(input).pipe(itemsOf)).toBe('a|', { a: [one] });
    });
  });

  it('passes the first record of each key and drops repeats within the window, counting them', () => {
    const ctx = fakeContext(dedupe, { key: 'id', window: '100ms' });
    marbles(({ cold, expectObservable }) => {
      // Repeats at 50ms (inside the window) and 100ms (the first sighting has expired).
      const input = cold<Batch>('a 49ms b 49ms c|', { a: batchOf([one, two]), b: batchOf([again, two]), c: batchOf([again]) });
      expectObservable(dedupe.create(ctx)(input).pipe(itemsOf)).toBe('a 99ms c|', { a: [one, two], c: [again] });
    });
    expect(ctx.drops).toEqual({ duplicate: 2 });
  });

  it('measures the window from the first sighting: repeats do not extend it', () => {
    marbles(({ cold, expectObservable }) => {
      const ctx = fakeContext(dedupe, { key: 'id', window: '100ms' });
      const input = cold<Batch>('a 59ms b 59ms c', { a: batchOf([one]), b: batchOf([again]), c: batchOf([again]) });
      expectObservable(dedupe.create(ctx)(input).pipe(itemsOf)).toBe('a 119ms c', { a: [one], c: [again] });
    });
  });

  it('uses the whole record as the key by default', () => {
    const ctx = fakeContext(dedupe, {});
    const run = drive(dedupe.create(ctx), [batchOf([one, { ...one }, again])]);
    expect(run.items()).toEqual([one, again]);
  });

  it('forgets the oldest keys beyond its capacity, so their repeats pass again', () => {
    const ctx = fakeContext(dedupe, { key: 'id', capacity: 2 });
    const run = drive(dedupe.create(ctx), [batchOf([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 1 }, { id: 3 }])]);
    expect(run.items()).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 1 }]);
    expect(ctx.drops).toEqual({ duplicate: 1 });
  });

  it('sends a record whose key expression throws to dead letters and goes on', () => {
    const ctx = fakeContext(dedupe, { key: 'user.name' });
    const bad = { user: 7 };
    const good = { user: { name: 'x' } };
    const run = drive(dedupe.create(ctx), [batchOf([bad, good])]);
    expect(run.items()).toEqual([good]);
    expect(ctx.failures.map((f) => f.item)).toEqual([bad]);
  });

  it('releases a batch of nothing but duplicates at once, and passes a partial batch\'s ack on', () => {
    const ctx = fakeContext(dedupe, { key: 'id' });
    const first = probeAck();
    const repeats = probeAck();
    const mixed = probeAck();
    const run = drive(dedupe.create(ctx), [batchOf([one], first.ack), batchOf([again], repeats.ack), batchOf([again, two], mixed.ack)]);
    expect([first.done, repeats.done, mixed.done]).toEqual([0, 1, 0]);
    expect(run.batches[1].items).toEqual([two]);
    run.releaseAll();
    expect([first.done, repeats.done, mixed.done]).toEqual([1, 1, 1]);
  });

  it('passes an input error on', () => {
    marbles(({ cold, expectObservable }) => {
      const input = cold<Batch>('a#', { a: batchOf([one]) });
      expectObservable(dedupe.create(fakeContext(dedupe, { key: 'id' }))(input).pipe(itemsOf)).toBe('a#', { a: [one] });
    });
  });

  it('keeps passing records while its input never ends, and unsubscribes from it early', () => {
    marbles(({ cold, expectObservable, expectSubscriptions }) => {
      const input = cold<Batch>('a 9ms b 9ms c', { a: batchOf([one]), b: batchOf([again]), c: batchOf([two]) });
      expectObservable(dedupe.create(fakeContext(dedupe, { key: 'id' }))(input).pipe(itemsOf), '^ 15ms !').toBe('a', { a: [one] });
      expectSubscriptions(input.subscriptions).toBe('^ 15ms !');
    });
  });

  it('remembers its keys across a restart through its snapshot', () => {
    const first = fakeContext(dedupe, { key: 'id' });
    drive(dedupe.create(first), [batchOf([one])]);
    const second = fakeContext(dedupe, { key: 'id' }, { restored: JSON.parse(JSON.stringify(first.takeSnapshot())) });
    expect(drive(dedupe.create(second), [batchOf([again, two])]).items()).toEqual([two]);
  });
});
