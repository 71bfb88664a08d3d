/**
 * Window assigners: which windows a record at a given time belongs to, which
 * windows a watermark closes, and which source acknowledgements each window
 * holds until its result has been acknowledged downstream.
 *
 * Tumbling and sliding windows are aligned to the epoch and share one
 * assigner: all keys of a window close together (the watermark is per node),
 * so acknowledgements are held per window, not per key and window, and the
 * per-record cost is one `Map` lookup by key. Sessions are per key and live
 * in `session-assigner.ts`.
 */
import type { Ack, EventRecord } from '../../../runtime/api.ts';
import type { PaneFolder } from './pane-folder.ts';
import { keyStringOf } from './record-access.ts';

/** One key in one window, with its folded state. */
export interface Pane<State> {
  key: unknown;
  keyString: string;
  start: number;
  end: number;
  state: State;
}

/** Windows taken out because they closed, with the acknowledgements they held. */
export interface ClosedPanes<State> {
  /** Ordered by window start, then key. */
  panes: Pane<State>[];
  acks: Ack[];
}

/** A pane as a snapshot keeps it. */
export interface SavedPane {
  key: unknown;
  start: number;
  end: number;
  /** The time of a session's last record. */
  last?: number;
  state: unknown;
}

/** Assigns records to windows and closes them as the watermark passes. */
export interface WindowAssigner<State> {
  /** Names the window geometry; a snapshot is restored only into the same. */
  readonly shape: string;
  /**
   * Folds the record last prepared by the folder into every open window it
   * belongs to, holding `ack` for each window it had not held yet. `seq` is
   * the record's arrival number. Returns false when all of its windows have
   * already closed (the record is late).
   */
  fold(record: EventRecord, keyString: string, key: unknown, time: number, seq: number, watermark: number, ack: Ack): boolean;
  /** A lower bound of the watermark at which some window closes; Infinity when none is open. */
  nextClose(): number;
  /** Takes out the windows that `watermark` closes (all of them with Infinity). */
  takeClosed(watermark: number): ClosedPanes<State>;
  /** Returns every acknowledgement held and forgets it (the state is handed to a snapshot). */
  takeHeldAcks(): Ack[];
  /** Open panes, for snapshots. */
  save(): SavedPane[];
  load(saved: readonly SavedPane[]): void;
}

/** The acknowledgements a window holds: each retained once per time it was added. */
export interface AckHolder {
  acks: Ack[];
  /** The last ack added, so that a batch's records add it once, not once per record. */
  lastAck: Ack | undefined;
}

/** Holds `ack` in `holder` unless the holder took it last (consecutive records of one batch). */
export function holdAck(holder: AckHolder, ack: Ack): void {
  if (holder.lastAck === ack) return;
  holder.lastAck = ack;
  ack.retain();
  holder.acks.push(ack);
}

/** Orders panes by start, then key (code-unit order), for deterministic output. */
export function comparePanes(a: Pane<unknown>, b: Pane<unknown>): number {
  return a.start - b.start || (a.keyString < b.keyString ? -1 : a.keyString > b.keyString ? 1 : 0);
}

interface Slot<State> extends AckHolder {
  start: number;
  end: number;
  panes: Map<string, Pane<State>>;
}

/** Geometry of tumbling (`every` = `size`) and sliding windows, in milliseconds. */
export interface SlotGeometry {
  size: number;
  every: number;
  lateness: number;
}

/**
 * Tumbling and sliding windows: `[k·every, k·every + size)` for every
 * integer `k`, so a record belongs to `⌈size / every⌉` windows (one when
 * tumbling). A window closes when the watermark reaches `end + lateness`.
 */
