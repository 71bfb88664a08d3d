/**
 * Keyed state per partition (docs/keyed-state.md), on one engine with the
 * in-memory and file stores: a window with `parallelism` keeps one state per
 * input partition, checkpoints it with the partition's position, releases
 * its source's acks only once that is stored, drops a partition that moved,
 * and a new member resumes from the stored state, skipping what it holds.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { defineOperator, partitionEvents, z, type Batch } from '../../runtime/api.ts';
import { FileStateStore, MemoryStateStore, type StateStore } from '../../runtime/state/store.ts';
import { collected, startYaml, take } from '../helpers/pipeline.ts';
import type { Engine } from '../../runtime/engine.ts';

type Step = { partition: number; offsets: number[]; items: { k: string; ts: number }[] } | { assigned: number[] } | { waitAcked: true } | { pause: number };

/** What each script's batches' acks did: `done` when every sink downstream finished with them. */
const acked = new Map<string, boolean[]>();
const scripts = new Map<string, Step[]>();

/** A source standing for a Kafka consumer of topic `t`: batches with their partition and offsets, and assignments. */
const partitionedSource = defineOperator({
  name: 'test.partitioned',
  summary: 'Test source: batches from partitions.',
  doc: 'Emits the batches of script `script`, each with its origin, then waits for a drain.',
  inputs: {},
  outputs: { out: { type: 'Event<{k: string, ts: number}>', doc: 'Records.' } },
  settings: z.object({ script: z.string() }),
  create(ctx) {
    return () =>
      new Observable<Batch>((subscriber) => {
        const done: boolean[] = [];
        acked.set(ctx.settings.script, done);
        ctx.signal.addEventListener('abort', () => subscriber.complete());
        void (async function play() {
          for (const step of scripts.get(ctx.settings.script)!) {
            if ('waitAcked' in step) {
              await until('the acks so far', () => done.every(Boolean));
            } else if ('pause' in step) {
              await new Promise((resolve) => setTimeout(resolve, step.pause));
            } else if ('assigned' in step) {
              partitionEvents(ctx).assigned(['t'], step.assigned.map((partition) => ({ topic: 't', partition })));
            } else {
              const index = done.push(false) - 1;
              const ack = ctx.newAck(() => (done[index] = true));
              subscriber.next({ items: step.items, ack, origin: { partition: `t/p${step.partition}`, offsets: step.offsets } });
            }
          }
        })();
      });
  },
});

const pipeline = (script: string, parallelism: number) => `
streams: 1
name: keyed
nodes:
  src: { op: test.partitioned, with: { script: ${script} } }
  win: { op: window.tumbling, in: src, parallelism: ${parallelism}, with: { size: 10ms, time: ts, key: k } }
  agg: { op: aggregate, in: win, with: { count: count() } }
  out: { op: test.collect, in: agg, with: { into: ${script} } }
`;

function run(script: string, steps: Step[], store: StateStore | undefined, parallelism = 2): Engine {
  scripts.set(script, steps);
  return startYaml(pipeline(script, parallelism), { extra: [partitionedSource], ...(store && { partitionState: { store, pipeline: 'keyed', checkpointMs: 20 } }) });
}

