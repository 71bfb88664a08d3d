import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { QuantileSketch, sketchMaxBuckets, sketchRelativeAccuracy } from '../../nodes/events/windowing/quantile-sketch.ts';

function exact(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))];
}

function sketchOf(values: readonly number[]): QuantileSketch {
  const sketch = new QuantileSketch();
  for (const value of values) sketch.add(value);
  return sketch;
}

/**
 * The sketch's promise: relative error α, with a hair of slack for the float
 * arithmetic of bucket boundaries, and absolute for subnormal magnitudes.
 */
function expectWithinError(estimate: number | undefined, truth: number): void {
  expect(estimate).toBeDefined();
  expect(Math.abs(estimate! - truth)).toBeLessThanOrEqual(sketchRelativeAccuracy * Math.abs(truth) * (1 + 1e-9) + 2.3e-308);
}

/**
 * Values whose magnitudes span a ratio of 10^17, within the 6·10^17 that the
 * sketch's buckets cover at full accuracy; zeros and both signs included.
 */
const finite = fc.oneof(
  fc.constant(0),
  fc.tuple(fc.boolean(), fc.double({ min: 1e-6, max: 1e11, noNaN: true })).map(([negative, magnitude]) => (negative ? -magnitude : magnitude)),
  fc.integer({ min: -1000, max: 1000 }),
);

describe('quantile sketch', () => {
  it('estimates any quantile within its stated 1% relative error of the exact value', () => {
    fc.assert(
      fc.property(fc.array(finite, { minLength: 1, maxLength: 400 }), fc.double({ min: 0, max: 1, noNaN: true }), (values, q) => {
        expectWithinError(sketchOf(values).quantile(q), exact(values, q));
      }),
      { numRuns: 500 },
    );
  });

  it('stays within the error on heavy-tailed, negative and zero-laden data', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const lognormal = Array.from({ length: 20_000 }, () => Math.exp(6 * (random() + random() + random() - 1.5)));
    const mixed = Array.from({ length: 20_000 }, (_, i) => (i % 5 === 0 ? 0 : (random() - 0.6) * 1000));
    for (const values of [lognormal, mixed]) {
      const sketch = sketchOf(values);
      for (const q of [0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1]) expectWithinError(sketch.quantile(q), exact(values, q));
    }
  });

  it('merges exactly: two merged sketches answer as one sketch of all values', () => {
    fc.assert(
      fc.property(fc.array(finite, { maxLength: 200 }), fc.array(finite, { maxLength: 200 }), fc.double({ min: 0, max: 1, noNaN: true }), (left, right, q) => {
        const merged = sketchOf(left);
        merged.merge(sketchOf(right));
        expect(merged.quantile(q)).toBe(sketchOf([...left, ...right]).quantile(q));
      }),
    );
  });

  it('keeps at most its bucket bound per sign over values spanning 600 orders of magnitude, the top 17 of them still accurate', () => {
    const values = Array.from({ length: 6000 }, (_, i) => 10 ** (-300 + i / 10));
    const sketch = sketchOf(values);
    expect(sketch.toJSON().positive.counts.length).toBeLessThanOrEqual(sketchMaxBuckets);
    // The buckets cover a ratio of γ^2048 ≈ 6·10^17: the highest 17 decades of 600, so quantiles above 0.972.
    for (const q of [0.975, 0.99, 1]) expectWithinError(sketch.quantile(q), exact(values, q));
  });

  it('survives a JSON round trip unchanged', () => {
    const sketch = sketchOf([1, 2, 3, -4, 0, 1e6]);
    const copy = QuantileSketch.fromJSON(JSON.parse(JSON.stringify(sketch.toJSON())));
    for (const q of [0, 0.3, 0.5, 0.8, 1]) expect(copy.quantile(q)).toBe(sketch.quantile(q));
    expect(copy.count).toBe(6);
  });

  it('answers undefined when empty', () => {
    expect(new QuantileSketch().quantile(0.5)).toBeUndefined();
  });
});
