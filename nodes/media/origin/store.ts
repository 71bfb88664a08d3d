/**
 * The origin's live streams: the window of each (`media/cmaf-window.ts`),
 * who waits on a track for a part or segment to appear (blocking playlist
 * reload, preload-hinted parts, a DASH segment streamed as it is cut), the
 * `max_streams` bound, and the grace period an ended stream is kept for.
 */
import { applyEnd, applyInit, applyPart, applySegment, epochOf, epochPattern, newStreamWindow, type StreamWindow, type TrackWindow } from '../../../media/cmaf-window.ts';
import type { CmafItem } from '../../../media/segment.ts';

import { isSafeStreamKey, SAFE_STREAM_KEY_RULE } from '../../../media/stream-key.ts';

/** Called on every change to a track (an item applied, the track ended, the stream dropped). */
export type TrackListener = () => void;

/** Why an item was not applied. */
export type Rejection = { reason: 'malformed' | 'unsafe_name' | 'max_streams' | 'no_init'; message: string };

/** Whether an item has the fields the store reads: a bad item must not crash the node. */
function wellFormed(item: CmafItem): boolean {
  if (typeof item !== 'object' || item === null || typeof item.stream !== 'string') return false;
  if (item.type === 'end') return item.track === undefined || typeof item.track === 'string';
  if (typeof item.track !== 'string' || !Buffer.isBuffer(item.data)) return false;
  if (item.type === 'init') {
    if (item.epoch !== undefined && (typeof item.epoch !== 'string' || !epochPattern.test(item.epoch))) return false;
    if (item.renditions !== undefined && !(Array.isArray(item.renditions) && item.renditions.every((name) => typeof name === 'string'))) return false;
    return typeof item.info === 'object' && item.info !== null && typeof item.playlist === 'object' && item.playlist !== null;
  }
  if (item.type === 'part') return Number.isInteger(item.msn) && Number.isInteger(item.part) && typeof item.duration === 'number';
  return item.type === 'segment' && Number.isInteger(item.msn) && typeof item.duration === 'number';
}

/** What a wait ended with: the condition held, it did not (timeout, end, drop, the client left), or too many requests are held already. */
export type WaitResult = boolean | 'busy';

/** Bounds on requests held open (blocking reloads, hinted parts, segments streamed as cut). */
export interface HoldLimits {
  perStream: number;
  total: number;
}

/** What the store needs from its node: a clock and timers. */
export interface StoreClock {
  now(): number;
  schedule(ms: number, fn: () => void): () => void;
}

/** The live streams of one `serve.http` node. */
export class OriginStore {
  readonly #streams = new Map<string, StreamWindow>();
  readonly #listeners = new Map<TrackWindow, Set<TrackListener>>();
  /** Listeners of any change to a stream (a track added, an item applied, the stream dropped). */
  readonly #streamListeners = new Map<StreamWindow, Set<TrackListener>>();
  readonly #dropTimers = new Map<string, () => void>();
  readonly #clock: StoreClock;
  readonly #maxStreams: number;
  readonly #keepEnded: number;
  readonly #limits: HoldLimits;
  /** Requests held, in all and per stream key. */
  #held = 0;
  readonly #heldPerStream = new Map<string, number>();
  /** Tracks of dropped streams: a waiter learns of the drop in O(1). */
  readonly #dropped = new WeakSet<TrackWindow>();
  /** The last epoch this store made up (ms), so two windows never share one. */
  #lastEpoch = 0;

  constructor(clock: StoreClock, options: { maxStreams: number; keepEndedMs: number; hold?: HoldLimits }) {
    this.#clock = clock;
    this.#limits = options.hold ?? { perStream: 1000, total: 10_000 };
    this.#maxStreams = options.maxStreams;
    this.#keepEnded = options.keepEndedMs;
  }