export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() - started > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const records = (k: string, ...ts: number[]) => ts.map((t) => ({ k, ts: t }));
const dir = mkdtempSync(join(tmpdir(), 'streams-keyed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('keyed state per partition', () => {
  it('stores each partition\'s windows with its position, and only then releases the source\'s acks', async () => {
    const store = new MemoryStateStore();
    const engine = run('first', [
      { partition: 0, offsets: [0, 1, 2], items: records('a', 0, 1, 2) },
      { partition: 1, offsets: [0, 1], items: records('b', 0, 1) },
    ], store);
    await until('both batches acknowledged', () => acked.get('first')!.every(Boolean));
    expect((await store.loadPartition('keyed', 'win/t/p0'))?.position).toBe(3);
    expect((await store.loadPartition('keyed', 'win/t/p1'))?.position).toBe(2);
    expect(take('first')).toEqual([]);
    await engine.drain();
  });

  it('holds the acks of open windows without a state store, as before', async () => {
    const engine = run('plain', [{ partition: 0, offsets: [0, 1], items: records('a', 0, 1) }], undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(acked.get('plain')).toEqual([false]);
    await engine.drain();
  });

  it('drops a partition that moved away, and its next owner resumes from the stored state, skipping what it holds', async () => {
    const store = new FileStateStore(join(dir, 'state.json'));
    const first = run('owner', [
      { partition: 0, offsets: [0, 1], items: records('a', 0, 1) },
      { partition: 1, offsets: [10, 11], items: records('b', 0, 1) },
      { waitAcked: true },
      // The group gives p1 to another member: a batch of it fetched before the move is not this member's to fold.
      { assigned: [0] },
      { partition: 1, offsets: [12], items: records('b', 2) },
      { partition: 0, offsets: [2], items: records('a', 30) },
    ], store);
    const emitted = await until('the window of a', () => (collected.get('owner') ?? []).length > 0 && take('owner'));
    expect(emitted).toEqual([{ key: 'a', start: 0, end: 10, count: 2 }]);
    await first.drain();
    const saved = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { partitions: Record<string, { position: number }> };
    expect(saved.partitions['keyed/win/t/p1'].position).toBe(12);
    expect(saved.partitions['keyed/win/t/p0'].position).toBe(3);

    // The new owner reads p1 again from an older committed offset: 10 and 11 are in the state, 12 and 13 are new.
    const second = run('next', [{ partition: 1, offsets: [10, 11, 12, 13], items: [...records('b', 0, 1, 3), { k: 'b', ts: 25 }] }], store);
    const out = await until('the window of b', () => (collected.get('next') ?? []).length > 0 && take('next'));
    expect(out).toEqual([{ key: 'b', start: 0, end: 10, count: 3 }]);
    await second.drain();
  });

  it('keeps a checkpointed partition\'s windows over a drain instead of flushing them, and the next run goes on with them', async () => {
    const store = new MemoryStateStore();
    const first = run('drained', [{ partition: 0, offsets: [0, 1], items: records('a', 0, 1) }], store);
    await until('checkpointed', () => acked.get('drained')!.every(Boolean));
    await first.drain();
    expect(take('drained')).toEqual([]);
    const second = run('resumed', [{ partition: 0, offsets: [2, 3], items: records('a', 3, 25) }], store);
    expect(await until('the window of a', () => (collected.get('resumed') ?? []).length > 0 && take('resumed'))).toEqual([{ key: 'a', start: 0, end: 10, count: 3 }]);
    await second.drain();
  });

  it('holds its acks while the store has the partition further along, and releases them once its state passes it', async () => {
    /** A member that lost p0 saves late: its save lands after this one loaded the partition. */
    class LateSave extends MemoryStateStore {
      override async loadPartition(pipelineName: string, name: string) {
        const loaded = await super.loadPartition(pipelineName, name);
        await super.savePartition(pipelineName, name, { position: 5, state: null });
        return loaded;
      }
    }
    const store = new LateSave();
    const engine = run('behind', [
      { partition: 0, offsets: [0, 1], items: records('a', 0, 1) },
      { pause: 300 },
      { partition: 0, offsets: [2, 3, 4, 5, 6], items: records('a', 2, 3, 4, 5, 6) },
    ], store);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(acked.get('behind')).toEqual([false]);
    expect((await store.loadPartition('keyed', 'win/t/p0'))?.position).toBe(5);
    await until('acknowledged once past the stored position', () => acked.get('behind')!.length === 2 && acked.get('behind')!.every(Boolean));
    await engine.drain();
  });

  it('leaves a stored state further along the partition as it is', async () => {
    for (const store of [new MemoryStateStore(), new FileStateStore(join(dir, 'fence.json'))]) {
      expect(await store.savePartition('p', 'n/t/p0', { position: 20, state: { x: 2 } })).toBe(true);
      expect(await store.savePartition('p', 'n/t/p0', { position: 10, state: { x: 1 } })).toBe(false);
      expect(await store.loadPartition('p', 'n/t/p0')).toEqual({ position: 20, state: { x: 2 } });
      await store.save('p', new Map([['other', 1]]));
      expect(await store.loadPartition('p', 'n/t/p0')).toEqual({ position: 20, state: { x: 2 } });
    }
  });
});
