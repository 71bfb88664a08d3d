/**
 * Session windows: per key, records less than `gap` apart share a session.
 * A session runs from its first record's time to its last record's time plus
 * `gap`, and closes when the watermark reaches that end plus `lateness`.
 *
 * Out-of-order records may bridge two sessions, which then merge. With
 * `maxSize`, a merge that would make a session longer than `maxSize` (from
 * its first record to its last plus `gap`) does not happen: the record joins
 * the latest-starting session it overlaps that can take it without growing
 * past `maxSize`, or else opens a session of its own.
 */
import type { Ack, EventRecord } from '../../../runtime/api.ts';
import { comparePanes, holdAck, takeAcks, type AckHolder, type ClosedPanes, type Pane, type SavedPane, type WindowAssigner } from './assigner.ts';
import type { PaneFolder } from './pane-folder.ts';
import { keyStringOf } from './record-access.ts';

interface Session<State> extends Pane<State>, AckHolder {
  /** Time of the last record; `end` is `last + gap`. */
  last: number;
}

/** Session settings in milliseconds; `maxSize` Infinity when unbounded. */
export interface SessionGeometry {
  gap: number;
  lateness: number;
  maxSize: number;
}

/** Per-key sessions that merge when records bridge them. */
export class SessionAssigner<State> implements WindowAssigner<State> {
  readonly shape: string;
  readonly #gap: number;
  readonly #lateness: number;
  readonly #maxSize: number;
  readonly #folder: PaneFolder<State>;
  /** Open sessions per key; mostly one, so a short array. */
  readonly #byKey = new Map<string, Session<State>[]>();
  #nextClose = Infinity;
  /** Sessions ending at or before this had closed before the snapshot this was restored from: none opens there again. */
  #closedThrough = -Infinity;

  constructor(geometry: SessionGeometry, folder: PaneFolder<State>) {
    this.#gap = geometry.gap;
    this.#lateness = geometry.lateness;
    this.#maxSize = geometry.maxSize;
    this.#folder = folder;
    this.shape = `sessions:${geometry.gap}/${geometry.maxSize}`;
  }

  fold(record: EventRecord, keyString: string, key: unknown, time: number, seq: number, watermark: number, ack: Ack): boolean {
    const gap = this.#gap;
    const lateness = this.#lateness;
    let sessions = this.#byKey.get(keyString);
    let target: Session<State> | undefined;
    if (sessions !== undefined) {
      // The sessions this record overlaps, among those still open.
      let overlaps = 0;
      let first = time;
      let last = time;
      for (const session of sessions) {
        if (!this.#overlaps(session, time, watermark)) continue;
        overlaps += 1;
        target ??= session;
        if (session.start < first) first = session.start;
        if (session.last > last) last = session.last;
      }
      if (overlaps > 1 && last - first + gap <= this.#maxSize) {
        target = this.#mergeOverlapping(sessions, target!, time, watermark);
      } else if (overlaps > 0 && last - first + gap > this.#maxSize) {
        target = this.#latestThatFits(sessions, time, watermark);
      }
    }
    if (target === undefined) {
      if (time + gap + lateness <= watermark || time + gap <= this.#closedThrough) return false;
      target = { key, keyString, start: time, end: time + gap, last: time, state: this.#folder.create(), acks: [], lastAck: undefined };
      if (sessions === undefined) {
        sessions = [];
        this.#byKey.set(keyString, sessions);
      }
      sessions.push(target);
    }
    if (time < target.start) target.start = time;
    if (time > target.last) {
      target.last = time;
      target.end = time + gap;
    }
    // A lower bound: sessions only grow, so a stale bound costs one scan, never a missed close.
    if (target.end + lateness < this.#nextClose) this.#nextClose = target.end + lateness;
    holdAck(target, ack);
    this.#folder.add(target.state, record, time, seq);
    return true;
  }

  #overlaps(session: Session<State>, time: number, watermark: number): boolean {
    return session.end + this.#lateness > watermark && time < session.end && session.start < time + this.#gap;
  }

  /** Merges every open session the record overlaps into the first of them. */
  #mergeOverlapping(sessions: Session<State>[], target: Session<State>, time: number, watermark: number): Session<State> {
    for (let i = sessions.length - 1; i >= 0; i--) {
      const other = sessions[i];
      if (other === target || !this.#overlaps(other, time, watermark)) continue;
      this.#folder.merge(target.state, other.state);
      for (const held of other.acks) target.acks.push(held);
      target.lastAck = undefined;
      if (other.start < target.start) target.start = other.start;
      if (other.last > target.last) {
        target.last = other.last;
        target.end = other.end;
      }
      sessions.splice(i, 1);
    }
    return target;
  }

  /** The latest-starting overlapping open session that can take the record within `maxSize`. */
  #latestThatFits(sessions: Session<State>[], time: number, watermark: number): Session<State> | undefined {
    let best: Session<State> | undefined;
    for (const session of sessions) {
      if (!this.#overlaps(session, time, watermark)) continue;
      const span = Math.max(session.last, time) - Math.min(session.start, time) + this.#gap;
      if (span <= this.#maxSize && (best === undefined || session.start > best.start)) best = session;
    }
    return best;
  }

  nextClose(): number {
    return this.#nextClose;
  }

  takeClosed(watermark: number): ClosedPanes<State> {
    const lateness = this.#lateness;
    const panes: Pane<State>[] = [];
    const acks: Ack[] = [];
    let next = Infinity;
    for (const [keyString, sessions] of this.#byKey) {
      for (let i = sessions.length - 1; i >= 0; i--) {
        const session = sessions[i];
        const closeAt = session.end + lateness;
        if (closeAt > watermark) {
          if (closeAt < next) next = closeAt;
          continue;
        }
        panes.push(session);
        for (const ack of session.acks) acks.push(ack);
        sessions.splice(i, 1);
      }
      if (sessions.length === 0) this.#byKey.delete(keyString);
    }
    this.#nextClose = next;
    panes.sort(comparePanes);
    return { panes, acks };
  }

  takeHeldAcks(): Ack[] {
    const acks: Ack[] = [];
    for (const sessions of this.#byKey.values()) {
      for (const session of sessions) takeAcks(session, acks);
    }
    return acks;
  }

  save(): SavedPane[] {
    const saved: SavedPane[] = [];
    for (const sessions of this.#byKey.values()) {
      for (const s of sessions) saved.push({ key: s.key, start: s.start, end: s.end, last: s.last, state: this.#folder.save(s.state) });
    }
    return saved;
  }

  load(saved: readonly SavedPane[], watermark: number, savedLateness = this.#lateness): void {
    // A session the saved watermark had closed with the saved lateness was emitted: a longer lateness now
    // must not start one there again from a record that was late then.
    if (watermark - savedLateness > this.#closedThrough) this.#closedThrough = watermark - savedLateness;
    for (const entry of saved) {
      const keyString = keyStringOf(entry.key);
      const last = entry.last ?? entry.end - this.#gap;
      const session: Session<State> = {
        key: entry.key,
        keyString,
        start: entry.start,
        end: last + this.#gap,
        last,
        state: this.#folder.load(entry.state),
        acks: [],
        lastAck: undefined,
      };
      const sessions = this.#byKey.get(keyString);
      if (sessions) sessions.push(session);
      else this.#byKey.set(keyString, [session]);
      if (session.end + this.#lateness < this.#nextClose) this.#nextClose = session.end + this.#lateness;
    }
  }
}
