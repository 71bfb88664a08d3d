import { Observable, type Subscriber } from 'rxjs';
import { describe, expect, it } from 'vitest';
import tumbling from '../../nodes/events/window-tumbling.ts';
import sliding from '../../nodes/events/window-sliding.ts';
import session from '../../nodes/events/window-session.ts';
import aggregate from '../../nodes/events/aggregate.ts';
import { batchOf, drive, fakeContext, probeAck, VirtualClock } from '../helpers/fake-context.ts';
import { defineOperator, z, type Ack, type Batch, type EventRecord, type OperatorDefinition } from '../../runtime/api.ts';
import type { Engine } from '../../runtime/engine.ts';
import { checkYaml, startYaml, take } from '../helpers/pipeline.ts';

/** A record at event time `ts`, numbered `n` in arrival order. */
type Reading = { n: number; ts: number; device?: string };

interface Pane {
  key: unknown;
  start: number;
  end: number;
  records: Reading[];
}

/**
 * Runs a window under `before` on `first`, replaces it (the snapshot goes
 * through JSON, as a state store keeps it), and runs its successor under
 * `after` on `second` to the end of its input.
 */
function reloadAcross<S>(definition: OperatorDefinition<S>, before: unknown, after: unknown, first: Reading[], second: Reading[]) {
  const old = fakeContext(definition, before, { stopReason: 'replaced' });
  const probe = probeAck();
  const ran = drive(definition.create(old), [batchOf(first, probe.ack)]);
  const saved = JSON.parse(JSON.stringify(old.takeSnapshot()));
  const next = fakeContext(definition, after, { restored: saved });
  const run = drive(definition.create(next), [batchOf(second)]);
  return { before: ran.items() as Pane[], after: run.items() as Pane[], late: next.portItems('late') as Reading[], next, probe };
}

/** Each record's `n` with the window it landed in. */
function placement(panes: Pane[]): [number, string][] {
  return panes.flatMap((p) => p.records.map((r) => [r.n, `${String(p.key)}@${p.start}-${p.end}`] as [number, string])).sort((a, b) => a[0] - b[0]);
}

const at = (n: number, ts: number, device?: string): Reading => (device === undefined ? { n, ts } : { n, ts, device });

