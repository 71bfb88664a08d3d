/**
 * Property tests of the windows and aggregates against a naive reference
 * model: records taken one at a time in arrival order, assigned to windows
 * by brute force, grouped, and aggregated from full lists. On random,
 * out-of-order batches, for the three window kinds, with lateness, the
 * multiset of emitted results plus the records sent to `late` must equal the
 * model's; quantiles must fall within the sketch's stated error.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tumbling from '../../nodes/events/window-tumbling.ts';
import sliding from '../../nodes/events/window-sliding.ts';
import session from '../../nodes/events/window-session.ts';
import aggregate from '../../nodes/events/aggregate.ts';
import { sketchRelativeAccuracy } from '../../nodes/events/windowing/quantile-sketch.ts';
import { batchOf, drive, fakeContext, probeAck, type AckProbe } from '../helpers/fake-context.ts';
import type { Batch, OperatorDefinition } from '../../runtime/api.ts';

/** A test record: event time, key, value, and its arrival number (`id`). */
interface TestRecord {
  ts: number;
  k: string;
  v: number;
  id: number;
}

type WindowKind =
  | { kind: 'tumbling'; size: number; lateness: number }
  | { kind: 'sliding'; size: number; every: number; lateness: number }
  | { kind: 'session'; gap: number; lateness: number; maxSize: number };

/** A window result as the engine emits it without an aggregate. */
interface ReferencePane {
  key: string;
  start: number;
  end: number;
  records: TestRecord[];
}

interface ReferenceResult {
  panes: ReferencePane[];
  late: TestRecord[];
}

/** Runs the reference model; `keyOf` maps a record to its window key. */
function referenceWindows(records: readonly TestRecord[], window: WindowKind, keyOf: (r: TestRecord) => string): ReferenceResult {
  return window.kind === 'session' ? referenceSessions(records, window, keyOf) : referenceSlots(records, window, keyOf);
}

function referenceSlots(records: readonly TestRecord[], window: Exclude<WindowKind, { kind: 'session' }>, keyOf: (r: TestRecord) => string): ReferenceResult {
  const size = window.size;
  const every = window.kind === 'sliding' ? window.every : window.size;
  const panes = new Map<string, ReferencePane>();
  const late: TestRecord[] = [];
  let watermark = -Infinity;
  for (const record of records) {
    // Every window [s, s + size) with s a multiple of `every` that contains the record.
    const starts: number[] = [];
    for (let s = Math.floor(record.ts / every) * every; s > record.ts - size; s -= every) starts.push(s);
    const open = starts.filter((s) => s + size + window.lateness > watermark);
    if (open.length === 0) late.push(record);
    for (const start of open) {
      const key = keyOf(record);
      const id = `${start}|${key}`;
      const pane = panes.get(id) ?? { key, start, end: start + size, records: [] };
      pane.records.push(record);
      panes.set(id, pane);
    }
    watermark = Math.max(watermark, record.ts);
  }
  return { panes: [...panes.values()].map(ordered), late };
}

interface ReferenceSession {
  key: string;
  start: number;
  last: number;
  records: TestRecord[];
}

function referenceSessions(records: readonly TestRecord[], window: Extract<WindowKind, { kind: 'session' }>, keyOf: (r: TestRecord) => string): ReferenceResult {
  const { gap, lateness, maxSize } = window;
  let sessions: ReferenceSession[] = [];
  const late: TestRecord[] = [];
  let watermark = -Infinity;
  for (const record of records) {
    const t = record.ts;
    const key = keyOf(record);
    const isOpen = (s: ReferenceSession): boolean => s.last + gap + lateness > watermark;
    const overlapping = sessions.filter((s) => s.key === key && isOpen(s) && t < s.last + gap && s.start < t + gap);
    let target: ReferenceSession | undefined;
    if (overlapping.length > 0) {
      const first = Math.min(t, ...overlapping.map((s) => s.start));
      const last = Math.max(t, ...overlapping.map((s) => s.last));
      if (last - first + gap <= maxSize) {
        target = { key, start: first, last, records: overlapping.flatMap((s) => s.records) };
        sessions = sessions.filter((s) => !overlapping.includes(s));
        sessions.push(target);
      } else {
        const fitting = overlapping.filter((s) => Math.max(s.last, t) - Math.min(s.start, t) + gap <= maxSize);
        target = fitting.sort((a, b) => b.start - a.start)[0];
      }
    }
    if (target === undefined) {
      if (t + gap + lateness <= watermark) {
        late.push(record);
        continue;
      }
      target = { key, start: t, last: t, records: [] };
      sessions.push(target);
    }
    target.records.push(record);
    target.start = Math.min(target.start, t);
    target.last = Math.max(target.last, t);
    watermark = Math.max(watermark, t);
  }
  return { panes: sessions.map((s) => ordered({ key: s.key, start: s.start, end: s.last + gap, records: s.records })), late };
}

