/**
 * Tumbling and sliding windows, `[k·every, k·every + size)` for every
 * integer `k`, aligned to the epoch: a record belongs to `⌈size / every⌉`
 * windows (one when tumbling), and a window closes when the watermark
 * reaches its end plus `lateness`.
 *
 * Records are not folded into every window they belong to but once, into a
 * slice: time is cut at every window start and every window end, so each
 * window is a run of whole slices (at most two slices per `every`; one when
 * `size` is a multiple of `every`, as it usually is). When a window closes,
 * its slices' states are merged per key, and the oldest slice, which no
 * later window holds, hands its states over instead of being copied. A
 * 10 s window sliding every second so keeps each record, distinct value and
 * sketch once rather than ten times, and folds each record once.
 *
 * All keys of a window close together (the watermark is per node), so
 * acknowledgements are held per slice; a closing window retains those of
 * its slices that later windows still hold. A window the watermark closes
 * while a batch is being folded is taken out at once, before the next
 * record, so a record only reaches the windows still open when it comes.
 */
import type { Ack, EventRecord } from '../../../runtime/api.ts';
import { comparePanes, holdAck, takeAcks, type AckHolder, type ClosedPanes, type Pane, type SavedPane, type WindowAssigner } from './assigner.ts';
import type { PaneFolder } from './pane-folder.ts';
import { keyStringOf } from './record-access.ts';

/** One stretch of time between two window boundaries, with each key's folded state. */
interface Slice<State> extends AckHolder {
  start: number;
  end: number;
  panes: Map<string, Pane<State>>;
  /**
   * Each key's state again, the same objects as its pane's: folding a record
   * goes straight to the state, one object fewer to reach (a cache miss each,
   * over thousands of keys) than through the pane.
   */
  states: Map<string, State>;
}

/** Geometry of tumbling (`every` = `size`) and sliding windows, in milliseconds. */
export interface SlotGeometry {
  size: number;
  every: number;
  lateness: number;
}

/** Assigns records to tumbling or sliding windows through slices (see the file's comment). */
export class SliceAssigner<State> implements WindowAssigner<State> {
  readonly shape: string;
  readonly #size: number;
  readonly #every: number;
  readonly #lateness: number;
  /** Where a window end falls inside each period of `every` (`size mod every`); 0 when on its start. */
  readonly #cut: number;
  readonly #folder: PaneFolder<State>;
  readonly #slices = new Map<number, Slice<State>>();
  /** The slice used last: consecutive records mostly share one. */
  #recent: Slice<State> | undefined;
  /** The start of the oldest window holding a slice, not closed yet; NaN when no slice is open. */
  #nextWindow = NaN;
  #nextClose = Infinity;
  /** The start of the last window closed, here or, for a restored one, before the snapshot: a window never closes twice. */
  #lastClosed = -Infinity;
  /** Windows closed while a batch was folded, until `takeClosed`. */
  #closedPanes: Pane<State>[] = [];
  #closedAcks: Ack[] = [];

  constructor(geometry: SlotGeometry, folder: PaneFolder<State>) {
    this.#size = geometry.size;
    this.#every = geometry.every;
    this.#lateness = geometry.lateness;
    this.#cut = geometry.size % geometry.every;
    this.#folder = folder;
    // Tumbling windows are their own slices, saved as they always were; sliding ones save slices, not windows.
    this.shape = geometry.size === geometry.every ? `slots:${geometry.size}/${geometry.every}` : `slices:${geometry.size}/${geometry.every}`;
  }