describe('a lone window reloaded under other settings keeps every record it held', () => {
  it('tumbling 10s -> 5s: held records land in their 5 s windows, those already closed go to `late`', () => {
    // Arrival order differs from time order: re-folding keeps arrival order within a window.
    const first = [at(0, 3000), at(1, 1000), at(2, 6000), at(3, 8000), at(4, 7500)];
    const { before, after, late, next, probe } = reloadAcross(tumbling, { size: '10s', time: 'ts' }, { size: '5s', time: 'ts' }, first, [at(5, 9000), at(6, 12000)]);
    expect(before).toEqual([]);
    // The snapshot owns what the old windows held: the source was released once.
    expect([probe.done, probe.settled]).toEqual([1, 1]);
    // The watermark (8000) has passed [0, 5000): n 0 and 1 are late, not dropped; the rest are windowed once each.
    expect(late).toEqual([at(0, 3000), at(1, 1000)]);
    expect(after).toEqual([
      { key: null, start: 5000, end: 10000, records: [at(2, 6000), at(4, 7500), at(3, 8000), at(5, 9000)] },
      { key: null, start: 10000, end: 15000, records: [at(6, 12000)] },
    ]);
    const log = next.logs.find((l) => l.message.startsWith('re-windowed'));
    expect(log).toMatchObject({ level: 'warn', fields: { records: 5, late: 2 } });
    expect(log!.message).toBe('re-windowed 5 records saved under other window settings; 2 fall in windows already closed and go to `late`');
  });

  it('tumbling 1s -> 2s per key: every record is in the one new window its time and key give, none twice', () => {
    const first = [at(0, 100, 'a'), at(1, 900, 'b'), at(2, 1100, 'a'), at(3, 1500, 'b'), at(4, 1900, 'a')];
    // lateness keeps [0,1000) open in the old node at watermark 1900.
    const { after, late, next } = reloadAcross(tumbling, { size: '1s', time: 'ts', key: 'device', lateness: '1s' }, { size: '2s', time: 'ts', key: 'device' }, first, [at(5, 2500, 'a')]);
    expect(late).toEqual([]);
    expect(placement(after)).toEqual([
      [0, 'a@0-2000'],
      [1, 'b@0-2000'],
      [2, 'a@0-2000'],
      [3, 'b@0-2000'],
      [4, 'a@0-2000'],
      [5, 'a@2000-4000'],
    ]);
    expect(next.logs.find((l) => l.message.startsWith('re-windowed'))).toMatchObject({ level: 'info', fields: { records: 5, late: 0 } });
  });

  it('sliding every 2s -> every 1s: each held record reaches every new window still open, once per window', () => {
    const first = [at(0, 500), at(1, 2500), at(2, 3500)];
    const { after, late } = reloadAcross(sliding, { size: '4s', every: '2s', time: 'ts' }, { size: '4s', every: '1s', time: 'ts' }, first, [at(3, 4200)]);
    expect(late).toEqual([]);
    // Watermark 3500: windows starting at -3000..-500 ended before it; [0,4000) is the oldest still open.
    const ns = (p: Pane) => p.records.map((r) => r.n);
    expect(after.map((p) => [p.start, ns(p)])).toEqual([
      [0, [0, 1, 2]],
      [1000, [1, 2, 3]],
      [2000, [1, 2, 3]],
      [3000, [2, 3]],
      [4000, [3]],
    ]);
  });

  it('session gap 1s -> 300ms: a held session splits where its records are more than the new gap apart', () => {
    const first = [at(0, 100, 'a'), at(1, 600, 'a'), at(2, 800, 'a'), at(3, 1200, 'a'), at(4, 150, 'b')];
    const { after, late } = reloadAcross(session, { gap: '1s', time: 'ts', key: 'device', lateness: '1s' }, { gap: '300ms', time: 'ts', key: 'device', lateness: '1s' }, first, [at(5, 5000, 'c')]);
    expect(late).toEqual([]);
    expect(after.map((p) => [p.key, p.start, p.end, p.records.map((r) => r.n)])).toEqual([
      ['a', 100, 400, [0]],
      ['b', 150, 450, [4]],
      ['a', 600, 1100, [1, 2]],
      ['a', 1200, 1500, [3]],
      ['c', 5000, 5300, [5]],
    ]);
  });

  it('session gap shrunk: a record whose new session the watermark has closed goes to `late`', () => {
    const first = [at(0, 100, 'a'), at(1, 1000, 'a'), at(2, 1150, 'a'), at(3, 1200, 'a'), at(4, 1100, 'b')];
    const { after, late } = reloadAcross(session, { gap: '1s', time: 'ts', key: 'device' }, { gap: '300ms', time: 'ts', key: 'device' }, first, [at(5, 5000, 'c')]);
    // The watermark (1200) has passed the end of [100, 400): n 0 is late; the rest are re-sessioned.
    expect(late.map((r) => r.n)).toEqual([0]);
    expect(after.map((p) => [p.key, p.start, p.end, p.records.map((r) => r.n)])).toEqual([
      ['a', 1000, 1500, [1, 2, 3]],
      ['b', 1100, 1400, [4]],
      ['c', 5000, 5300, [5]],
    ]);
  });

  it('event time -> processing time: held records arrive again on the clock, into its current window', () => {
    const clock = new VirtualClock(42_000);
    const old = fakeContext(tumbling, { size: '1s', time: 'ts' }, { stopReason: 'replaced' });
    drive(tumbling.create(old), [batchOf([at(0, 100), at(1, 200)])]);
    const next = fakeContext(tumbling, { size: '10s' }, { restored: JSON.parse(JSON.stringify(old.takeSnapshot())), clock });
    const run = drive(tumbling.create(next), [batchOf([at(2, 5)])]);
    expect(next.portItems('late')).toEqual([]);
    expect(run.items()).toEqual([{ key: null, start: 40_000, end: 50_000, records: [at(0, 100), at(1, 200), at(2, 5)] }]);
  });

  it('processing time -> event time: held records go to the windows of their own time field, none late for another', () => {
    const old = fakeContext(tumbling, { size: '10s' }, { stopReason: 'replaced', clock: new VirtualClock(42_000) });
    drive(tumbling.create(old), [batchOf([at(0, 2500), at(1, 100)])]);
    const next = fakeContext(tumbling, { size: '1s', time: 'ts' }, { restored: JSON.parse(JSON.stringify(old.takeSnapshot())) });
    const run = drive(tumbling.create(next), [batchOf([at(2, 2600)])]);
    expect(next.portItems('late')).toEqual([]);
    expect((run.items() as Pane[]).map((p) => [p.start, p.records.map((r) => r.n)])).toEqual([
      [0, [1]],
      [2000, [0, 2]],
    ]);
  });

  it('processing time 10s -> 2s: held records keep the time they arrived where that window is open, else join the current one', () => {
    const clock = new VirtualClock(5000);
    const old = fakeContext(tumbling, { size: '10s' }, { stopReason: 'replaced', clock });
    drive(tumbling.create(old), [batchOf([at(0, 0)])]);
    clock.advance(2500);
    const second = fakeContext(tumbling, { size: '10s' }, { stopReason: 'replaced', clock, restored: JSON.parse(JSON.stringify(old.takeSnapshot())) });
    drive(tumbling.create(second), [batchOf([at(1, 0)])]);
    clock.advance(1000);
    const next = fakeContext(tumbling, { size: '2s', lateness: '1s' }, { restored: JSON.parse(JSON.stringify(second.takeSnapshot())), clock });
    const run = drive(tumbling.create(next), [batchOf([at(2, 0)])]);
    // At 8.5 s: n 0 arrived at 5 s, in [4 s, 6 s), closed at 7 s: with no time of its own to be late by, it
    // joins the current [8 s, 10 s). n 1 arrived at 7.5 s, in [6 s, 8 s), open until 9 s: it stays there.
    expect(next.portItems('late')).toEqual([]);
    expect((run.items() as Pane[]).map((p) => [p.start, p.records.map((r) => r.n)])).toEqual([
      [6000, [1]],
      [8000, [0, 2]],
    ]);
    expect(next.logs.find((l) => l.message.startsWith('re-windowed'))).toMatchObject({ level: 'info', fields: { records: 2, late: 0 } });
  });

  it('keeps the arrival order for records of equal time across the reload', () => {
    const first = [at(0, 1000), at(1, 1000), at(2, 1000)];
    const { after } = reloadAcross(tumbling, { size: '10s', time: 'ts' }, { size: '20s', time: 'ts' }, first, [at(3, 1000)]);
    expect(after[0].records.map((r) => r.n)).toEqual([0, 1, 2, 3]);
  });
});

