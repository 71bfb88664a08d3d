/**
 * Window assigners: which windows a record at a given time belongs to, which
 * windows a watermark closes, and which source acknowledgements each window
 * holds until its result has been acknowledged downstream.
 *
 * Tumbling and sliding windows share one assigner (`slice-assigner.ts`);
 * sessions are per key and live in `session-assigner.ts`.
 */
import type { Ack, EventRecord } from '../../../runtime/api.ts';
import type { PaneFolder } from './pane-folder.ts';

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
  /**
   * Restores saved panes; `watermark` is the restored one: windows it had
   * passed by `savedLateness` (the lateness the panes were saved under,
   * this assigner's own by default) were emitted. Windows the current
   * lateness has closed since are due: `nextClose` says so.
   */
  load(saved: readonly SavedPane[], watermark: number, savedLateness?: number): void;
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

/** Moves the acknowledgements `holder` holds into `into`, leaving it holding none. */
export function takeAcks(holder: AckHolder, into: Ack[]): void {
  for (const ack of holder.acks) into.push(ack);
  holder.acks = [];
  holder.lastAck = undefined;
}

/** Orders panes by start, then key (code-unit order), for deterministic output. */
export function comparePanes(a: Pane<unknown>, b: Pane<unknown>): number {
  return a.start - b.start || (a.keyString < b.keyString ? -1 : a.keyString > b.keyString ? 1 : 0);
}