/** Records of a pane by time, then arrival, as the engine emits them. */
function ordered(pane: ReferencePane): ReferencePane {
  return { ...pane, records: [...pane.records].sort((a, b) => a.ts - b.ts || a.id - b.id) };
}

/** The exact value at rank ⌊q·(n−1)⌋, the rank the sketch estimates. */
function exactQuantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))];
}

/** Every aggregate function, as settings of `aggregate`, over the test records. */
const allAggregates = {
  n: 'count()',
  total: 'sum(v)',
  doubled: 'sum(v * 2)',
  low: 'min(v)',
  high: 'max(v)',
  mean: 'avg(v)',
  median: 'quantile(v, 0.5)',
  p90: 'quantile(v, 0.9)',
  kinds: 'distinct(v)',
  opening: 'first(id)',
  closing: 'last(id)',
} as const;

/** The aggregates that take the branch-free numeric folder. */
const numericAggregates = { n: 'count()', total: 'sum(v)', doubled: 'sum(v * 2)', low: 'min(v)', high: 'max(v)', mean: 'avg(v)' } as const;

/** The quantile fields of `allAggregates`, compared within the sketch's error. */
const quantileFields: Record<string, number> = { median: 0.5, p90: 0.9 };

/** The reference aggregates of one pane, quantiles exact. */
function referenceAggregates(pane: ReferencePane): Record<string, unknown> {
  const values = pane.records.map((r) => r.v);
  const sum = values.reduce((a, b) => a + b, 0);
  return {
    key: pane.key,
    start: pane.start,
    end: pane.end,
    n: values.length,
    total: sum,
    doubled: values.reduce((a, b) => a + b * 2, 0),
    low: Math.min(...values),
    high: Math.max(...values),
    mean: sum / values.length,
    median: exactQuantile(values, 0.5),
    p90: exactQuantile(values, 0.9),
    kinds: new Set(values).size,
    opening: pane.records[0].id,
    closing: pane.records[pane.records.length - 1].id,
  };
}

const kinds = ['tumbling', 'sliding', 'session'] as const;

const definitions: Record<WindowKind['kind'], OperatorDefinition> = { tumbling, sliding, session };

const windowArbitraries: Record<WindowKind['kind'], fc.Arbitrary<WindowKind>> = {
  tumbling: fc.record({ kind: fc.constant('tumbling' as const), size: fc.constantFrom(100, 250, 1000), lateness: fc.constantFrom(0, 50, 300) }),
  sliding: fc.record({ kind: fc.constant('sliding' as const), size: fc.constantFrom(200, 600), every: fc.constantFrom(100, 150, 200), lateness: fc.constantFrom(0, 50, 300) }),
  session: fc.record({ kind: fc.constant('session' as const), gap: fc.constantFrom(50, 200), lateness: fc.constantFrom(0, 50, 300), maxSize: fc.constantFrom(Infinity, 250, 600) }),
};

/** Key settings: a bare field (read directly) and a CEL expression. */
const keyChoices = [
  { setting: 'k', keyOf: (r: TestRecord) => r.k },
  { setting: '"g-" + k', keyOf: (r: TestRecord) => `g-${r.k}` },
];

/**
 * Batches of records whose times drift forward by `step` per record with a
 * random jitter, so that they arrive out of order and some arrive late.
 */
const batchesArbitrary = fc
  .record({
    step: fc.constantFrom(0, 5, 20, 60),
    batches: fc.array(fc.array(fc.record({ jitter: fc.integer({ min: -400, max: 400 }), k: fc.constantFrom('a', 'b', 'c'), v: fc.integer({ min: -40, max: 40 }) }), { maxLength: 8 }), { maxLength: 12 }),
  })
  .map(({ step, batches }) => {
    let id = 0;
    return batches.map((batch) =>
      batch.map(({ jitter, k, v }): TestRecord => {
        const record = { ts: Math.max(0, id * step + jitter + 400), k, v, id };
        id += 1;
        return record;
      }),
    );
  });

