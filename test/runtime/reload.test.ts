import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Observable, type Subscriber } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { defineOperator, z, type Batch } from '../../runtime/api.ts';
import { checkYaml, collected, startYaml, take, testRegistry } from '../helpers/pipeline.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const numbered = (tag: string, extra = '') => `
streams: 1
name: reload
nodes:
  src: { op: test.count, with: { count: 1500, batch: 5, every_ms: 3 } }
  tag:
    op: map
    in: src
    with: { set: { tag: ${JSON.stringify(tag)} } }
  out: { op: test.collect, in: tag, with: { into: reload } }
${extra}`;

describe('hot reload', () => {
  it('replaces only the changed node: every record arrives exactly once and the source never restarts', async () => {
    const engine = startYaml(numbered('"a"'));
    const results = [];
    for (const [i, tag] of ['"b"', '"c" +', '"d"'].entries()) {
      await sleep(150 + i * 20);
      const next = checkPipeline({ file: 'test.yaml', text: numbered(tag), registry: testRegistry(), env: {} });
      if (!next.graph) {
        // An invalid edit changes nothing: the running graph goes on.
        expect(next.diagnostics.some((d) => d.code === 'bad_expression')).toBe(true);
        results.push('rejected');
        continue;
      }
      const result = await engine.reload(next.graph);
      results.push(result.status);
      expect(result.diff).toMatchObject({ replaced: ['tag'], added: [], removed: [] });
      expect(result.diff.kept.sort()).toEqual(['out', 'src']);
    }
    await engine.done;
    expect(results).toEqual(['applied', 'rejected', 'applied']);
    const got = take('reload') as { n: number; tag: string }[];
    expect(got.map((r) => r.n)).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    const tags = got.map((r) => r.tag);
    // Tags change once per applied reload, in order, never back.
    expect([...new Set(tags)]).toEqual(['a', 'b', 'd']);
    const stats = new Map(engine.nodeStats());
    expect(stats.get('src')!.starts).toBe(1);
    expect(stats.get('out')!.starts).toBe(1);
    expect(stats.get('tag')!.starts).toBe(3);
  });

  it('treats layout as no change: comments, spacing and key order restart nothing', async () => {
    const engine = startYaml(numbered('"a"'));
    await sleep(50);
    const relaid = `# a comment\n${numbered('"a"').replace('tag:\n    op: map\n    in: src', 'tag:\n    in: src\n    op: map')}`;
    const result = await engine.reload(checkYaml(relaid));
    expect(result.diff).toMatchObject({ replaced: [], added: [], removed: [] });
    await engine.drain();
    take('reload');
    expect(new Map(engine.nodeStats()).get('tag')!.starts).toBe(1);
  });

  it('adds and removes nodes while the rest runs', async () => {
    const engine = startYaml(numbered('"a"'));
    await sleep(100);
    const withTap = numbered('"a"', `  tap: { op: test.collect, in: tag, with: { into: reload-tap } }\n`);
    expect((await engine.reload(checkYaml(withTap))).diff).toMatchObject({ added: ['tap'], replaced: [], removed: [] });
    await sleep(100);
    expect((await engine.reload(checkYaml(numbered('"a"')))).diff).toMatchObject({ removed: ['tap'], added: [], replaced: [] });
    await engine.done;
    const main = (take('reload') as { n: number }[]).map((r) => r.n);
    const tap = (take('reload-tap') as { n: number }[]).map((r) => r.n);
    expect(main).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    expect(tap.length).toBeGreaterThan(0);
    expect(tap.length).toBeLessThan(1500);
    // The tap saw a contiguous run of records while it existed.
    expect(tap).toEqual(Array.from({ length: tap.length }, (_, i) => tap[0] + i));
  });
});

/** A source the test feeds by hand (`feed`), counting the batches every sink acknowledged. */
const fed = { subscriber: undefined as Subscriber<Batch> | undefined, newAck: undefined as (() => Batch['ack']) | undefined, next: 0, acked: 0 };
const handSource = defineOperator({
  name: 'test.hand',
  summary: 'Test source: records the test pushes.',
  doc: 'Emits the batches `feed` makes, numbered; completes when told or stopped.',
  inputs: {},
  outputs: { out: { type: 'Event<{n: number}>', doc: 'Numbered records.' } },
  settings: z.object({}),
  create: (ctx) => () =>
    new Observable<Batch>((subscriber) => {
      fed.subscriber = subscriber;
      fed.newAck = () => ctx.newAck(() => fed.acked++);
      ctx.signal.addEventListener('abort', () => subscriber.complete());
    }),
});
const feed = (batches: number, size = 5): void => {
  for (let b = 0; b < batches; b++) {
    const items = Array.from({ length: size }, () => ({ n: fed.next++ }));
    fed.subscriber!.next({ items, ack: fed.newAck!() });
  }
};
const waitUntil = async (what: string, done: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !done(); i++) await sleep(5);
  expect(done(), what).toBe(true);
};

