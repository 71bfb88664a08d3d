/**
 * Aggregates compiled once per node into a pane folder: `count()`, `sum`,
 * `min`, `max`, `avg`, `quantile` (a bounded sketch), `distinct` (exact),
 * `first` and `last`.
 *
 * The hot path (a fused window and aggregate over millions of records)
 * allocates nothing per record: each distinct expression is read once per
 * record into a scratch slot (`aggregate-sources.ts`), and the numeric
 * aggregates of a pane live in one `Float64Array`. Aggregates made only of
 * `count`, `sum`, `min`, `max` and `avg` (the common dashboard) take a
 * branch-free folder (`numeric-aggregators.ts`); others a small switch over
 * precomputed operations.
 */
import type { AggregateSpec } from '../../../runtime/api.ts';
import { compileSources, loadNumbers, saveNumbers, shapeOf } from './aggregate-sources.ts';
import { compileNumericAggregates } from './numeric-aggregators.ts';
import type { PaneFolder } from './pane-folder.ts';
import { QuantileSketch, type SketchState } from './quantile-sketch.ts';

/** One pane's aggregates in the general folder: numeric slots, and objects (sketches, sets, first/last values). */
export interface MixedAggregateState {
  nums: Float64Array;
  objs: unknown[];
}

/**
 * One pane's aggregates, opaque outside its folder: the numeric folder
 * keeps the slots alone (one object less to reach per record), the general
 * one a `MixedAggregateState`.
 */
export type AggregateState = MixedAggregateState | Float64Array;

const opCount = 0;
const opSum = 1;
const opMin = 2;
const opMax = 3;
const opAvg = 4;
const opQuantile = 5;
const opDistinct = 6;
const opFirst = 7;
const opLast = 8;

const opcodes: Record<AggregateSpec['fn'], number> = {
  count: opCount,
  sum: opSum,
  min: opMin,
  max: opMax,
  avg: opAvg,
  quantile: opQuantile,
  distinct: opDistinct,
  first: opFirst,
  last: opLast,
};

interface Operation {
  name: string;
  spec: AggregateSpec;
  op: number;
  /** The index of its expression in the scratch slots, -1 for `count()`. */
  source: number;
  /** Its first slot in `nums` (avg uses two: sum and count; first/last two: time and arrival), or -1. */
  num: number;
  /** Its slot in `objs`, or -1. */
  obj: number;
}

/**
 * A pane folder computing the named aggregates, writing `{name: value}` for
 * each. Empty aggregates (a running aggregate that saw nothing) write `null`
 * for `min`, `max`, `avg`, `quantile`, `first` and `last`.
 */
export interface AggregateFolder extends PaneFolder<AggregateState> {
  /** The output field names, in the order of the settings. */
  readonly names: readonly string[];
}

/**
 * Compiles a map of output field name to aggregate spec (as the `aggregate`
 * operator's settings give it) into a folder.
 *
 * @example
 * const folder = compileAggregates({ n: { fn: 'count' }, avg: { fn: 'avg', expr: 'value' } });
 * const state = folder.create();
 * folder.prepare(record); folder.add(state, record, record.ts, 0);
 * const out = {}; folder.write(state, out); // { n: 1, avg: … }
 */
