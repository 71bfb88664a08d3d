/**
 * The folder for aggregates made only of `count()`, `sum`, `min`, `max` and
 * `avg`: the hot path of a windowed rollup. Whatever subset is asked for,
 * each pane keeps the record count and, per distinct expression, its sum,
 * minimum and maximum, so that folding a record is a fixed run of
 * arithmetic with no dispatch on the aggregate kind (cheaper than the
 * branches that would skip what is not asked for). `avg` is `sum / count`.
 */
import type { AggregateSpec } from '../../../runtime/api.ts';
import { loadNumbers, saveNumbers, shapeOf, type AggregateSources } from './aggregate-sources.ts';
import type { AggregateFolder } from './aggregators.ts';
import type { PaneFolder } from './pane-folder.ts';

const simple = new Set<AggregateSpec['fn']>(['count', 'sum', 'min', 'max', 'avg']);

/** An output field: where its value lives in a pane's numbers. */
interface Output {
  name: string;
  fn: AggregateSpec['fn'];
  /** Slot of the sum, min or max (the sum for avg); unused for count. */
  slot: number;
}

/**
 * A folder for `specs` when they are all `count`, `sum`, `min`, `max` or
 * `avg`; undefined otherwise. Layout of a pane's numbers: `[count, sum₀,
 * min₀, max₀, sum₁, min₁, max₁, …]`, one triple per expression.
 */
export function compileNumericAggregates(specs: Readonly<Record<string, AggregateSpec>>, sources: AggregateSources): AggregateFolder | undefined {
  const entries = Object.entries(specs);
  if (!entries.every(([, spec]) => simple.has(spec.fn))) return undefined;
  const width = sources.texts.length;
  const initial = new Float64Array(1 + 3 * width);
  for (let s = 0; s < width; s++) {
    initial[2 + 3 * s] = Infinity;
    initial[3 + 3 * s] = -Infinity;
  }
  const outputs: Output[] = entries.map(([name, spec]) => {
    const base = spec.expr === undefined ? 0 : 1 + 3 * sources.slotOf(spec.expr);
    return { name, fn: spec.fn, slot: spec.fn === 'min' ? base + 1 : spec.fn === 'max' ? base + 2 : base };
  });
  const values = sources.numbers;

  // A pane's state is its slots alone: folding a record reaches one object fewer than a `{nums, objs}` would.
  const folder: PaneFolder<Float64Array> & { names: readonly string[] } = {
    names: outputs.map((o) => o.name),
    shape: shapeOf('numeric', specs),
    prepare: sources.prepare,
    create() {
      return new Float64Array(initial);
    },
    add(nums) {
      nums[0] += 1;
      for (let s = 0, k = 1; s < width; s++, k += 3) {
        const x = values[s];
        nums[k] += x;
        if (x < nums[k + 1]) nums[k + 1] = x;
        if (x > nums[k + 2]) nums[k + 2] = x;
      }
    },
    merge(a, b) {
      a[0] += b[0];
      for (let k = 1; k < a.length; k += 3) {
        a[k] += b[k];
        if (b[k + 1] < a[k + 1]) a[k + 1] = b[k + 1];
        if (b[k + 2] > a[k + 2]) a[k + 2] = b[k + 2];
      }
    },
    write(nums, out) {
      const count = nums[0];
      for (let i = 0; i < outputs.length; i++) {
        const { name, fn, slot } = outputs[i];
        switch (fn) {
          case 'count':
            out[name] = count;
            break;
          case 'avg':
            out[name] = count > 0 ? nums[slot] / count : null;
            break;
          default:
            // min and max are infinite only while empty (JSON has no infinities to aggregate).
            out[name] = Number.isFinite(nums[slot]) || fn === 'sum' ? nums[slot] : null;
        }
      }
    },
    // Saved as the general folder saves (`{nums, objs}`), so snapshots read back across versions.
    save(nums) {
      return { nums: saveNumbers(nums), objs: [] };
    },
    load(saved) {
      return loadNumbers((saved as { nums: (number | string)[] }).nums);
    },
  };
  return folder as AggregateFolder;
}
