/**
 * What a window node does with a snapshot it cannot restore as it is: one
 * saved under other window settings (a reload changed the size, slide, gap
 * or clock), or, through `--state FILE`, which restores by node name only,
 * by another window operator or another aggregate.
 *
 * A lone window's records are folded again into the new windows (the node
 * does that: see `refold` in `window-node.ts`). A fused aggregate's panes
 * cannot be split: the old windows are emitted early as they were, when the
 * saved settings still build the geometry the panes were saved in. Anything
 * else is dropped, counted and logged.
 */
import type { EventRecord, NodeContext } from '../../../runtime/api.ts';
import type { ClosedPanes, SavedPane, WindowAssigner } from './assigner.ts';
import { recordsFolder, type PaneFolder, type RecordsState } from './pane-folder.ts';
import type { WindowSettings, WindowSnapshot } from './window-node.ts';

/** The node taking over: its context, clock, shape, folder, and the assigner it makes of given settings. */
export interface TakeoverTarget<State> {
  ctx: NodeContext<WindowSettings>;
  clock: 'event' | 'processing';
  shape: string;
  folder: PaneFolder<State>;
  assignerOf(settings: WindowSettings): WindowAssigner<State>;
}

/** What taking over a snapshot leaves the node to do. */
export type Takeover<State> =
  /** Fold `records` again, in this order, from `watermark`; `times` are their processing-time arrivals on this clock, if known. */
  | { kind: 'refold'; records: EventRecord[]; times: number[] | undefined; watermark: number; arrivals: number }
  /** Emit `closed`, the old windows, first; then run from `watermark`. */
  | { kind: 'flush'; closed: ClosedPanes<State>; watermark: number; arrivals: number }
  /** Nothing was readable: the loss is already counted and logged. */
  | { kind: 'dropped' };

/**
 * Decides how the node described by `target` takes over `saved`, which it
 * cannot load as it is. A drop is counted (`window_state_unreadable` in
 * records when the panes held records, else `window_panes_unreadable` in
 * panes: running aggregates do not say how many records they folded) and
 * logged here.
 */
export function takeOver<State>(saved: WindowSnapshot, target: TakeoverTarget<State>): Takeover<State> {
  const { ctx, clock, folder } = target;
  const panes = Array.isArray(saved.panes) ? saved.panes : [];
  const parts = shapeParts(typeof saved.shape === 'string' ? saved.shape : '');
  const fields = { node: ctx.node, saved: saved.shape, now: target.shape };
  // The saved watermark means nothing on another clock: there, records arrive now.
  const watermark = parts.clock === clock ? (saved.watermark ?? -Infinity) : -Infinity;
  const arrivals = saved.arrivals ?? 0;
  if (saved.version === 1 && parts.folder === recordsFolder.shape) {
    const held = recordsOf(panes);
    return { kind: 'refold', records: held.records, times: clock === 'processing' && parts.clock === clock ? held.times : undefined, watermark, arrivals };
  }
  if (saved.version === 1 && parts.folder === folder.shape && saved.settings !== undefined) {
    const old = target.assignerOf(saved.settings);
    // Only the settings that built these panes can merge them into the windows they were (a snapshot of
    // another window operator, restored by name, carries settings that build another geometry).
    if (old.shape === parts.assigner) {
      old.load(panes, saved.watermark ?? -Infinity, saved.settings.lateness);
      const closed = old.takeClosed(Infinity);
      ctx.log.warn({ ...fields, windows: closed.panes.length }, `emitted ${counted(closed.panes.length, 'open window')} of the old window settings early: their aggregates cannot be split into the new windows`);
      return { kind: 'flush', closed, watermark, arrivals };
    }
  }
  const records = parts.folder === recordsFolder.shape ? countRecords(panes) : undefined;
  if (records !== undefined) {
    ctx.metrics.dropped(records, 'window_state_unreadable');
    ctx.log.error({ ...fields, records }, `dropped ${counted(records, 'saved record')}: these settings cannot read the window state that holds them`);
  } else {
    ctx.metrics.dropped(panes.length, 'window_panes_unreadable');
    ctx.log.error({ ...fields, panes: panes.length }, `dropped ${counted(panes.length, 'saved window pane')} (one key's aggregates over one window or slice; the records they folded are not known): these settings cannot read what they hold`);
  }
  return { kind: 'dropped' };
}

/** Logs what re-folding `records` did: how many went into the new windows, how many to `late`. */
export function logRefold(ctx: NodeContext<WindowSettings>, saved: WindowSnapshot, shape: string, records: number, late: number): void {
  const fields = { node: ctx.node, saved: saved.shape, now: shape, records, late };
  const message = `re-windowed ${counted(records, 'record')} saved under other window settings` + (late > 0 ? `; ${late} fall in windows already closed and go to \`late\`` : '');
  if (late > 0) ctx.log.warn(fields, message);
  else ctx.log.info(fields, message);
}

/** `1 record`, `2 records`. */
function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The parts of a snapshot's shape, `clock;assigner;folder` (the folder's own may hold `;`). */
function shapeParts(shape: string): { clock: string; assigner: string; folder: string } {
  const first = shape.indexOf(';');
  const second = first < 0 ? -1 : shape.indexOf(';', first + 1);
  if (second < 0) return { clock: '', assigner: '', folder: '' };
  return { clock: shape.slice(0, first), assigner: shape.slice(first + 1, second), folder: shape.slice(second + 1) };
}

/**
 * Every record saved panes hold, once each, in arrival order, with its
 * time. Slices and sessions do not share records, but `window.sliding`
 * saved one pane per window before it folded into slices, so a state file
 * of then holds each record in several panes, with one arrival number:
 * repeats are skipped.
 */
function recordsOf(panes: readonly SavedPane[]): { records: EventRecord[]; times: number[] } {
  const held: { record: EventRecord; time: number; seq: number }[] = [];
  for (const pane of panes) {
    const { records, times, seqs } = pane.state as RecordsState;
    for (let i = 0; i < records.length; i++) held.push({ record: records[i], time: times[i], seq: seqs[i] });
  }
  held.sort((a, b) => a.seq - b.seq);
  const records: EventRecord[] = [];
  const times: number[] = [];
  for (let i = 0; i < held.length; i++) {
    if (i > 0 && held[i].seq === held[i - 1].seq) continue;
    records.push(held[i].record);
    times.push(held[i].time);
  }
  return { records, times };
}

/** How many records panes of a records folder hold, or undefined when a pane does not say. */
function countRecords(panes: readonly SavedPane[]): number | undefined {
  let count = 0;
  for (const pane of panes) {
    const records = (pane.state as Partial<RecordsState> | null)?.records;
    if (!Array.isArray(records)) return undefined;
    count += records.length;
  }
  return count;
}
