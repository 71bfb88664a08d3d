import { describe, expect, it } from 'vitest';
import tumbling from '../../nodes/events/window-tumbling.ts';
import sliding from '../../nodes/events/window-sliding.ts';
import session from '../../nodes/events/window-session.ts';
import aggregate from '../../nodes/events/aggregate.ts';
import { batchOf, drive, fakeContext } from '../helpers/fake-context.ts';

/**
 * `--state FILE` restores a node's state by its name only: a window may find
 * a snapshot of another window operator, or of an older version, and must
 * neither build nonsense windows from it nor lose what it held uncounted.
 */

type Reading = { n: number; ts: number };
type Result = { key: unknown; start: number; end: number; records?: Reading[]; count?: number };

const at = (n: number, ts: number): Reading => ({ n, ts });
const throughJson = (value: unknown) => JSON.parse(JSON.stringify(value));
const stats = { count: 'count()' };

describe('a fused window restored from a snapshot of another window operator', () => {
  it('tumbling -> sliding: drops the held aggregates, counted per pane and logged, and runs on', () => {
    const old = fakeContext(tumbling, { size: '10s', time: 'ts' }, { stopReason: 'replaced' });
    drive(tumbling.fuse!.aggregate(old, fakeContext(aggregate, stats)), [batchOf([at(0, 1000), at(1, 2000), at(2, 12_000)])]);
    const next = fakeContext(sliding, { size: '10s', every: '5s', time: 'ts' }, { restored: throughJson(old.takeSnapshot()) });
    const run = drive(sliding.fuse!.aggregate(next, fakeContext(aggregate, stats)), [batchOf([at(3, 13_000)])]);
    // Nothing is made of the old settings: no window without bounds, none emitted as if empty.
    expect(run.items()).toEqual([
      { key: null, start: 5000, end: 15_000, count: 1 },
      { key: null, start: 10_000, end: 20_000, count: 1 },
    ]);
    // The tumbling node had emitted [0, 10 s) and held [10 s, 20 s): one pane, whose record count is not known.
    expect(next.drops).toEqual({ window_panes_unreadable: 1 });
    const log = next.logs.find((l) => l.level === 'error');
    expect(log?.message).toMatch(/^dropped 1 saved window pane \(one key's aggregates over one window or slice; the records they folded are not known\)/);
    expect(next.logs.some((l) => l.message.startsWith('emitted'))).toBe(false);
  });

  it('session -> tumbling: drops the held sessions, counted, and no window of NaN bounds comes out', () => {
    const old = fakeContext(session, { gap: '1s', time: 'ts', key: 'device' }, { stopReason: 'replaced' });
    drive(session.fuse!.aggregate(old, fakeContext(aggregate, stats)), [batchOf([{ ...at(0, 1000), device: 'a' }, { ...at(1, 1200), device: 'b' }])]);
    const next = fakeContext(tumbling, { size: '1s', time: 'ts' }, { restored: throughJson(old.takeSnapshot()) });
    const run = drive(tumbling.fuse!.aggregate(next, fakeContext(aggregate, stats)), [batchOf([at(2, 1500)])]);
    expect(run.items()).toEqual([{ key: null, start: 1000, end: 2000, count: 1 }]);
    expect(next.drops).toEqual({ window_panes_unreadable: 2 });
  });

  it('the same operator under other settings still emits the old windows early, every record counted', () => {
    const old = fakeContext(tumbling, { size: '10s', time: 'ts' }, { stopReason: 'replaced' });
    drive(tumbling.fuse!.aggregate(old, fakeContext(aggregate, stats)), [batchOf([at(0, 1000), at(1, 2000)])]);
    const next = fakeContext(tumbling, { size: '5s', time: 'ts' }, { restored: throughJson(old.takeSnapshot()) });
    const run = drive(tumbling.fuse!.aggregate(next, fakeContext(aggregate, stats)), [batchOf([])]);
    expect(run.items()).toEqual([{ key: null, start: 0, end: 10_000, count: 2 }]);
    expect(next.drops).toEqual({});
  });
});

describe('a lone window restored from a snapshot it cannot read', () => {
  it('counts the records the dropped panes held, not the panes', () => {
    const old = fakeContext(tumbling, { size: '1s', time: 'ts', lateness: '5s' }, { stopReason: 'replaced' });
    drive(tumbling.create(old), [batchOf([at(0, 100), at(1, 200), at(2, 3000)])]);
    const saved = { ...throughJson(old.takeSnapshot()), version: 2 };
    const next = fakeContext(tumbling, { size: '1s', time: 'ts' }, { restored: saved });
    const run = drive(tumbling.create(next), [batchOf([at(3, 50)])]);
    // Two panes, [0, 1 s) and [3 s, 4 s), held three records.
    expect(next.drops).toEqual({ window_state_unreadable: 3 });
    expect(next.logs.find((l) => l.level === 'error')?.message).toBe('dropped 3 saved records: these settings cannot read the window state that holds them');
    // Nor is the unread watermark (3 s) trusted: the new record is not late.
    expect((run.items() as Result[]).map((p) => p.records!.map((r) => r.n))).toEqual([[3]]);
  });

  it('re-windows each record of a sliding snapshot of one pane per window (before slices) once', () => {
    // `window.sliding` saved every window then: a record sits in size/every panes under one arrival number.
    const held = (n: number, ts: number) => ({ records: [at(n, ts)], times: [ts], seqs: [n] });
    const saved = {
      version: 1,
      shape: 'event;slots:10000/5000;records',
      watermark: 7500,
      arrivals: 2,
      panes: [
        { key: null, start: 0, end: 10_000, state: { records: [at(0, 7000), at(1, 7500)], times: [7000, 7500], seqs: [0, 1] } },
        { key: null, start: 5000, end: 15_000, state: held(0, 7000) },
        { key: null, start: 5000, end: 15_000, state: held(1, 7500) },
      ],
    };
    const next = fakeContext(sliding, { size: '10s', every: '5s', time: 'ts' }, { restored: saved });
    const run = drive(sliding.create(next), [batchOf([])]);
    expect((run.items() as Result[]).map((p) => [p.start, p.records!.map((r) => r.n)])).toEqual([
      [0, [0, 1]],
      [5000, [0, 1]],
    ]);
    expect(next.logs.find((l) => l.message.startsWith('re-windowed'))?.fields).toMatchObject({ records: 2, late: 0 });
  });
});
