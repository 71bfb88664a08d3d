/**
 * A quantile sketch with bounded memory and a stated relative error, after
 * DDSketch (Masson, Rim and Lee, VLDB 2019).
 *
 * Values fall into logarithmic buckets: bucket `i` holds the magnitudes in
 * `(γ^(i-1), γ^i]` with `γ = (1 + α) / (1 - α)`, and answers with
 * `2γ^i / (γ + 1)`, which is within a relative error `α` of every magnitude
 * in the bucket. So `quantile(q)` returns a value within `α` (1%) of the
 * exact value at rank `⌊q · (n − 1)⌋` of the sorted values, whatever their
 * distribution. Negative values are kept in a mirror store; zero exactly,
 * along with subnormal magnitudes (below 2.2·10^-308), whose logarithms
 * lose precision: for those the error is absolute, under 2.3·10^-308.
 *
 * Memory is bounded by `maxBuckets` buckets per sign (2048, about 16 KiB):
 * with `α = 1%` that covers magnitudes spanning a ratio of `γ^2048 ≈ 6·10^17`
 * (say from 10^-6 to 10^11) at full accuracy. Past that, the buckets of the
 * smallest magnitudes are merged into one, so only quantiles that fall among
 * those smallest magnitudes lose the guarantee. Sketches merge exactly (their
 * bucket counts add), which sessions and distributed aggregation need.
 */

/** The sketch's relative accuracy α: estimates are within 1% of the exact value. */
export const sketchRelativeAccuracy = 0.01;

/** Buckets kept per sign before the smallest magnitudes are merged. */
export const sketchMaxBuckets = 2048;

const gamma = (1 + sketchRelativeAccuracy) / (1 - sketchRelativeAccuracy);
const lnGamma = Math.log(gamma);

/** Smallest magnitude given a bucket: the smallest normal double. Below it counts as zero. */
const minIndexable = 2.2250738585072014e-308;

function bucketOf(magnitude: number): number {
  return Math.ceil(Math.log(magnitude) / lnGamma);
}

function valueOf(bucket: number): number {
  return (2 * Math.exp(bucket * lnGamma)) / (gamma + 1);
}

/** Dense bucket counts over a sliding range of bucket indexes, collapsing the lowest when full. */
class BucketStore {
  counts: number[] = [];
  /** Bucket index of `counts[0]`. */
  offset = 0;
  total = 0;

  add(bucket: number, count: number): void {
    const counts = this.counts;
    if (counts.length === 0) {
      counts.push(count);
      this.offset = bucket;
      this.total = count;
      return;
    }
    this.total += count;
    const top = this.offset + counts.length - 1;
    if (bucket < this.offset) {
      // Below the range: grow downwards, or fold into the lowest bucket the cap allows.
      const lowest = Math.max(bucket, top - sketchMaxBuckets + 1);
      if (lowest < this.offset) {
        const grow = this.offset - lowest;
        const padding = new Array<number>(grow).fill(0);
        this.counts = padding.concat(counts);
        this.offset = lowest;
      }
      this.counts[lowest - this.offset] += count;
      return;
    }
    if (bucket > top) {
      const lowest = bucket - sketchMaxBuckets + 1;
      if (lowest > this.offset) this.#collapseBelow(lowest);
      for (let i = this.offset + this.counts.length; i <= bucket; i++) this.counts.push(0);
    }
    this.counts[bucket - this.offset] += count;
  }

  /** Merges every bucket below `lowest` into `lowest`, dropping them. */
  #collapseBelow(lowest: number): void {
    const counts = this.counts;
    const cut = Math.min(lowest - this.offset, counts.length);
    let folded = 0;
    for (let i = 0; i < cut; i++) folded += counts[i];
    const kept = counts.slice(cut);
    if (kept.length === 0) kept.push(0);
    kept[0] += folded;
    this.counts = kept;
    this.offset = lowest;
  }

  merge(other: BucketStore): void {
    for (let i = 0; i < other.counts.length; i++) {
      if (other.counts[i] > 0) this.add(other.offset + i, other.counts[i]);
    }
  }
}

/** The JSON form of a sketch, for snapshots. */
export interface SketchState {
  count: number;
  zeros: number;
  min: number | null;
  max: number | null;
  positive: { offset: number; counts: number[] };
  negative: { offset: number; counts: number[] };
}

/**
 * A mergeable quantile sketch with relative accuracy `sketchRelativeAccuracy`.
 *
 * @example
 * const sketch = new QuantileSketch();
 * for (const latency of latencies) sketch.add(latency);
 * sketch.quantile(0.99); // within 1% of the exact p99
 */
export class QuantileSketch {
  #positive = new BucketStore();
  #negative = new BucketStore();
  #zeros = 0;
  #min = Infinity;
  #max = -Infinity;

  /** How many values were added. */
  get count(): number {
    return this.#positive.total + this.#negative.total + this.#zeros;
  }

  add(value: number): void {
    if (value !== value) return; // NaN has no rank
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
    if (value >= minIndexable) this.#positive.add(bucketOf(value), 1);
    else if (value <= -minIndexable) this.#negative.add(bucketOf(-value), 1);
    else this.#zeros += 1;
  }

  /** Adds every value of `other` (exact: bucket counts add). */
  merge(other: QuantileSketch): void {
    this.#positive.merge(other.#positive);
    this.#negative.merge(other.#negative);
    this.#zeros += other.#zeros;
    if (other.#min < this.#min) this.#min = other.#min;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  /**
   * The value at rank `⌊q · (n − 1)⌋` of the sorted values, within the
   * relative accuracy; undefined when the sketch is empty.
   */
  quantile(q: number): number | undefined {
    const count = this.count;
    if (count === 0) return undefined;
    const rank = Math.floor(Math.min(1, Math.max(0, q)) * (count - 1));
    let estimate: number;
    let seen = 0;
    found: {
      // Negative values from the most negative (the largest magnitude) up.
      const negative = this.#negative.counts;
      for (let i = negative.length - 1; i >= 0; i--) {
        seen += negative[i];
        if (seen > rank) {
          estimate = -valueOf(this.#negative.offset + i);
          break found;
        }
      }
      seen += this.#zeros;
      if (seen > rank) {
        estimate = 0;
        break found;
      }
      const positive = this.#positive.counts;
      for (let i = 0; i < positive.length; i++) {
        seen += positive[i];
        if (seen > rank) {
          estimate = valueOf(this.#positive.offset + i);
          break found;
        }
      }
      estimate = this.#max;
    }
    // The exact extremes can only bring the estimate closer to the true value.
    return Math.min(this.#max, Math.max(this.#min, estimate));
  }

  toJSON(): SketchState {
    return {
      count: this.count,
      zeros: this.#zeros,
      min: this.count > 0 ? this.#min : null,
      max: this.count > 0 ? this.#max : null,
      positive: { offset: this.#positive.offset, counts: [...this.#positive.counts] },
      negative: { offset: this.#negative.offset, counts: [...this.#negative.counts] },
    };
  }

  static fromJSON(state: SketchState): QuantileSketch {
    const sketch = new QuantileSketch();
    sketch.#zeros = state.zeros;
    sketch.#min = state.min ?? Infinity;
    sketch.#max = state.max ?? -Infinity;
    for (const [store, saved] of [[sketch.#positive, state.positive], [sketch.#negative, state.negative]] as const) {
      store.offset = saved.offset;
      store.counts = [...saved.counts];
      store.total = saved.counts.reduce((sum, n) => sum + n, 0);
    }
    return sketch;
  }
}
