/**
 * A fixed-bucket histogram for a node's own metrics: `observe` is a short
 * scan of the bounds and two additions on the hot path; `family` gives what
 * `NodeMetrics.expose` exports at a scrape.
 */
import type { NodeMetricFamily } from './types.ts';

export class BucketHistogram {
  readonly bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;

  /** `bounds`: upper bounds, ascending. */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.#counts[i] += 1;
    this.#sum += value;
  }

  /** The histogram as an exposed family named `name`. */
  family(name: string, help: string): NodeMetricFamily {
    return { name, help, type: 'histogram', bounds: this.bounds, counts: [...this.#counts], sum: this.#sum };
  }
}