function settingsOf(window: WindowKind, key: string): Record<string, unknown> {
  const base = { time: 'ts', key, lateness: `${window.lateness}ms` };
  switch (window.kind) {
    case 'tumbling':
      return { ...base, size: `${window.size}ms` };
    case 'sliding':
      return { ...base, size: `${window.size}ms`, every: `${window.every}ms` };
    case 'session':
      return { ...base, gap: `${window.gap}ms`, ...(Number.isFinite(window.maxSize) ? { max_size: `${window.maxSize}ms` } : {}) };
  }
}

function withoutQuantiles(item: Record<string, unknown>): string {
  const copy = { ...item };
  for (const field of Object.keys(quantileFields)) delete copy[field];
  return JSON.stringify(copy);
}

function multiset(items: readonly unknown[], show: (item: any) => string): string[] {
  return items.map(show).sort();
}

function paneId(item: { key: unknown; start: unknown; end: unknown }): string {
  return `${String(item.key)}|${String(item.start)}|${String(item.end)}`;
}

/** Checks aggregate results against the reference: exact but for quantiles, which must be within the sketch's error. */
function expectReferenceAggregates(actual: Record<string, unknown>[], expected: ReferenceResult, fields: readonly string[]): void {
  const wanted = expected.panes.map((pane) => {
    const all = referenceAggregates(pane);
    return Object.fromEntries(['key', 'start', 'end', ...fields].map((field) => [field, all[field]]));
  });
  expect(multiset(actual, withoutQuantiles)).toEqual(multiset(wanted, withoutQuantiles));
  const byPane = new Map(wanted.map((w) => [paneId(w as never), w]));
  for (const item of actual) {
    const reference = byPane.get(paneId(item as never))!;
    for (const field of Object.keys(quantileFields).filter((f) => fields.includes(f))) {
      const exact = reference[field] as number;
      expect(Math.abs((item[field] as number) - exact)).toBeLessThanOrEqual(sketchRelativeAccuracy * Math.abs(exact) + 1e-9);
    }
  }
}

interface Scenario {
  window: WindowKind;
  keyChoice: number;
  /** Only count, sum, min, max and avg (the numeric folder), or every aggregate function. */
  numericOnly: boolean;
  batches: TestRecord[][];
}

function scenarioArbitrary(kind: WindowKind['kind']): fc.Arbitrary<Scenario> {
  return fc.record({ window: windowArbitraries[kind], keyChoice: fc.constantFrom(0, 1), numericOnly: fc.boolean(), batches: batchesArbitrary });
}

function aggregatesOf(scenario: Scenario): Record<string, string> {
  return scenario.numericOnly ? numericAggregates : allAggregates;
}

function reference(scenario: Scenario): ReferenceResult {
  return referenceWindows(scenario.batches.flat(), scenario.window, keyChoices[scenario.keyChoice].keyOf);
}

function contexts(scenario: Scenario) {
  const definition = definitions[scenario.window.kind];
  const windowCtx = fakeContext(definition, settingsOf(scenario.window, keyChoices[scenario.keyChoice].setting));
  const aggregateCtx = fakeContext(aggregate, aggregatesOf(scenario));
  return { definition, windowCtx, aggregateCtx, fields: Object.keys(aggregatesOf(scenario)) };
}

const runs = { numRuns: 150 };