/**
 * Sinks that take batches and never write nor acknowledge them, and ignore
 * the end of their input, so a reload forces them at its deadline: like a
 * `kafka.produce` whose brokers are away (the paced one takes each batch in
 * at once, holding several, as its write pipeline gathers them).
 */
const holdSink = defineOperator({
  name: 'test.hold',
  summary: 'Test sink: holds every batch.',
  doc: 'Takes batches and never acknowledges them; never completes.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({}),
  create: () => (input) => new Observable<Batch>(() => input.subscribe({ next: () => undefined, complete: () => undefined })),
});
const pacedHoldSink = defineOperator({
  name: 'test.hold-paced',
  summary: 'Test sink: takes every batch in and holds it.',
  doc: 'Takes batches in at once (`batchDone`) and never acknowledges them; never completes.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({}),
  paced: true,
  create: (ctx) => (input) => new Observable<Batch>(() => input.subscribe({ next: () => ctx.batchDone(), complete: () => undefined })),
});

describe('hot reload that rewires a sink', () => {
  it('inserts a node in front of the sink: records waiting on the old edge go through it, none lost or repeated', async () => {
    Object.assign(fed, { subscriber: undefined, newAck: undefined, next: 0, acked: 0 });
    const direct = `
streams: 1
name: insert
nodes:
  src: { op: test.hand }
  out: { op: test.collect, in: src, with: { into: reload-insert, delay_ms: 20 } }
`;
    const inserted = `
streams: 1
name: insert
nodes:
  src: { op: test.hand }
  tag: { op: map, in: src, with: { set: { tag: '"new"' } } }
  out: { op: test.collect, in: tag, with: { into: reload-insert, delay_ms: 20 } }
`;
    const engine = startYaml(direct, { extra: [handSource] });
    await waitUntil('the source started', () => fed.subscriber !== undefined);
    // The slow sink takes the first batch; the other nine wait in the edge src -> out.
    feed(10);
    const edge = () => new Map([...engine.edgeStats()].map(([e, s]) => [`${e.from}->${e.to}`, s]));
    expect(edge().get('src.out->out')!.depth).toBe(45);
    const result = await engine.reload(checkYaml(inserted, [handSource]));
    expect(result).toMatchObject({ status: 'applied', diff: { added: ['tag'], replaced: ['out'], removed: [] } });
    feed(10);
    fed.subscriber!.complete();
    await engine.done;
    const got = take('reload-insert') as { n: number; tag?: string }[];
    expect(got.map((r) => r.n)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // What the old sink held it wrote as it was; everything after went through the new node.
    const firstTagged = got.findIndex((r) => r.tag === 'new');
    expect(firstTagged).toBe(5);
    expect(got.slice(firstTagged).every((r) => r.tag === 'new')).toBe(true);
    // Every batch the source made was acknowledged once.
    expect(fed.acked).toBe(20);
  });

  it('with fan-out: the waiting records go only to the new edge, not again to a consumer that had them', async () => {
    Object.assign(fed, { subscriber: undefined, newAck: undefined, next: 0, acked: 0 });
    const yaml = (outInput: string, extra: string) => `
streams: 1
name: fan-out
nodes:
  src: { op: test.hand }
  side: { op: test.collect, in: src, with: { into: reload-side } }
${extra}  out: { op: test.collect, in: ${outInput}, with: { into: reload-fan, delay_ms: 20 } }
`;
    const engine = startYaml(yaml('src', ''), { extra: [handSource] });
    await waitUntil('the source started', () => fed.subscriber !== undefined);
    feed(10);
    const result = await engine.reload(checkYaml(yaml('tag', `  tag: { op: map, in: src, with: { set: { tag: '"new"' } } }\n`), [handSource]));
    expect(result).toMatchObject({ status: 'applied', diff: { added: ['tag'], replaced: ['out'] } });
    feed(10);
    fed.subscriber!.complete();
    await engine.done;
    const every = Array.from({ length: 100 }, (_, i) => i);
    expect((take('reload-side') as { n: number }[]).map((r) => r.n)).toEqual(every);
    const out = take('reload-fan') as { n: number; tag?: string }[];
    expect(out.map((r) => r.n)).toEqual(every);
    expect(out.findIndex((r) => r.tag === 'new')).toBe(5);
    expect(fed.acked).toBe(20);
  });

  it('a sink forced at the reload deadline: the batch it held goes on too (at least once)', async () => {
    Object.assign(fed, { subscriber: undefined, newAck: undefined, next: 0, acked: 0 });
    const yaml = (slow: number, body: string) => `
streams: 1
name: forced
nodes:
  src: { op: test.hand }
${body}  out: { op: test.collect, in: ${body ? 'tag' : 'src'}, with: { into: reload-forced, delay_ms: ${slow} } }
`;
    const engine = startYaml(yaml(300, ''), { extra: [handSource] });
    await waitUntil('the source started', () => fed.subscriber !== undefined);
    feed(4);
    const result = await engine.reload(checkYaml(yaml(0, `  tag: { op: map, in: src, with: { set: { tag: '"new"' } } }\n`), [handSource]), { deadlineMs: 30 });
    expect(result.status).toBe('applied');
    fed.subscriber!.complete();
    await engine.done;
    // The forced sink's late write of its batch may still land: wait for it, bounded.
    await waitUntil('the forced write', () => (collected.get('reload-forced') ?? []).length >= 25);
    const got = take('reload-forced') as { n: number; tag?: string }[];
    const tagged = got.filter((r) => r.tag === 'new').map((r) => r.n);
    expect(tagged).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(got.filter((r) => r.tag === undefined).map((r) => r.n)).toEqual([0, 1, 2, 3, 4]);
    expect(fed.acked).toBe(4);
  });

  it.each([
    ['a sink', holdSink],
    ['a paced sink (as kafka.produce)', pacedHoldSink],
  ])('%s forced at the reload deadline on a kept edge: its successor writes what it held, and the source sees each batch acknowledged once', async (_what, holding) => {
    Object.assign(fed, { subscriber: undefined, newAck: undefined, next: 0, acked: 0 });
    const yaml = (sink: string) => `
streams: 1
name: forced-kept
nodes:
  src: { op: test.hand }
  out: { op: ${sink}, in: src${sink === 'test.collect' ? ', with: { into: reload-forced-kept }' : ''} }
`;
    const engine = startYaml(yaml(holding.name), { extra: [handSource, holdSink, pacedHoldSink] });
    await waitUntil('the source started', () => fed.subscriber !== undefined);
    // The holding sink takes batches and never writes them; the edge src -> out stays through the reload.
    feed(4);
    const result = await engine.reload(checkYaml(yaml('test.collect'), [handSource, holdSink, pacedHoldSink]), { deadlineMs: 30 });
    expect(result).toMatchObject({ status: 'applied', diff: { replaced: ['out'], kept: ['src'] } });
    feed(4);
    fed.subscriber!.complete();
    // Before the fix the run never ended: what the forced sink held stayed unacknowledged in the kept channel.
    const ended = await Promise.race([engine.done.then(() => true), sleep(2000).then(() => false)]);
    expect(ended, 'the run ended').toBe(true);
    const got = (take('reload-forced-kept') as { n: number }[]).map((r) => r.n);
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(fed.acked).toBe(8);
  });

  it('a paced sink forced at the reload deadline as it is removed: what it held is dropped and counted, so its source is not held back', async () => {
    Object.assign(fed, { subscriber: undefined, newAck: undefined, next: 0, acked: 0 });
    const yaml = (sink: string) => `
streams: 1
name: forced-removed
nodes:
  src: { op: test.hand }
${sink}`;
    const extra = [handSource, holdSink, pacedHoldSink];
    const engine = startYaml(yaml('  out: { op: test.hold-paced, in: src }\n'), { extra });
    await waitUntil('the source started', () => fed.subscriber !== undefined);
    feed(4);
    const result = await engine.reload(checkYaml(yaml('  other: { op: test.collect, in: src, with: { into: reload-forced-removed } }\n'), extra), { deadlineMs: 30 });
    expect(result).toMatchObject({ status: 'applied', diff: { removed: ['out'], added: ['other'] } });
    // Released as dropped: a Kafka source upstream may commit past them instead of stopping there for good.
    expect(fed.acked).toBe(4);
    feed(4);
    fed.subscriber!.complete();
    await engine.done;
    expect((take('reload-forced-removed') as { n: number }[]).map((r) => r.n)).toEqual(Array.from({ length: 20 }, (_, i) => 20 + i));
    expect(fed.acked).toBe(8);
  });

  it('removes a producer: what it sent and the sink had not taken still reaches the sink', async () => {
    Object.assign(fed, { subscriber: undefined, newAck: undefined, next: 0, acked: 0 });
    const two = (inputs: string, src: string) => `
streams: 1
name: remove-producer
nodes:
${src}  other: { op: test.count, with: { count: 20, batch: 5 } }
  out: { op: test.collect, in: ${inputs}, with: { into: reload-remove, delay_ms: 20 } }
`;
    const engine = startYaml(two('[src, other]', '  src: { op: test.hand }\n'), { extra: [handSource] });
    await waitUntil('the source started', () => fed.subscriber !== undefined);
    feed(10);
    const result = await engine.reload(checkYaml(two('other', ''), [handSource]));
    expect(result).toMatchObject({ status: 'applied', diff: { removed: ['src'], replaced: ['out'] } });
    await engine.done;
    const got = take('reload-remove') as { n: number }[];
    // Fifty from the removed source, twenty from the other, each once.
    expect(got.map((r) => r.n).sort((a, b) => a - b)).toEqual([...Array.from({ length: 20 }, (_, i) => [i, i]).flat(), ...Array.from({ length: 30 }, (_, i) => 20 + i)]);
    expect(fed.acked).toBe(10);
  });
});

describe('hot reload of stateful nodes', () => {
  it('carries open windows into the replacement: no window is split or lost', async () => {
    const windowed = (lateness: string) => `
streams: 1
name: windows
nodes:
  src: { op: test.count, with: { count: 3000, batch: 20, every_ms: 2 } }
  stamp: { op: map, in: src, with: { set: { ts: "n * 10.0" } } }
  per-second: { op: window.tumbling, in: stamp, with: { size: 1s, time: ts, lateness: ${lateness} } }
  stats: { op: aggregate, in: per-second, with: { count: count(), first: min(n), last: max(n) } }
  out: { op: test.collect, in: stats, with: { into: reload-windows } }
`;
    const engine = startYaml(windowed('0s'));
    await sleep(150);
    const result = await engine.reload(checkYaml(windowed('1s')));
    // The window and its aggregate run fused, so they are replaced together.
    expect(result.diff.replaced).toEqual(['per-second', 'stats']);
    await engine.done;
    const rows = take('reload-windows') as { start: number; count: number; first: number; last: number }[];
    // 3000 records, 100 per second of event time: 30 windows of exactly 100, each once.
    expect(rows).toHaveLength(30);
    expect(rows.map((r) => r.start)).toEqual(Array.from({ length: 30 }, (_, i) => i * 1000));
    for (const row of rows) expect([row.count, row.last - row.first]).toEqual([100, 99]);
    expect(new Map(engine.nodeStats()).get('src')!.starts).toBe(1);
  });
});

describe('streams run --watch', () => {
  it('reloads the file as it is edited, rejects an invalid edit, and loses nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streams-watch-'));
    const file = join(dir, 'watch.yaml');
    const output = join(dir, 'out.ndjson');
    const yaml = (v: string) => `streams: 1
name: watch
nodes:
  src: { op: generate, with: { rate: 500, fields: { n: i } } }
  tag:
    op: map
    in: src
    with: { set: { v: ${JSON.stringify(v)} } }
  out: { op: file.write, in: tag, with: { path: ${JSON.stringify(output)} } }
`;
    writeFileSync(file, yaml('1'));
    const child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--watch'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const waitFor = async (pattern: RegExp, count = 1): Promise<void> => {
      for (let i = 0; i < 200 && (stderr.match(new RegExp(pattern, 'g')) ?? []).length < count; i++) await sleep(50);
      expect((stderr.match(new RegExp(pattern, 'g')) ?? []).length).toBeGreaterThanOrEqual(count);
    };
    await waitFor(/"msg":"running"/);
    await sleep(300);
    writeFileSync(file, yaml('2'));
    await waitFor(/reload applied/, 1);
    await sleep(300);
    writeFileSync(file, yaml('3 +'));
    await waitFor(/reload rejected/, 1);
    expect(stderr).toMatch(/watch\.yaml:8:\d+: error: setting `set\.v` of `map`: bad expression/);
    await sleep(300);
    writeFileSync(file, yaml('4'));
    await waitFor(/reload applied/, 2);
    await sleep(300);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    const rows = readFileSync(output, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { n: number; v: number });
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: rows.length }, (_, i) => i));
    expect([...new Set(rows.map((r) => r.v))]).toEqual([1, 2, 4]);
  }, 60_000);

  it('loads the operators an edit adds before checking it (the first version loaded only its own)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streams-watch-'));
    const file = join(dir, 'watch.yaml');
    const output = join(dir, 'out.ndjson');
    const head = `streams: 1\nname: watch\nnodes:\n  src: { op: generate, with: { rate: 500, fields: { n: i } } }\n`;
    writeFileSync(file, `${head}  out: { op: file.write, in: src, with: { path: ${JSON.stringify(output)} } }\n`);
    const child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--watch'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const rows = (): { n: number; v?: number }[] => (existsSync(output) ? readFileSync(output, 'utf8').split('\n').filter((line) => line.endsWith('}')).map((line) => JSON.parse(line) as { n: number; v?: number }) : []);
    const waitUntil = async (what: string, done: () => boolean): Promise<void> => {
      for (let i = 0; i < 400 && !done(); i++) await sleep(25);
      expect(done(), `${what}; stderr: ${stderr}`).toBe(true);
    };
    await waitUntil('rows before the edit', () => rows().length > 0);
    writeFileSync(file, `${head}  tag: { op: map, in: src, with: { set: { v: "2" } } }\n  out: { op: file.write, in: tag, with: { path: ${JSON.stringify(output)} } }\n`);
    await waitUntil('reload applied', () => stderr.includes('reload applied'));
    await waitUntil('rows through `map`', () => rows().some((row) => row.v === 2));
    child.kill('SIGINT');
    expect(await new Promise<number | null>((resolve) => child.on('exit', resolve))).toBe(0);
    expect(stderr).not.toContain('unknown operator');
    // Putting `tag` in front of the sink loses nothing: records waiting for the old sink went through `tag`.
    const written = rows();
    expect(written.map((r) => r.n)).toEqual(Array.from({ length: written.length }, (_, i) => i));
    expect([...new Set(written.map((r) => r.v))]).toEqual([undefined, 2]);
  }, 60_000);
});

