/**
 * What a window keeps per pane (one key in one window): the records
 * themselves when the window stands alone, or running aggregates when an
 * `aggregate` is fused into it. The window engine folds records into panes
 * through this interface and never looks inside a pane's state.
 */
import type { EventRecord } from '../../../runtime/api.ts';

/**
 * How records fold into a pane's state.
 *
 * `prepare` reads what a record contributes and throws for a record that
 * cannot be folded (a missing or non-numeric value); it runs before anything
 * is changed, so a failing record touches no pane. `add` then folds the
 * prepared record into one or more panes (a sliding window's record lands in
 * several), allocating nothing per record where it can.
 */
export interface PaneFolder<State> {
  /** Names what states hold; a snapshot is restored only into a folder of the same shape. */
  readonly shape: string;
  prepare(record: EventRecord): void;
  create(): State;
  /**
   * Folds the record last prepared. `time` and then `seq` (its arrival
   * number, increasing across the node's life) order records for
   * `first`/`last`, so that ties in time go by arrival even across merges.
   */
  add(state: State, record: EventRecord, time: number, seq: number): void;
  /** Folds everything of `from` into `into` (sessions that merge). */
  merge(into: State, from: State): void;
  /** Writes the pane's result fields into `out`. */
  write(state: State, out: EventRecord): void;
  /** A JSON-serialisable copy of the state. */
  save(state: State): unknown;
  load(saved: unknown): State;
}

/** A pane's records with their times and arrival numbers, in the order folded. */
export interface RecordsState {
  records: EventRecord[];
  times: number[];
  seqs: number[];
}

/**
 * The folder of a window without an aggregate: it keeps the records and
 * writes them as `records`, ordered by time and, for equal times, by
 * arrival, which makes `first`/`last` of a downstream `aggregate` mean the
 * same as in the fused path.
 */
export const recordsFolder: PaneFolder<RecordsState> = {
  shape: 'records',
  prepare() {},
  create() {
    return { records: [], times: [], seqs: [] };
  },
  add(state, record, time, seq) {
    state.records.push(record);
    state.times.push(time);
    state.seqs.push(seq);
  },
  merge(into, from) {
    for (let i = 0; i < from.records.length; i++) {
      into.records.push(from.records[i]);
      into.times.push(from.times[i]);
      into.seqs.push(from.seqs[i]);
    }
  },
  write(state, out) {
    out.records = recordsInTimeOrder(state);
  },
  save(state) {
    return { records: state.records, times: state.times, seqs: state.seqs };
  },
  load(saved) {
    const state = saved as RecordsState;
    return { records: [...state.records], times: [...state.times], seqs: [...state.seqs] };
  },
};

function recordsInTimeOrder(state: RecordsState): EventRecord[] {
  const { records, times, seqs } = state;
  let ordered = true;
  for (let i = 1; i < times.length && ordered; i++) ordered = times[i - 1] < times[i] || (times[i - 1] === times[i] && seqs[i - 1] < seqs[i]);
  if (ordered) return records;
  const order = records.map((_, i) => i);
  order.sort((a, b) => times[a] - times[b] || seqs[a] - seqs[b]);
  return order.map((i) => records[i]);
}