describe('a fused window and aggregate reloaded under other window settings', () => {
  it('emits the open windows as the old settings made them, before the first new result', () => {
    const stats = { count: 'count()', low: 'min(n)', high: 'max(n)' };
    const old = fakeContext(sliding, { size: '4s', every: '2s', time: 'ts', lateness: '1s' }, { stopReason: 'replaced' });
    drive(sliding.fuse!.aggregate(old, fakeContext(aggregate, stats)), [batchOf([at(0, 500), at(1, 2500), at(2, 4100), at(3, 4500)])]);
    const saved = JSON.parse(JSON.stringify(old.takeSnapshot()));
    const next = fakeContext(sliding, { size: '2s', every: '1s', time: 'ts' }, { restored: saved });
    const run = drive(sliding.fuse!.aggregate(next, fakeContext(aggregate, stats)), [batchOf([at(4, 6500)])]);
    // The old node emitted [-2000, 2000); [0, 4000), [2000, 6000) and [4000, 8000) were open.
    expect(run.batches[0].items).toEqual([
      { key: null, start: 0, end: 4000, count: 2, low: 0, high: 1 },
      { key: null, start: 2000, end: 6000, count: 3, low: 1, high: 3 },
      { key: null, start: 4000, end: 8000, count: 2, low: 2, high: 3 },
    ]);
    expect(run.items().slice(3)).toEqual([
      { key: null, start: 5000, end: 7000, count: 1, low: 4, high: 4 },
      { key: null, start: 6000, end: 8000, count: 1, low: 4, high: 4 },
    ]);
    expect(next.logs.some((l) => l.level === 'warn' && l.message.startsWith('emitted 3 open windows of the old window settings early'))).toBe(true);
  });
});

