import { describe, expect, it } from 'vitest';
import generate from '../../nodes/events/generate.ts';
import { EMPTY } from 'rxjs';
import type { Batch, EventRecord } from '../../runtime/api.ts';
import { fakeContext, VirtualClock, type TestClock } from '../helpers/fake-context.ts';

/** A virtual clock whose timers fire `lateMs` after they were due, as real timers on a busy process do. */
function lateClock(clock: VirtualClock, lateMs: number): TestClock {
  return { now: () => clock.now(), schedule: (ms, fn) => clock.schedule(ms + lateMs, fn) };
}

/** Runs `generate` with `settings` on a virtual clock for `ms` and returns what it emitted. */
async function emittedOver(settings: object, ms: number, lateMs: number): Promise<EventRecord[][]> {
  const clock = new VirtualClock(1_000_000);
  const ctx = fakeContext(generate, settings, { clock: lateClock(clock, lateMs) });
  const batches: EventRecord[][] = [];
  const subscription = generate
    .create(ctx)(EMPTY)
    .subscribe((batch: Batch) => batches.push(batch.items as EventRecord[]));
  await Promise.resolve();
  for (let t = 0; t < ms; t += 1) clock.advance(1);
  subscription.unsubscribe();
  return batches;
}

describe('generate with a rate', () => {
  it('holds the rate when its timers fire late', async () => {
    // 10 ms ticks that fire 3 ms late: a fixed count a tick would give 1000 * 10/13 = 769 a second.
    const items = (await emittedOver({ rate: 1000, fields: { n: 'i' } }, 2000, 3)).flat();
    expect(items.length).toBeGreaterThanOrEqual(1990);
    expect(items.length).toBeLessThanOrEqual(2010);
    expect(items.map((item) => item.n)).toEqual(items.map((_, k) => k));
  });

  it('emits slow rates one event at a time', async () => {
    const batches = await emittedOver({ rate: 4, fields: { n: 'i' } }, 2000, 0);
    expect(batches.every((batch) => batch.length === 1)).toBe(true);
    expect(batches.length).toBeGreaterThanOrEqual(8);
    expect(batches.length).toBeLessThanOrEqual(9);
  });
});