export class SlotAssigner<State> implements WindowAssigner<State> {
  readonly shape: string;
  readonly #size: number;
  readonly #every: number;
  readonly #lateness: number;
  readonly #folder: PaneFolder<State>;
  readonly #slots = new Map<number, Slot<State>>();
  /** The slot used last: consecutive records mostly share one. */
  #recent: Slot<State> | undefined;
  /** The newest window start for times in `[#base, #base + every)`, saving a float modulo per record. */
  #base = NaN;
  #nextClose = Infinity;

  constructor(geometry: SlotGeometry, folder: PaneFolder<State>) {
    this.#size = geometry.size;
    this.#every = geometry.every;
    this.#lateness = geometry.lateness;
    this.#folder = folder;
    this.shape = `slots:${geometry.size}/${geometry.every}`;
  }

  fold(record: EventRecord, keyString: string, key: unknown, time: number, seq: number, watermark: number, ack: Ack): boolean {
    const size = this.#size;
    const every = this.#every;
    const lateness = this.#lateness;
    let accepted = false;
    let base = this.#base;
    if (!(time >= base && time < base + every)) {
      const offset = time % every;
      base = this.#base = time - (offset < 0 ? offset + every : offset);
    }
    // Newest window first: its end is the latest, so once one is closed all older ones are.
    for (let start = base; start > time - size; start -= every) {
      const end = start + size;
      if (end + lateness <= watermark) break;
      let slot = this.#recent;
      if (slot === undefined || slot.start !== start) {
        slot = this.#slots.get(start) ?? this.#open(start, end);
        this.#recent = slot;
      }
      holdAck(slot, ack);
      let pane = slot.panes.get(keyString);
      if (pane === undefined) {
        pane = { key, keyString, start, end, state: this.#folder.create() };
        slot.panes.set(keyString, pane);
      }
      this.#folder.add(pane.state, record, time, seq);
      accepted = true;
    }
    return accepted;
  }

  #open(start: number, end: number): Slot<State> {
    const slot: Slot<State> = { start, end, panes: new Map(), acks: [], lastAck: undefined };
    this.#slots.set(start, slot);
    if (end + this.#lateness < this.#nextClose) this.#nextClose = end + this.#lateness;
    return slot;
  }

  nextClose(): number {
    return this.#nextClose;
  }

  takeClosed(watermark: number): ClosedPanes<State> {
    const closing: Slot<State>[] = [];
    let next = Infinity;
    for (const slot of this.#slots.values()) {
      const closeAt = slot.end + this.#lateness;
      if (closeAt <= watermark) closing.push(slot);
      else if (closeAt < next) next = closeAt;
    }
    this.#nextClose = next;
    closing.sort((a, b) => a.start - b.start);
    const panes: Pane<State>[] = [];
    const acks: Ack[] = [];
    for (const slot of closing) {
      this.#slots.delete(slot.start);
      if (this.#recent === slot) this.#recent = undefined;
      const keyed = [...slot.panes.values()].sort(comparePanes);
      for (const pane of keyed) panes.push(pane);
      for (const ack of slot.acks) acks.push(ack);
    }
    return { panes, acks };
  }

  takeHeldAcks(): Ack[] {
    const acks: Ack[] = [];
    for (const slot of this.#slots.values()) {
      for (const ack of slot.acks) acks.push(ack);
      slot.acks = [];
      slot.lastAck = undefined;
    }
    return acks;
  }

  save(): SavedPane[] {
    const saved: SavedPane[] = [];
    for (const slot of this.#slots.values()) {
      for (const pane of slot.panes.values()) {
        saved.push({ key: pane.key, start: pane.start, end: pane.end, state: this.#folder.save(pane.state) });
      }
    }
    return saved;
  }

  load(saved: readonly SavedPane[]): void {
    for (const entry of saved) {
      const slot = this.#slots.get(entry.start) ?? this.#open(entry.start, entry.end);
      const keyString = keyStringOf(entry.key);
      slot.panes.set(keyString, { key: entry.key, keyString, start: entry.start, end: entry.end, state: this.#folder.load(entry.state) });
    }
  }
}