describe('the late records of a re-windowing', () => {
  it('go out once the node runs, not before, and each once', () => {
    const old = fakeContext(tumbling, { size: '10s', time: 'ts' }, { stopReason: 'replaced' });
    drive(tumbling.create(old), [batchOf([at(0, 1000), at(1, 9000)])]);
    const next = fakeContext(tumbling, { size: '2s', time: 'ts' }, { restored: JSON.parse(JSON.stringify(old.takeSnapshot())) });
    const fn = tumbling.create(next);
    expect(next.portItems('late')).toEqual([]);
    const run = drive(fn, [batchOf([at(2, 9500)])]);
    expect(next.portItems('late')).toEqual([at(0, 1000)]);
    expect(run.items()).toEqual([{ key: null, start: 8000, end: 10000, records: [at(1, 9000), at(2, 9500)] as EventRecord[] }]);
  });
});

/** A source the test feeds by hand, counting how often each batch's ack came back. */
const fed = { subscriber: undefined as Subscriber<Batch> | undefined, newAck: undefined as ((batch: number) => Ack) | undefined, next: 0, acks: [] as number[] };
const feedSource = defineOperator({
  name: 'test.feed',
  summary: 'Test source: batches the test pushes.',
  doc: 'Emits the batches `feed` makes, `{n, ts}` with `ts` = 200·n; completes when told or stopped.',
  inputs: {},
  outputs: { out: { type: 'Event<{n: number, ts: number}>', doc: 'Numbered records.' } },
  settings: z.object({}),
  create: (ctx) => () =>
    new Observable<Batch>((subscriber) => {
      fed.subscriber = subscriber;
      fed.newAck = (batch) => ctx.newAck(() => (fed.acks[batch] = (fed.acks[batch] ?? 0) + 1));
      ctx.signal.addEventListener('abort', () => subscriber.complete());
    }),
});

/** Feeds `batches` batches of 5 records, 200 ms of event time apart. */
function feed(batches: number): void {
  for (let b = 0; b < batches; b++) {
    const id = fed.next / 5;
    const items = Array.from({ length: 5 }, () => ({ n: fed.next, ts: 200 * fed.next++ }));
    fed.subscriber!.next({ items, ack: fed.newAck!(id) });
  }
}