  fold(record: EventRecord, keyString: string, key: unknown, time: number, seq: number, watermark: number, ack: Ack): boolean {
    // Windows the watermark has passed must not see this record: close them first.
    if (watermark >= this.#nextClose) this.#closeWindows(watermark);
    let slice = this.#recent;
    if (slice === undefined || !(time >= slice.start && time < slice.end)) {
      const every = this.#every;
      const offset = time % every;
      const period = time - (offset < 0 ? offset + every : offset);
      const cut = this.#cut;
      const start = cut === 0 || time < period + cut ? period : period + cut;
      slice = this.#slices.get(start);
      if (slice === undefined) {
        // Its newest window starts at `period`: once that one has closed, all of its windows have.
        if (period + this.#size + this.#lateness <= watermark || period <= this.#lastClosed) return false;
        slice = this.#open(start, cut === 0 ? period + every : start === period ? period + cut : period + every, watermark);
      }
      this.#recent = slice;
    }
    // A slice still open belongs to a window still open: windows closed above dropped the slices they ended.
    holdAck(slice, ack);
    let state = slice.states.get(keyString);
    if (state === undefined) {
      state = this.#folder.create();
      slice.states.set(keyString, state);
      slice.panes.set(keyString, { key, keyString, start: slice.start, end: slice.end, state });
    }
    this.#folder.add(state, record, time, seq);
    return true;
  }

  /**
   * Opens a slice; its windows that `watermark` has already closed with
   * `lateness` (none of them holds another slice) never will. A restored
   * slice was held by a window not yet emitted, so its newest window at
   * least stays: never a slice that no window will take.
   */
  #open(start: number, end: number, watermark: number, lateness = this.#lateness): Slice<State> {
    const slice: Slice<State> = { start, end, panes: new Map(), states: new Map(), acks: [], lastAck: undefined };
    this.#slices.set(start, slice);
    const every = this.#every;
    const firstOpen = (Math.floor((watermark - this.#size - lateness) / every) + 1) * every;
    const newest = Math.floor(start / every) * every;
    const first = Math.min(Math.max(this.#firstWindowOf(slice), firstOpen), newest);
    if (!(first >= this.#nextWindow)) {
      this.#nextWindow = first;
      this.#nextClose = first + this.#size + this.#lateness;
    }
    return slice;
  }

  /** The oldest window not yet closed that holds `slice`: from the first multiple of `every` at or after `end - size`. */
  #firstWindowOf(slice: Slice<State>): number {
    const every = this.#every;
    const first = Math.ceil((slice.end - this.#size) / every) * every;
    return first > this.#lastClosed ? first : this.#lastClosed + every;
  }

  /** Closes, in order, every window holding a slice that `watermark` has passed. */
  #closeWindows(watermark: number): void {
    // A window holding no slice is skipped: its start is always that of one holding the oldest slice left.
    const size = this.#size;
    const every = this.#every;
    const folder = this.#folder;
    while (this.#slices.size > 0 && this.#nextWindow + size + this.#lateness <= watermark) {
      const start = this.#nextWindow;
      const end = start + size;
      const inside: Slice<State>[] = [];
      for (const slice of this.#slices.values()) if (slice.start >= start && slice.start < end) inside.push(slice);
      inside.sort((a, b) => a.start - b.start);
      const panes = new Map<string, Pane<State>>();
      for (const slice of inside) {
        // No later window holds a slice starting before the next window: its states move, its acks pass on.
        const last = slice.start < start + every;
        for (const pane of slice.panes.values()) {
          const into = panes.get(pane.keyString);
          if (into !== undefined) {
            folder.merge(into.state, pane.state);
            continue;
          }
          let state = pane.state;
          if (!last) {
            state = folder.create();
            folder.merge(state, pane.state);
          }
          panes.set(pane.keyString, { key: pane.key, keyString: pane.keyString, start, end, state });
        }
        if (last) {
          for (const ack of slice.acks) this.#closedAcks.push(ack);
          this.#slices.delete(slice.start);
          if (this.#recent === slice) this.#recent = undefined;
        } else {
          for (const ack of slice.acks) {
            ack.retain();
            this.#closedAcks.push(ack);
          }
        }
      }
      for (const pane of [...panes.values()].sort(comparePanes)) this.#closedPanes.push(pane);
      this.#lastClosed = start;
      this.#nextWindow = NaN;
      this.#nextClose = Infinity;
      // The next window holding a slice: the one after this, or past a gap in time, the first holding the oldest slice left.
      let oldest: Slice<State> | undefined;
      for (const slice of this.#slices.values()) if (oldest === undefined || slice.start < oldest.start) oldest = slice;
      if (oldest !== undefined) {
        this.#nextWindow = this.#firstWindowOf(oldest);
        this.#nextClose = this.#nextWindow + size + this.#lateness;
      }
    }
  }

  nextClose(): number {
    // Windows closed during the last batch wait to be taken: now.
    return this.#closedPanes.length > 0 ? -Infinity : this.#nextClose;
  }

  takeClosed(watermark: number): ClosedPanes<State> {
    this.#closeWindows(watermark);
    const closed = { panes: this.#closedPanes, acks: this.#closedAcks };
    this.#closedPanes = [];
    this.#closedAcks = [];
    return closed;
  }

  takeHeldAcks(): Ack[] {
    // Windows closed in a batch are taken at its end, so between batches `#closedAcks` is empty; take it all the same.
    const acks = this.#closedAcks;
    this.#closedAcks = [];
    for (const slice of this.#slices.values()) takeAcks(slice, acks);
    return acks;
  }

  save(): SavedPane[] {
    const saved: SavedPane[] = [];
    for (const slice of this.#slices.values()) {
      for (const pane of slice.panes.values()) {
        saved.push({ key: pane.key, start: pane.start, end: pane.end, state: this.#folder.save(pane.state) });
      }
    }
    return saved;
  }

  load(saved: readonly SavedPane[], watermark: number, savedLateness = this.#lateness): void {
    // The windows the saved watermark had closed with the saved lateness were emitted: a longer lateness
    // now must not open them again (their records are late), whether or not a saved slice is in them.
    const emitted = Math.floor((watermark - this.#size - savedLateness) / this.#every) * this.#every;
    if (emitted > this.#lastClosed) this.#lastClosed = emitted;
    for (const entry of saved) {
      // Windows the saved watermark had passed with the saved lateness were emitted, or closed before
      // these slices had records; those it passes only with a shorter lateness now are due at once.
      const slice = this.#slices.get(entry.start) ?? this.#open(entry.start, entry.end, watermark, savedLateness);
      const keyString = keyStringOf(entry.key);
      const state = this.#folder.load(entry.state);
      slice.states.set(keyString, state);
      slice.panes.set(keyString, { key: entry.key, keyString, start: entry.start, end: entry.end, state });
    }
  }
}
