import { Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { defineOperator, z, type Batch, type Logger } from '../../runtime/api.ts';
import type { Clock } from '../../runtime/clock.ts';
import { checkYaml, startYaml, take } from '../helpers/pipeline.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A map whose `create` throws when `explode` is set: a node that cannot start. */
const fragile = defineOperator({
  name: 'test.fragile',
  summary: 'Passes records on; cannot start with `explode`.',
  doc: 'Test only.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: { out: { type: 'Any', doc: 'The same.' } },
  settings: z.object({ explode: z.boolean(), tag: z.string() }),
  create(ctx) {
    if (ctx.settings.explode) throw new Error('cannot start: exploded on purpose');
    return (input) => new Observable<Batch>((subscriber) => input.subscribe({ next: (batch) => subscriber.next({ items: (batch.items as object[]).map((r) => ({ ...r, tag: ctx.settings.tag })), ack: batch.ack }), complete: () => subscriber.complete() }));
  },
});

const fragilePipeline = (explode: boolean, tag: string, capacity = 1000) => `
streams: 1
name: rollback
nodes:
  src: { op: test.count, with: { count: 600, batch: 10, every_ms: 2 } }
  mid:
    op: test.fragile
    in: src
    with: { explode: ${explode}, tag: ${tag} }
  out: { op: test.collect, in: mid, with: { into: rollback }, capacity: ${capacity} }
`;

describe('an honest reload', () => {
  it('puts the old node back when its replacement cannot start, says so, and loses nothing', async () => {
    const engine = startYaml(fragilePipeline(false, 'a'), { extra: [fragile] });
    await sleep(100);
    const result = await engine.reload(checkYaml(fragilePipeline(true, 'b'), [fragile]));
    expect(result.status).toBe('rolled_back');
    expect(result.status === 'rolled_back' && result.cause).toMatch(/^node `mid` \(test\.yaml:6\): cannot start: exploded on purpose$/);
    await engine.done;
    const got = take('rollback') as { n: number; tag: string }[];
    expect(got.map((r) => r.n)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    expect(new Set(got.map((r) => r.tag))).toEqual(new Set(['a']));
    expect(new Map(engine.nodeStats()).get('src')!.starts).toBe(1);
  });

  it('rejects a graph naming an operator the engine does not have, changing nothing', async () => {
    const engine = startYaml(fragilePipeline(false, 'a'), { extra: [fragile] });
    const next = checkYaml(fragilePipeline(false, 'b'), [fragile]);
    next.nodes.get('mid')!.op = 'test.unknown';
    const result = await engine.reload(next);
    expect(result).toMatchObject({ status: 'rejected', cause: 'operator `test.unknown` of node `mid` is not in the registry' });
    await engine.done;
    expect(take('rollback')).toHaveLength(600);
  });

  it('updates the capacity gauge of an edge whose capacity a reload changes', async () => {
    const engine = startYaml(fragilePipeline(false, 'a', 1000), { extra: [fragile] });
    await sleep(50);
    expect([...engine.edgeStats()].find(([edge]) => edge.to === 'out')![1].capacity).toBe(1000);
    await engine.reload(checkYaml(fragilePipeline(false, 'a', 2000), [fragile]));
    expect([...engine.edgeStats()].find(([edge]) => edge.to === 'out')![1].capacity).toBe(2000);
    await engine.done;
    take('rollback');
  });
});

describe('restart backoff', () => {
  it('starts afresh after a healthy run of 30 s', async () => {
    let now = 0;
    const clock: Clock = {
      now: () => now,
      schedule(ms, fn) {
        const timer = setTimeout(fn, 0);
        return () => clearTimeout(timer);
      },
    };
    let starts = 0;
    const failing = defineOperator({
      name: 'test.failing-source',
      summary: 'Fails on its first starts.',
      doc: 'Test only.',
      inputs: {},
      outputs: { out: { type: 'Event', doc: 'Nothing.' } },
      settings: z.object({}),
      create: () => () =>
        new Observable<Batch>((subscriber) => {
          starts += 1;
          if (starts === 1) subscriber.error(new Error('first failure'));
          else if (starts === 2) subscriber.error(new Error('second failure, right away'));
          else if (starts === 3) {
            now += 31_000; // ran well for 31 s
            subscriber.error(new Error('third failure, after a healthy run'));
          } else subscriber.complete();
        }),
    });
    const errors: { failures: number }[] = [];
    const log: Logger = { debug() {}, info() {}, warn() {}, error: (fields) => void errors.push(fields as { failures: number }) };
    const engine = startYaml('streams: 1\nname: backoff\nnodes:\n  src: { op: test.failing-source }\n  out: { op: test.collect, in: src, with: { into: backoff } }\n', { extra: [failing], clock, log });
    await engine.done;
    take('backoff');
    expect(errors.map((e) => e.failures)).toEqual([1, 2, 1]);
  });
});