describe('hot reload of a window and aggregate whose fusion changes', () => {
  const fusable = (extra: string) => `
streams: 1
name: fusion
nodes:
  src: { op: test.count, with: { count: 3000, batch: 20, every_ms: 2 } }
  stamp: { op: map, in: src, with: { set: { ts: "n * 10.0" } } }
  per-second: { op: window.tumbling, in: stamp, with: { size: 1s, time: ts } }
  stats: { op: aggregate, in: per-second, with: { count: count(), first: min(n), last: max(n) } }
  out: { op: test.collect, in: stats, with: { into: fusion-stats } }
${extra}`;
  const raw = `  raw: { op: test.collect, in: per-second, with: { into: fusion-raw } }\n`;

  /** Waits (bounded) until the aggregate has emitted `rows` results. */
  async function resultsReach(rows: number): Promise<void> {
    for (let waited = 0; (collected.get('fusion-stats')?.length ?? 0) < rows; waited += 5) {
      if (waited > 5000) throw new Error(`fewer than ${rows} results after 5 s`);
      await sleep(5);
    }
  }

  /** Every n from 0 to 2999 counted once across the results, windows split by the reload included. */
  function expectEachRecordOnce(rows: { count: number; first: number; last: number }[]): void {
    const ranges = [...rows].sort((a, b) => a.first - b.first);
    let next = 0;
    for (const row of ranges) {
      expect([row.first, row.count]).toEqual([next, row.last - row.first + 1]);
      next = row.last + 1;
    }
    expect(next).toBe(3000);
  }

  it('unfuses the pair when a second consumer reads the window: panes reach it, results stay exact, the run ends', async () => {
    const engine = startYaml(fusable(''));
    await resultsReach(3);
    const result = await engine.reload(checkYaml(fusable(raw)));
    expect(result.status).toBe('applied');
    expect(result.diff).toMatchObject({ added: ['raw'], removed: [] });
    expect(result.diff.replaced.sort()).toEqual(['per-second', 'stats']);
    expect(result.diff.kept.sort()).toEqual(['out', 'src', 'stamp']);
    expect(result.status === 'applied' && result.warnings).toEqual([expect.stringContaining('`per-second` and `stats` no longer run fused')]);
    expect(engine.runners.get('per-second')!.absorbed).toBeUndefined();
    await engine.done;
    expectEachRecordOnce(take('fusion-stats') as { count: number; first: number; last: number }[]);
    // The new consumer gets panes (records), never aggregate results, and each record once.
    const panes = take('fusion-raw') as { start: number; records: { n: number }[] }[];
    expect(panes.length).toBeGreaterThan(0);
    const seen = panes.flatMap((p) => p.records.map((r) => r.n)).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => 3000 - seen.length + i));
    expect(new Map(engine.nodeStats()).get('src')!.starts).toBe(1);
  });

  it('fuses the pair when the window loses its other consumer: the open panes are aggregated once, the run ends', async () => {
    const engine = startYaml(fusable(raw));
    await resultsReach(3);
    const result = await engine.reload(checkYaml(fusable('')));
    expect(result.status).toBe('applied');
    expect(result.diff).toMatchObject({ added: [], removed: ['raw'] });
    expect(result.diff.replaced.sort()).toEqual(['per-second', 'stats']);
    expect(result.status === 'applied' && result.warnings).toEqual([expect.stringContaining('`per-second` and `stats` now run fused')]);
    expect(engine.runners.get('per-second')!.absorbed?.name).toBe('stats');
    await engine.done;
    expectEachRecordOnce(take('fusion-stats') as { count: number; first: number; last: number }[]);
    take('fusion-raw');
    // The edge between them is fused now: no channel.
    const edge = [...engine.edgeStats()].find(([e]) => e.from === 'per-second.out' && e.to === 'stats')!;
    expect(edge[1].fused).toBe(true);
    expect(new Map(engine.nodeStats()).get('src')!.starts).toBe(1);
  });

  it('runs the window alone when its fused aggregate is removed: every record reaches a result or a pane once', async () => {
    const engine = startYaml(fusable(''));
    await resultsReach(3);
    const alone = fusable('').replace(/ {2}stats:.*\n {2}out:.*\n/, '') + raw;
    const result = await engine.reload(checkYaml(alone));
    expect(result.diff).toMatchObject({ replaced: ['per-second'], added: ['raw'] });
    expect(result.diff.removed.sort()).toEqual(['out', 'stats']);
    await engine.done;
    const rows = take('fusion-stats') as { count: number; first: number; last: number }[];
    const panes = take('fusion-raw') as { records: { n: number }[] }[];
    const seen = [...rows.flatMap((r) => Array.from({ length: r.count }, (_, i) => r.first + i)), ...panes.flatMap((p) => p.records.map((r) => r.n))];
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  it('emits the open windows when the fused aggregate is edited: its running results cannot be carried, nothing is lost', async () => {
    const engine = startYaml(fusable(''));
    await resultsReach(3);
    const edited = fusable('').replace('last: max(n) }', 'last: max(n), total: sum(n) }');
    const result = await engine.reload(checkYaml(edited));
    expect(result.status).toBe('applied');
    expect(result.diff.replaced.sort()).toEqual(['per-second', 'stats']);
    expect(result.status === 'applied' && result.warnings).toEqual([expect.stringContaining('`stats` changed while fused into `per-second`')]);
    expect(engine.runners.get('per-second')!.absorbed?.name).toBe('stats');
    await engine.done;
    expectEachRecordOnce(take('fusion-stats') as { count: number; first: number; last: number }[]);
  });

  it('drains a graph reloaded into and out of fusion without hanging', async () => {
    const engine = startYaml(fusable(''));
    await resultsReach(2);
    await engine.reload(checkYaml(fusable(raw)));
    await resultsReach(6);
    await engine.reload(checkYaml(fusable('')));
    await engine.drain({ deadlineMs: 5000 });
    const rows = take('fusion-stats') as { count: number; first: number; last: number }[];
    take('fusion-raw');
    // Drained early: the records counted are a prefix 0..k, each once.
    const ranges = [...rows].sort((a, b) => a.first - b.first);
    let next = 0;
    for (const row of ranges) {
      expect([row.first, row.count]).toEqual([next, row.last - row.first + 1]);
      next = row.last + 1;
    }
    expect(next).toBeGreaterThan(0);
  });
});
