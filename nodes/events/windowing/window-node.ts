/**
 * The window engine shared by `window.tumbling`, `window.sliding` and
 * `window.session`, alone or with an `aggregate` fused into them.
 *
 * Per record: read its time (the `time` field, or the clock for processing
 * time) and its key, let the folder read what it contributes, and fold it
 * into its windows; a record whose windows have all closed goes to the
 * `late` port. The watermark is the largest event time seen by the node
 * (across keys); after each batch, windows it has passed by `lateness` are
 * emitted as one batch, ordered by window start then key. With processing
 * time, timers on the runtime's clock close windows as time passes.
 *
 * Acknowledgements: a window holds the ack of every batch whose records it
 * folded (retained once per window) and settles it at once, which returns
 * the source's in-flight credit while the commit waits. When windows are
 * emitted, the output's ack combines theirs, so a source batch is released
 * only once every window holding it has been emitted and acknowledged.
 *
 * State: open windows, the watermark and the settings are saved through
 * `ctx.snapshot` and restored from `ctx.restored` as they are when the
 * geometry and what panes hold are unchanged. Saved under other settings (a
 * reload changed the size, slide, gap or clock), a lone window's records are
 * folded again, in arrival order, into the new windows, and records whose
 * new windows have already closed go to `late` (in processing time, to the
 * current window); a fused aggregate's panes, which cannot be split, are
 * emitted early as the windows they were (`window-takeover.ts`). When
 * the input ends, open windows are flushed, except when the node stops to
 * be replaced or suspended: then they are kept for the snapshot, and the
 * acks they held are released, the snapshot now owning those records. A
 * keyed window with `parallelism` runs one instance per input partition and
 * hands its held acks over at each checkpoint of that partition's state
 * (`holds`, docs/keyed-state.md).
 */
import { Observable } from 'rxjs';
import { Ack, carriesState, reasonOf, toPlain, type Batch, type EventRecord, type NodeContext, type NodeFunction } from '../../../runtime/api.ts';
import type { ClosedPanes, SavedPane, WindowAssigner } from './assigner.ts';
import type { PaneFolder } from './pane-folder.ts';
import { compileReader, eventTimeOf, keyStringOf, missingField } from './record-access.ts';
import { logRefold, takeOver } from './window-takeover.ts';

/** Settings every window operator has (durations in milliseconds). */
export interface WindowSettings {
  time?: string;
  key?: string;
  lateness: number;
}

/** What a window node's snapshot holds. */
export interface WindowSnapshot {
  version: 1;
  /** Clock, assigner and folder shapes; restored as it is only into the same. */
  shape: string;
  /** The window's settings when saved: a successor under other settings re-windows or flushes its panes with them. */
  settings?: WindowSettings;
  watermark: number | null;
  /** Records folded so far: arrival numbers continue from it. */
  arrivals: number;
  panes: SavedPane[];
}

/** What `windowNode` runs: which contexts, how panes fold, how records map to windows. */
export interface WindowNodeOptions<State> {
  /** The window node's context: settings, late port, dead letters for time and key, snapshot, clock. */
  ctx: NodeContext<WindowSettings>;
  /** Where records the folder refuses go: the fused aggregate's context, or `ctx`. */
  foldCtx: NodeContext<unknown>;
  folder: PaneFolder<State>;
  /** The assigner this operator makes of `settings`, over `folder`: of the node's own, and of a snapshot's to flush its panes. */
  assignerOf(settings: WindowSettings): WindowAssigner<State>;
}

/**
 * How `foldRecords` takes records: as they arrive, each advancing the
 * watermark; or folded again at a takeover, all accepted before, so they
 * advance it only at the end (none makes another late), with, in processing
 * time, the times they first arrived at when known.
 */
type FoldPass = { kind: 'arriving' } | { kind: 'refold'; times: readonly number[] | undefined };

const arriving: FoldPass = { kind: 'arriving' };

/**
 * The clock and geometry a window's state is kept in: its snapshot's
 * `shape` without the folder's part. Settings that change it make a
 * replaced window take its state over (`window-takeover.ts`).
 */
export function windowGeometry(settings: WindowSettings, assigner: { readonly shape: string }): string {
  return `${settings.time === undefined ? 'processing' : 'event'};${assigner.shape}`;
}