for (const kind of kinds) {
  describe(`window.${kind} against the reference model`, () => {
    it('fused with aggregate, emits exactly the reference aggregates of every window, and the reference late records', () => {
      fc.assert(
        fc.property(scenarioArbitrary(kind), (scenario) => {
          const expected = reference(scenario);
          const { definition, windowCtx, aggregateCtx, fields } = contexts(scenario);
          const run = drive(definition.fuse!.aggregate(windowCtx, aggregateCtx), scenario.batches.map((items) => batchOf(items)));
          expect(run.completed).toBe(true);
          expect(windowCtx.failures).toEqual([]);
          expect(aggregateCtx.failures).toEqual([]);
          expectReferenceAggregates(run.items() as Record<string, unknown>[], expected, fields);
          expect(multiset(windowCtx.portItems('late'), (r: TestRecord) => String(r.id))).toEqual(multiset(expected.late, (r) => String(r.id)));
        }),
        runs,
      );
    });

    it('alone, emits panes holding exactly the reference records in time order', () => {
      fc.assert(
        fc.property(scenarioArbitrary(kind), (scenario) => {
          const expected = reference(scenario);
          const { definition, windowCtx } = contexts(scenario);
          const run = drive(definition.create(windowCtx), scenario.batches.map((items) => batchOf(items)));
          expect(multiset(run.items(), JSON.stringify)).toEqual(multiset(expected.panes, JSON.stringify));
          expect(multiset(windowCtx.portItems('late'), (r: TestRecord) => String(r.id))).toEqual(multiset(expected.late, (r) => String(r.id)));
        }),
        runs,
      );
    });

    it('followed by an unfused aggregate, emits the same results as the reference', () => {
      fc.assert(
        fc.property(scenarioArbitrary(kind), (scenario) => {
          const expected = reference(scenario);
          const { definition, windowCtx, aggregateCtx, fields } = contexts(scenario);
          const panes = drive(definition.create(windowCtx), scenario.batches.map((items) => batchOf(items)));
          const results = drive(aggregate.create(aggregateCtx), panes.batches);
          expect(results.completed).toBe(true);
          expectReferenceAggregates(results.items() as Record<string, unknown>[], expected, fields);
        }),
        runs,
      );
    });

    it('replaced mid-stream, resumes from its snapshot with the same results as an uninterrupted run', () => {
      fc.assert(
        fc.property(scenarioArbitrary(kind), fc.nat(), fc.boolean(), (scenario, cut, fused) => {
          const expected = reference(scenario);
          const split = scenario.batches.length === 0 ? 0 : cut % (scenario.batches.length + 1);
          const { definition, windowCtx: first, aggregateCtx, fields } = contexts(scenario);
          first.setStopReason('replaced');
          const make = (ctx: typeof first) => (fused ? definition.fuse!.aggregate(ctx, aggregateCtx) : definition.create(ctx));
          const before = drive(make(first), scenario.batches.slice(0, split).map((items) => batchOf(items)));
          const saved = JSON.parse(JSON.stringify(first.takeSnapshot()));
          const second = fakeContext(definition, settingsOf(scenario.window, keyChoices[scenario.keyChoice].setting), { restored: saved });
          const after = drive(make(second), scenario.batches.slice(split).map((items) => batchOf(items)));
          const items = [...before.items(), ...after.items()] as Record<string, unknown>[];
          if (fused) expectReferenceAggregates(items, expected, fields);
          else expect(multiset(items, JSON.stringify)).toEqual(multiset(expected.panes, JSON.stringify));
          const late = [...first.portItems('late'), ...second.portItems('late')];
          expect(multiset(late, (r: TestRecord) => String(r.id))).toEqual(multiset(expected.late, (r) => String(r.id)));
        }),
        runs,
      );
    });

    it('releases each source batch exactly once, only after the results and late records holding it are acknowledged', () => {
      fc.assert(
        fc.property(scenarioArbitrary(kind), fc.boolean(), (scenario, fused) => {
          const expected = reference(scenario);
          const lateIds = new Set(expected.late.map((r) => r.id));
          const { definition, windowCtx, aggregateCtx, fields } = contexts(scenario);
          const probes: AckProbe[] = scenario.batches.map(() => probeAck());
          const fn = fused ? definition.fuse!.aggregate(windowCtx, aggregateCtx) : definition.create(windowCtx);
          const run = drive(fn, scenario.batches.map((items, i) => batchOf(items, probes[i].ack)));
          scenario.batches.forEach((items, i) => {
            // An empty batch has nothing to wait for; any other waits for its results.
            expect(probes[i].done).toBe(items.length === 0 ? 1 : 0);
            if (items.some((r) => !lateIds.has(r.id))) expect(probes[i].settled).toBe(1);
          });
          run.releaseAll();
          scenario.batches.forEach((items, i) => {
            const hasLate = items.some((r) => lateIds.has(r.id));
            expect(probes[i].done).toBe(hasLate ? 0 : 1);
          });
          for (const batch of windowCtx.ports.get('late') ?? []) (batch as Batch).ack.release();
          for (const probe of probes) expect(probe.done).toBe(1);
        }),
        runs,
      );
    });
  });
}