  /** The stream with that key, if live or recently ended. */
  stream(key: string): StreamWindow | undefined {
    return this.#streams.get(key);
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Applies one item; a rejection says why it was not (the caller counts and logs it). */
  apply(item: CmafItem): Rejection | undefined {
    if (!wellFormed(item)) return { reason: 'malformed', message: 'not a CMAF item (`type` init, part, segment or end, with `stream`, `track` and `data`)' };
    // Keys and track names become URL path segments: the ingest's rule (one pattern for both ends) keeps anything that could climb out of one away.
    if (!isSafeStreamKey(item.stream)) return { reason: 'unsafe_name', message: `the stream key is not a safe URL path segment (${SAFE_STREAM_KEY_RULE})` };
    if (item.type !== 'end' && !isSafeStreamKey(item.track)) return { reason: 'unsafe_name', message: `track \`${item.track.slice(0, 64)}\` is not a safe URL path segment (${SAFE_STREAM_KEY_RULE})` };
    let stream = this.#streams.get(item.stream);
    if (item.type === 'end') {
      if (stream === undefined) return undefined;
      applyEnd(stream, item.track, this.#clock.now());
      for (const track of stream.tracks.values()) this.#notify(track);
      this.#notifyStream(stream);
      if (stream.endedAt !== undefined) this.#scheduleDrop(stream.key);
      return undefined;
    }
    if (item.type === 'init') {
      // Another publish (another epoch; without one, a publish after the end) starts afresh, under a new epoch:
      // its packager may number from 0 again, and no URL may name two contents. The same epoch goes on.
      if (stream !== undefined && (item.epoch === undefined ? stream.endedAt !== undefined : item.epoch !== stream.epoch)) {
        this.drop(item.stream);
        stream = undefined;
      }
      if (stream === undefined) {
        if (this.#streams.size >= this.#maxStreams) return { reason: 'max_streams', message: `a new stream is refused: ${this.#maxStreams} streams (\`max_streams\`) are served already` };
        stream = newStreamWindow(item.stream, item.playlist, item.epoch ?? this.#newEpoch());
        stream.openedAt = this.#clock.now();
        this.#streams.set(item.stream, stream);
      }
      this.#cancelDrop(item.stream);
      this.#notify(applyInit(stream, item));
      this.#notifyStream(stream);
      return undefined;
    }
    const track = stream?.tracks.get(item.track);
    if (stream === undefined || track === undefined) return { reason: 'no_init', message: `a ${item.type} arrived before its track's init segment` };
    if (item.type === 'part') applyPart(track, item);
    else applySegment(stream, track, item);
    this.#notify(track);
    this.#notifyStream(stream);
    return undefined;
  }

  /** Calls `listener` after every change to `track` until the returned function is called. */
  listen(track: TrackWindow, listener: TrackListener): () => void {
    let set = this.#listeners.get(track);
    if (set === undefined) this.#listeners.set(track, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(track) === set) this.#listeners.delete(track);
    };
  }

  /** Whether `track`'s stream was dropped. */
  dropped(track: TrackWindow): boolean {
    return this.#dropped.has(track);
  }

  /**
   * Counts a request held open on `stream` and returns the function that
   * releases it (call it once), or undefined when the per-stream or total
   * bound is reached: the caller answers 503 instead of holding it.
   */
  hold(stream: StreamWindow): (() => void) | undefined {
    const held = this.#heldPerStream.get(stream.key) ?? 0;
    if (held >= this.#limits.perStream || this.#held >= this.#limits.total) return undefined;
    this.#heldPerStream.set(stream.key, held + 1);
    this.#held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held--;
      const left = (this.#heldPerStream.get(stream.key) ?? 1) - 1;
      if (left > 0) this.#heldPerStream.set(stream.key, left);
      else this.#heldPerStream.delete(stream.key);
    };
  }

  /** Requests held open now, in all. */
  get held(): number {
    return this.#held;
  }

  /**
   * Resolves true as soon as `ready()` holds for `track` (at once if it
   * already does); false when `timeoutMs` passes, the track ends without it,
   * the stream is dropped or `signal` aborts (the client went away); `busy`
   * when the hold bounds are reached. Each change of the track costs its own
   * waiters only.
   */
  waitFor(stream: StreamWindow, track: TrackWindow, ready: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<WaitResult> {
    if (ready()) return Promise.resolve(true);
    if (track.ended || signal?.aborted) return Promise.resolve(false);
    const release = this.hold(stream);
    if (release === undefined) return Promise.resolve('busy');
    const store = this;
    return new Promise((resolve) => {
      const finish = (result: boolean): void => {
        cancelTimer();
        stop();
        release();
        signal?.removeEventListener('abort', clientLeft);
        resolve(result);
      };
      const clientLeft = (): void => finish(false);
      const cancelTimer = this.#clock.schedule(timeoutMs, function waitTimedOut() {
        finish(false);
      });
      const stop = this.listen(track, function trackChanged() {
        const now = ready();
        if (now || track.ended || store.dropped(track)) finish(now);
      });
      signal?.addEventListener('abort', clientLeft, { once: true });
    });
  }

  /**
   * Resolves `ready` as soon as `ready()` holds for `stream` (checked after
   * every change to it), `timeout` when `timeoutMs` passes first (or the
   * stream is dropped), `gone` when `signal` aborts (the client went away).
   * Not counted against the hold bounds: it waits at most `master_wait`.
   */
  settle(stream: StreamWindow, ready: () => boolean, timeoutMs: number, signal: AbortSignal): Promise<'ready' | 'timeout' | 'gone'> {
    if (signal.aborted) return Promise.resolve('gone');
    if (ready()) return Promise.resolve('ready');
    let set = this.#streamListeners.get(stream);
    if (set === undefined) this.#streamListeners.set(stream, (set = new Set()));
    const listeners = set;
    return new Promise((resolve) => {
      const finish = (result: 'ready' | 'timeout' | 'gone'): void => {
        cancelTimer();
        listeners.delete(streamChanged);
        if (listeners.size === 0 && this.#streamListeners.get(stream) === listeners) this.#streamListeners.delete(stream);
        signal.removeEventListener('abort', clientLeft);
        resolve(result);
      };
      const clientLeft = (): void => finish('gone');
      const cancelTimer = this.#clock.schedule(timeoutMs, function settleTimedOut() {
        finish('timeout');
      });
      const store = this;
      function streamChanged(): void {
        if (ready()) finish('ready');
        else if (stream.endedAt !== undefined || store.#streams.get(stream.key) !== stream) finish('timeout');
      }
      listeners.add(streamChanged);
      signal.addEventListener('abort', clientLeft, { once: true });
    });
  }

  #notifyStream(stream: StreamWindow): void {
    const set = this.#streamListeners.get(stream);
    if (set === undefined) return;
    for (const listener of [...set]) listener();
  }

  #newEpoch(): string {
    this.#lastEpoch = Math.max(this.#clock.now(), this.#lastEpoch + 1);
    return epochOf(this.#lastEpoch);
  }

  #notify(track: TrackWindow): void {
    const set = this.#listeners.get(track);
    if (set === undefined) return;
    for (const listener of [...set]) listener();
  }

  #scheduleDrop(key: string): void {
    this.#cancelDrop(key);
    const cancel = this.#clock.schedule(this.#keepEnded, () => this.drop(key));
    this.#dropTimers.set(key, cancel);
  }

  #cancelDrop(key: string): void {
    this.#dropTimers.get(key)?.();
    this.#dropTimers.delete(key);
  }

  /** Forgets a stream; whoever waits on its tracks is answered. */
  drop(key: string): void {
    const stream = this.#streams.get(key);
    if (stream === undefined) return;
    this.#cancelDrop(key);
    this.#streams.delete(key);
    for (const track of stream.tracks.values()) this.#dropped.add(track);
    for (const track of stream.tracks.values()) this.#notify(track);
    this.#notifyStream(stream);
  }

  /** Drops every stream and timer (the node stops). */
  clear(): void {
    for (const key of [...this.#streams.keys()]) this.drop(key);
  }
}