/** Builds the running function of a window (or fused window and aggregate). */
export function windowNode<State>(options: WindowNodeOptions<State>): NodeFunction {
  const { ctx, foldCtx, folder } = options;
  const assigner = options.assignerOf(ctx.settings);
  const processingTime = ctx.settings.time === undefined;
  const timeField = ctx.settings.time ?? '';
  const keyReader = ctx.settings.key === undefined ? undefined : compileReader(ctx.settings.key);
  const keyField = keyReader?.field;
  // Event-time and processing-time windows live on different clocks: one's state means nothing to the other.
  const clock = processingTime ? 'processing' : 'event';
  const shape = `${windowGeometry(ctx.settings, assigner)};${folder.shape}`;
  // -Infinity until a first record: nothing is late before anything was seen.
  let watermark = -Infinity;
  let arrivals = 0;
  // What a restore from other settings leaves to send once the node runs: old windows flushed, records late in the new ones.
  let flushed: ClosedPanes<State> | undefined;
  let lateOnRestore: EventRecord[] | undefined;

  /**
   * Folds records into their windows, as `pass` says: each one's time (its
   * field; in processing time the clock, or the time a re-folded record
   * first arrived at) and key. A record whose time or key cannot be read
   * goes to dead letters; one whose windows have all closed is returned in
   * `late`, except in processing time, where a re-folded record whose window
   * the clock has passed joins the current one, as it would arriving now.
   * Advances the watermark and the arrival numbers.
   */
  function foldRecords(items: EventRecord[], ack: Ack, pass: FoldPass): { late: EventRecord[] | undefined; folded: boolean } {
    let late: EventRecord[] | undefined;
    let folded = false;
    // Locals, not closure variables, in the per-record loop: it runs millions of times.
    let mark = watermark;
    let latest = mark;
    const advance = pass.kind === 'arriving';
    const stamps = pass.kind === 'refold' ? pass.times : undefined;
    let seq = arrivals;
    const windows = assigner;
    const fold = folder;
    const field = timeField;
    const byKeyField = keyField;
    if (processingTime) {
      const now = ctx.now();
      if (now > mark) mark = now;
    }
    for (let i = 0; i < items.length; i++) {
      const record = items[i];
      let time: number;
      if (processingTime) {
        time = stamps === undefined ? mark : stamps[i];
      } else {
        const raw = record[field];
        if (typeof raw === 'number' && raw - raw === 0) {
          time = raw;
        } else {
          try {
            time = eventTimeOf(raw, field);
          } catch (error) {
            ctx.fail(record, error, ack);
            continue;
          }
        }
      }
      let key: unknown = null;
      let keyString = nullKey;
      if (byKeyField !== undefined) {
        const value = record[byKeyField];
        if (typeof value === 'string') {
          key = value;
          keyString = value;
        } else if (value === undefined) {
          ctx.fail(record, missingField(byKeyField), ack);
          continue;
        } else {
          key = toPlain(value);
          keyString = keyStringOf(key);
        }
      } else if (keyReader !== undefined) {
        try {
          key = keyReader.read(record);
        } catch (error) {
          ctx.fail(record, keyError(error), ack);
          continue;
        }
        keyString = keyStringOf(key);
      }
      try {
        fold.prepare(record);
      } catch (error) {
        foldCtx.fail(record, error, ack);
        continue;
      }
      const arrival = seq++;
      if (windows.fold(record, keyString, key, time, arrival, mark, ack)) folded = true;
      else if (processingTime && time !== mark && windows.fold(record, keyString, key, mark, arrival, mark, ack)) folded = true;
      else (late ??= []).push(record);
      if (time > mark) {
        if (advance) mark = time;
        else if (time > latest) latest = time;
      }
    }
    watermark = latest > mark ? latest : mark;
    arrivals = seq;
    return { late, folded };
  }

  const restored = ctx.restored as WindowSnapshot | undefined;
  if (restored !== undefined && restored !== null) {
    if (restored.version === 1 && restored.shape === shape) {
      watermark = restored.watermark ?? -Infinity;
      assigner.load(restored.panes, watermark, restored.settings?.lateness);
      arrivals = restored.arrivals ?? 0;
    } else {
      const plan = takeOver(restored, { ctx, clock, shape, folder, assignerOf: options.assignerOf });
      if (plan.kind !== 'dropped') {
        watermark = plan.watermark;
        arrivals = plan.arrivals;
      }
      if (plan.kind === 'flush') flushed = plan.closed;
      if (plan.kind === 'refold') {
        // Their source acknowledgements went with the snapshot, which owns these records.
        const { late } = foldRecords(plan.records, Ack.none(), { kind: 'refold', times: plan.times });
        lateOnRestore = late;
        logRefold(ctx, restored, shape, plan.records.length, late?.length ?? 0);
      }
    }
  }
  ctx.snapshot(
    function saveWindows(): WindowSnapshot {
      return { version: 1, shape, settings: ctx.settings, watermark: Number.isFinite(watermark) ? watermark : null, arrivals, panes: assigner.save() };
    },
    // At a checkpoint of per-partition state, the stored snapshot owns the records of the open windows.
    { holds: () => assigner.takeHeldAcks() },
  );

  return function windowFunction(input) {
    return new Observable<Batch>((subscriber) => {
      let cancelTimer: (() => void) | undefined;
      let timerAt = Infinity;

      function emitPanes({ panes, acks }: ClosedPanes<State>): void {
        if (panes.length === 0) {
          for (const ack of acks) ack.release();
          return;
        }
        // One ack for the whole flush, held once per output batch: the windows' acks go back when all are acknowledged.
        const ack = Ack.all(acks);
        const batches = Math.ceil(panes.length / outputBatchLimit);
        if (batches > 1) ack.retain(batches - 1);
        for (let from = 0; from < panes.length; from += outputBatchLimit) {
          const count = Math.min(outputBatchLimit, panes.length - from);
          const items: EventRecord[] = new Array(count);
          for (let i = 0; i < count; i++) {
            const pane = panes[from + i];
            const out: EventRecord = { key: pane.key, start: pane.start, end: pane.end };
            folder.write(pane.state, out);
            items[i] = out;
          }
          subscriber.next({ items, ack });
        }
      }

      function emitClosed(limit: number): void {
        emitPanes(assigner.takeClosed(limit));
      }

      function armTimer(): void {
        const next = assigner.nextClose();
        if (next === Infinity || (cancelTimer !== undefined && timerAt <= next)) return;
        cancelTimer?.();
        timerAt = next;
        cancelTimer = ctx.schedule(Math.max(0, next - ctx.now()), function closeWindowsOnTime() {
          cancelTimer = undefined;
          timerAt = Infinity;
          const now = ctx.now();
          if (now > watermark) watermark = now;
          if (watermark >= assigner.nextClose()) emitClosed(watermark);
          armTimer();
        });
      }

      function foldBatch(batch: Batch): void {
        const ack = batch.ack;
        const { late, folded } = foldRecords(batch.items as EventRecord[], ack, arriving);
        if (late !== undefined) {
          ack.retain();
          ctx.emit('late', { items: late, ack });
        }
        // The windows now hold what they need of this batch: return the source's credit.
        if (folded) ack.settle();
        ack.release();
        if (watermark >= assigner.nextClose()) emitClosed(watermark);
        if (processingTime) armTimer();
      }

      function cancel(): void {
        cancelTimer?.();
        cancelTimer = undefined;
        timerAt = Infinity;
      }

      // What a restore under other settings could not put in the new windows goes first; then
      // windows a shorter lateness than the one they were saved under has closed.
      if (flushed !== undefined) emitPanes(flushed);
      if (lateOnRestore !== undefined) ctx.emit('late', { items: lateOnRestore, ack: Ack.none() });
      flushed = undefined;
      lateOnRestore = undefined;
      if (watermark >= assigner.nextClose()) emitClosed(watermark);
      if (processingTime) armTimer();
      const subscription = input.subscribe({
        next(batch) {
          try {
            foldBatch(batch);
          } catch (error) {
            cancel();
            subscriber.error(error);
          }
        },
        error(error: unknown) {
          cancel();
          subscriber.error(error);
        },
        complete() {
          cancel();
          if (carriesState(ctx.stopReason())) {
            for (const ack of assigner.takeHeldAcks()) ack.release();
          } else {
            emitClosed(Infinity);
          }
          subscriber.complete();
        },
      });
      return function stopWindows() {
        cancel();
        subscription.unsubscribe();
      };
    });
  };
}

/** Window results per output batch: a flush of many keys goes out in batches of this size. */
const outputBatchLimit = 1024;

/** The key string of records without a key (`null`), as restored panes spell it. */
const nullKey = keyStringOf(null);

function keyError(error: unknown): Error {
  return new TypeError(`key: ${reasonOf(error)}`);
}