async function waitUntil(what: string, done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 5) {
    if (waited > 5000) throw new Error(`${what}: not after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('a running graph reloaded with other window settings', () => {
  const pipeline = (window: string, rest: string) => `
streams: 1
name: rewindow
nodes:
  src: { op: test.feed }
  win: { op: window.tumbling, in: src, with: { ${window} } }
${rest}`;

  /** Runs the pipeline across the reload; the engine, and the warnings of the reload's result. */
  async function runAcrossReload(before: string, after: string, rest: string): Promise<{ engine: Engine; warnings: string[] | undefined }> {
    Object.assign(fed, { subscriber: undefined, newAck: undefined, next: 0, acks: [] });
    const engine = startYaml(pipeline(before, rest), { extra: [feedSource] });
    await waitUntil('the source started', () => fed.subscriber !== undefined);
    // n 0..99 at ts 0..19800: [0, 10 s) closes, [10 s, 20 s) holds n 50..99.
    feed(20);
    await waitUntil('the window took every batch', () => new Map(engine.nodeStats()).get('win')!.recordsIn === 100);
    const result = await engine.reload(checkYaml(pipeline(after, rest), [feedSource]));
    expect(result.status).toBe('applied');
    expect(result.diff.replaced).toContain('win');
    // n 100..149 at ts 20 s..29.8 s.
    feed(10);
    fed.subscriber!.complete();
    await engine.done;
    // Each source batch was acknowledged, once: none dropped unacknowledged, none left hanging.
    expect(fed.acks).toEqual(Array.from({ length: 30 }, () => 1));
    expect(new Map(engine.nodeStats()).get('src')!.starts).toBe(1);
    return { engine, warnings: result.status === 'applied' ? result.warnings : undefined };
  }

  it('a lone tumbling window 10s -> 4s: every record reaches one window or `late`, once', async () => {
    const rest = `  out: { op: test.collect, in: win, with: { into: rewindow-out } }\n  late: { op: test.collect, in: win.late, with: { into: rewindow-late } }\n`;
    const { warnings } = await runAcrossReload('size: 10s, time: ts', 'size: 4s, time: ts', rest);
    // The reload's result says what became of the held records.
    expect(warnings).toEqual([expect.stringMatching(/^`win` changed its windows: any records it held were folded again/)]);
    const panes = take('rewindow-out') as { start: number; end: number; records: { n: number; ts: number }[] }[];
    const late = (take('rewindow-late') as { n: number }[]).map((r) => r.n);
    // Watermark 19.8 s at the reload: [8 s, 12 s) and [12 s, 16 s) have closed, so n 50..79 are late.
    expect(late).toEqual(Array.from({ length: 30 }, (_, i) => 50 + i));
    expect(panes.map((p) => [p.start, p.end, p.records[0].n, p.records.length])).toEqual([
      [0, 10_000, 0, 50],
      [16_000, 20_000, 80, 20],
      [20_000, 24_000, 100, 20],
      [24_000, 28_000, 120, 20],
      [28_000, 32_000, 140, 10],
    ]);
    for (const pane of panes) for (const record of pane.records) expect(record.ts >= pane.start && record.ts < pane.end).toBe(true);
    const seen = [...panes.flatMap((p) => p.records.map((r) => r.n)), ...late].sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => i));
  });

  it('with `late` unconnected: the records late in the new windows are counted as dropped, not lost silently', async () => {
    const { engine } = await runAcrossReload('size: 10s, time: ts', 'size: 4s, time: ts', `  out: { op: test.collect, in: win, with: { into: rewindow-out } }\n`);
    const panes = take('rewindow-out') as { records: unknown[] }[];
    expect(panes.reduce((sum, p) => sum + p.records.length, 0)).toBe(120);
    expect(new Map(engine.nodeStats()).get('win')!.dropped.get('unconnected_late')).toBe(30);
  });

  it('fused with an aggregate, 10s -> 4s: the old open window is emitted early and every record counted once', async () => {
    const rest = `  stats: { op: aggregate, in: win, with: { count: count(), first: min(n), last: max(n) } }\n  out: { op: test.collect, in: stats, with: { into: rewindow-stats } }\n`;
    const { warnings } = await runAcrossReload('size: 10s, time: ts', 'size: 4s, time: ts', rest);
    expect(warnings).toEqual([expect.stringMatching(/^`win` changed its windows while fused with an aggregate: any open windows were emitted early/)]);
    const rows = take('rewindow-stats') as { start: number; end: number; count: number; first: number; last: number }[];
    expect(rows.map((r) => [r.start, r.end, r.first, r.count])).toEqual([
      [0, 10_000, 0, 50],
      [10_000, 20_000, 50, 50],
      [20_000, 24_000, 100, 20],
      [24_000, 28_000, 120, 20],
      [28_000, 32_000, 140, 10],
    ]);
    for (const row of rows) expect(row.last - row.first + 1).toBe(row.count);
  });
});

describe('what a window tells a reload', () => {
  const settings = (raw: Record<string, unknown>) => tumbling.settings.parse(raw);
  const note = (before: Record<string, unknown>, after: Record<string, unknown>, fused = false) => tumbling.reloadNote!(settings(before), settings(after), { fused });

  it('nothing when its windows stay as they were (another lateness or key)', () => {
    expect(note({ size: '10s', time: 'ts' }, { size: '10s', time: 'ts', lateness: '2s', key: 'device' })).toBeUndefined();
  });

  it('that its records were folded again when its size or clock changed', () => {
    expect(note({ size: '10s', time: 'ts' }, { size: '4s', time: 'ts' })).toMatch(/folded again/);
    expect(note({ size: '10s', time: 'ts' }, { size: '10s' })).toMatch(/folded again/);
    expect(note({ size: '10s', time: 'ts' }, { size: '4s', time: 'ts' }, true)).toMatch(/emitted early/);
    expect(note({ size: '10s', time: 'ts' }, { size: '10s' }, true)).toMatch(/emitted early/);
    expect(sliding.reloadNote!(sliding.settings.parse({ size: '10s', every: '2s', time: 'ts' }), sliding.settings.parse({ size: '10s', every: '5s', time: 'ts' }), { fused: false })).toMatch(/folded again/);
    expect(session.reloadNote!(session.settings.parse({ gap: '5s', time: 'ts' }), session.settings.parse({ gap: '5s', time: 'ts', lateness: '1s' }), { fused: false })).toBeUndefined();
  });
});

describe('a window reloaded with another lateness', () => {
  const t = (ts: number) => ({ ts });
  const panes = (items: unknown[]) => (items as Pane[]).map((p) => [p.start, p.end, p.records.map((r) => r.ts)]);

  /** Saves a window run on `first` under `before`, restores it under `after`, and runs it on `second`. */
  function across<S>(definition: OperatorDefinition<S>, before: unknown, after: unknown, first: number[], second: number[], keepSettings = true) {
    const old = fakeContext(definition, before, { stopReason: 'replaced' });
    drive(definition.create(old), [batchOf(first.map(t))]);
    const saved = JSON.parse(JSON.stringify(old.takeSnapshot())) as { settings?: unknown };
    // A snapshot of an earlier version does not say which lateness it was saved under.
    if (!keepSettings) delete saved.settings;
    const next = fakeContext(definition, after, { restored: saved });
    const run = drive(definition.create(next), [batchOf(second.map(t))]);
    return { run, late: next.portItems('late') };
  }

  it('shorter (tumbling 2s -> 0s): a held window the watermark now closes is emitted at once, not lost', () => {
    const { run, late } = across(tumbling, { size: '1s', time: 'ts', lateness: '2s' }, { size: '1s', time: 'ts' }, [500, 2500], [2600, 3100]);
    expect(panes(run.batches[0].items)).toEqual([[0, 1000, [500]]]);
    expect(panes(run.items())).toEqual([
      [0, 1000, [500]],
      [2000, 3000, [2500, 2600]],
      [3000, 4000, [3100]],
    ]);
    expect(late).toEqual([]);
  });

  it('shorter, from a snapshot that does not say its lateness: the held window is still emitted once', () => {
    const { run } = across(tumbling, { size: '1s', time: 'ts', lateness: '2s' }, { size: '1s', time: 'ts' }, [500, 2500], [2600, 3100], false);
    expect(panes(run.items())).toEqual([
      [0, 1000, [500]],
      [2000, 3000, [2500, 2600]],
      [3000, 4000, [3100]],
    ]);
  });

  it('shorter (sliding 2s -> 0s): every held window is emitted once, those now closed at once', () => {
    const { run } = across(sliding, { size: '2s', every: '1s', time: 'ts', lateness: '2s' }, { size: '2s', every: '1s', time: 'ts' }, [500, 2500], [2600, 3100]);
    expect(panes(run.items())).toEqual([
      [-1000, 1000, [500]],
      [0, 2000, [500]],
      [1000, 3000, [2500, 2600]],
      [2000, 4000, [2500, 2600, 3100]],
      [3000, 5000, [3100]],
    ]);
  });

  it('longer (tumbling 0s -> 2s): a record of a window emitted before the reload is late, not a second emission', () => {
    const old = fakeContext(tumbling, { size: '1s', time: 'ts' }, { stopReason: 'replaced' });
    const before = drive(tumbling.create(old), [batchOf([t(500), t(1500)])]);
    expect(panes(before.items())).toEqual([[0, 1000, [500]]]);
    const next = fakeContext(tumbling, { size: '1s', time: 'ts', lateness: '2s' }, { restored: JSON.parse(JSON.stringify(old.takeSnapshot())) });
    // 700 is in [0, 1000), emitted at watermark 1500; 1200 is in the held [1000, 2000), open under either lateness.
    const run = drive(tumbling.create(next), [batchOf([t(700), t(1200)])]);
    expect(next.portItems('late')).toEqual([t(700)]);
    expect(panes(run.items())).toEqual([[1000, 2000, [1200, 1500]]]);
  });

  it('longer (sliding 0s -> 2s): a record only emitted windows held is late; one a held window takes is folded', () => {
    const old = fakeContext(sliding, { size: '2s', every: '1s', time: 'ts' }, { stopReason: 'replaced' });
    drive(sliding.create(old), [batchOf([t(500), t(2500)])]);
    const next = fakeContext(sliding, { size: '2s', every: '1s', time: 'ts', lateness: '2s' }, { restored: JSON.parse(JSON.stringify(old.takeSnapshot())) });
    // Watermark 2500 had closed [-1000, 1000) and [0, 2000): 400 belongs to those only; 1400 also to [1000, 3000).
    const run = drive(sliding.create(next), [batchOf([t(400), t(1400)])]);
    expect(next.portItems('late')).toEqual([t(400)]);
    expect(panes(run.items())).toEqual([
      [1000, 3000, [1400, 2500]],
      [2000, 4000, [2500]],
    ]);
  });

  it('longer (session 0s -> 2s): a record late before the reload does not start a session again', () => {
    const old = fakeContext(session, { gap: '1s', time: 'ts' }, { stopReason: 'replaced' });
    const before = drive(session.create(old), [batchOf([t(500), t(1600), t(2500), t(3000)])]);
    expect(panes(before.items())).toEqual([[500, 1500, [500]]]);
    const next = fakeContext(session, { gap: '1s', time: 'ts', lateness: '2s' }, { restored: JSON.parse(JSON.stringify(old.takeSnapshot())) });
    // Watermark 3000 had closed sessions ending by then: 400 (to 1400, overlapping only the emitted one) was
    // late; 2200 joins the held one.
    const run = drive(session.create(next), [batchOf([t(400), t(2200)])]);
    expect(next.portItems('late')).toEqual([t(400)]);
    expect(panes(run.items())).toEqual([[1600, 4000, [1600, 2200, 2500, 3000]]]);
  });

  it('longer (sliding 0s -> 2s): a window emitted before the reload is not emitted again', () => {
    const old = fakeContext(sliding, { size: '2s', every: '1s', time: 'ts' }, { stopReason: 'replaced' });
    const before = drive(sliding.create(old), [batchOf([t(500), t(1500)])]);
    expect(panes(before.items())).toEqual([[-1000, 1000, [500]]]);
    const next = fakeContext(sliding, { size: '2s', every: '1s', time: 'ts', lateness: '2s' }, { restored: JSON.parse(JSON.stringify(old.takeSnapshot())) });
    const run = drive(sliding.create(next), [batchOf([t(3000)])]);
    expect(panes(run.items())).toEqual([
      [0, 2000, [500, 1500]],
      [1000, 3000, [1500]],
      [2000, 4000, [3000]],
      [3000, 5000, [3000]],
    ]);
  });
});