export function compileAggregates(specs: Readonly<Record<string, AggregateSpec>>): AggregateFolder {
  const sources = compileSources(specs);
  const numericOnly = compileNumericAggregates(specs, sources);
  if (numericOnly !== undefined) return numericOnly;
  const operations: Operation[] = [];
  const initial: number[] = [];
  let objects = 0;
  for (const [name, spec] of Object.entries(specs)) {
    const source = spec.expr === undefined ? -1 : sources.slotOf(spec.expr);
    const op = opcodes[spec.fn];
    let num = -1;
    let obj = -1;
    switch (op) {
      case opCount:
      case opSum:
        num = initial.push(0) - 1;
        break;
      case opMin:
        num = initial.push(Infinity) - 1;
        break;
      case opMax:
        num = initial.push(-Infinity) - 1;
        break;
      case opAvg:
        num = initial.push(0, 0) - 2;
        break;
      case opFirst:
        num = initial.push(Infinity, Infinity) - 2;
        obj = objects++;
        break;
      case opLast:
        num = initial.push(-Infinity, -Infinity) - 2;
        obj = objects++;
        break;
      default:
        obj = objects++;
    }
    operations.push({ name, spec, op, source, num, obj });
  }

  const initialNums = Float64Array.from(initial);
  const scratchNumbers = sources.numbers;
  const scratchValues = sources.values;
  // Parallel arrays keep the per-record loop free of property lookups on objects of mixed shapes.
  const ops = Int32Array.from(operations.map((o) => o.op));
  const opSource = Int32Array.from(operations.map((o) => o.source));
  const opNum = Int32Array.from(operations.map((o) => o.num));
  const opObj = Int32Array.from(operations.map((o) => o.obj));

  const folder: PaneFolder<MixedAggregateState> & { names: readonly string[] } = {
    names: operations.map((o) => o.name),
    shape: shapeOf('aggregate', specs),
    prepare: sources.prepare,

    create() {
      const objs: unknown[] = new Array(objects);
      for (let i = 0; i < operations.length; i++) {
        const { op, obj } = operations[i];
        if (op === opQuantile) objs[obj] = new QuantileSketch();
        else if (op === opDistinct) objs[obj] = new Set<unknown>();
        else if (obj >= 0) objs[obj] = null;
      }
      return { nums: new Float64Array(initialNums), objs };
    },

    add(state, _record, time, seq) {
      const nums = state.nums;
      for (let i = 0; i < ops.length; i++) {
        const slot = opNum[i];
        switch (ops[i]) {
          case opCount:
            nums[slot] += 1;
            break;
          case opSum:
            nums[slot] += scratchNumbers[opSource[i]];
            break;
          case opMin: {
            const x = scratchNumbers[opSource[i]];
            if (x < nums[slot]) nums[slot] = x;
            break;
          }
          case opMax: {
            const x = scratchNumbers[opSource[i]];
            if (x > nums[slot]) nums[slot] = x;
            break;
          }
          case opAvg:
            nums[slot] += scratchNumbers[opSource[i]];
            nums[slot + 1] += 1;
            break;
          case opQuantile:
            (state.objs[opObj[i]] as QuantileSketch).add(scratchNumbers[opSource[i]]);
            break;
          case opDistinct:
            (state.objs[opObj[i]] as Set<unknown>).add(distinctKey(scratchValues[opSource[i]]));
            break;
          case opFirst:
            if (time < nums[slot] || (time === nums[slot] && seq < nums[slot + 1])) {
              nums[slot] = time;
              nums[slot + 1] = seq;
              state.objs[opObj[i]] = scratchValues[opSource[i]];
            }
            break;
          case opLast:
            if (time > nums[slot] || (time === nums[slot] && seq > nums[slot + 1])) {
              nums[slot] = time;
              nums[slot + 1] = seq;
              state.objs[opObj[i]] = scratchValues[opSource[i]];
            }
            break;
        }
      }
    },

    merge(into, from) {
      const a = into.nums;
      const b = from.nums;
      for (let i = 0; i < operations.length; i++) {
        const { op, num, obj } = operations[i];
        switch (op) {
          case opCount:
          case opSum:
            a[num] += b[num];
            break;
          case opMin:
            if (b[num] < a[num]) a[num] = b[num];
            break;
          case opMax:
            if (b[num] > a[num]) a[num] = b[num];
            break;
          case opAvg:
            a[num] += b[num];
            a[num + 1] += b[num + 1];
            break;
          case opQuantile:
            (into.objs[obj] as QuantileSketch).merge(from.objs[obj] as QuantileSketch);
            break;
          case opDistinct:
            for (const value of from.objs[obj] as Set<unknown>) (into.objs[obj] as Set<unknown>).add(value);
            break;
          case opFirst:
            if (b[num] < a[num] || (b[num] === a[num] && b[num + 1] < a[num + 1])) {
              a[num] = b[num];
              a[num + 1] = b[num + 1];
              into.objs[obj] = from.objs[obj];
            }
            break;
          case opLast:
            if (b[num] > a[num] || (b[num] === a[num] && b[num + 1] > a[num + 1])) {
              a[num] = b[num];
              a[num + 1] = b[num + 1];
              into.objs[obj] = from.objs[obj];
            }
            break;
        }
      }
    },

    write(state, out) {
      const nums = state.nums;
      for (let i = 0; i < operations.length; i++) {
        const { name, op, num, obj, spec } = operations[i];
        switch (op) {
          case opCount:
          case opSum:
            out[name] = nums[num];
            break;
          case opMin:
          case opMax:
            // Infinite only while empty (JSON has no infinities to aggregate).
            out[name] = Number.isFinite(nums[num]) ? nums[num] : null;
            break;
          case opAvg:
            out[name] = nums[num + 1] > 0 ? nums[num] / nums[num + 1] : null;
            break;
          case opQuantile:
            out[name] = (state.objs[obj] as QuantileSketch).quantile(spec.q!) ?? null;
            break;
          case opDistinct:
            out[name] = (state.objs[obj] as Set<unknown>).size;
            break;
          case opFirst:
          case opLast:
            out[name] = state.objs[obj] ?? null;
            break;
        }
      }
    },

    save(state) {
      const objs = operations
        .filter((o) => o.obj >= 0)
        .map(({ op, obj }) => {
          const value = state.objs[obj];
          if (op === opQuantile) return (value as QuantileSketch).toJSON();
          if (op === opDistinct) return [...(value as Set<unknown>)];
          return value;
        });
      return { nums: saveNumbers(state.nums), objs };
    },

    load(saved) {
      const { nums, objs } = saved as { nums: (number | string)[]; objs: unknown[] };
      const state: MixedAggregateState = { nums: loadNumbers(nums), objs: new Array(objects) };
      let next = 0;
      for (const { op, obj } of operations) {
        if (obj < 0) continue;
        const value = objs[next++];
        if (op === opQuantile) state.objs[obj] = QuantileSketch.fromJSON(value as SketchState);
        else if (op === opDistinct) state.objs[obj] = new Set(value as unknown[]);
        else state.objs[obj] = value;
      }
      return state;
    },
  };

  return folder as AggregateFolder;
}

/** Set members for `distinct`: primitives as themselves, structures by their JSON. */
function distinctKey(value: unknown): unknown {
  return value !== null && typeof value === 'object' ? '\u0000' + JSON.stringify(value) : value;
}
