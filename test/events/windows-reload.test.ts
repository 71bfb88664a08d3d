import { describe, expect, it } from 'vitest';
import tumbling from '../../nodes/events/window-tumbling.ts';
import sliding from '../../nodes/events/window-sliding.ts';
import session from '../../nodes/events/window-session.ts';
import aggregate from '../../nodes/events/aggregate.ts';
import { batchOf, drive, fakeContext, probeAck, VirtualClock } from '../helpers/fake-context.ts';
import type { EventRecord, OperatorDefinition } from '../../runtime/api.ts';

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
