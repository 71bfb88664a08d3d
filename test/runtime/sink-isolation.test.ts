import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { Ack, defineOperator, sinkBatches, z } from '../../runtime/api.ts';
import { runYaml, take } from '../helpers/pipeline.ts';
import { contextWithSettings } from '../helpers/fake-context.ts';

const dir = mkdtempSync(join(tmpdir(), 'streams-poison-'));

/** 1,000 good records, one nested 100,000 deep (JSON.stringify overflows the stack on it), 1,000 more. */
function poisonFile(): string {
  let deep = '1';
  for (let i = 0; i < 100_000; i++) deep = `{"a":${deep}}`;
  const lines: string[] = [];
  for (let i = 0; i < 1000; i++) lines.push(JSON.stringify({ i }));
  lines.push(deep);
  for (let i = 1000; i < 2000; i++) lines.push(JSON.stringify({ i }));
  const file = join(dir, 'poison.ndjson');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

describe('a sink isolates a record it cannot write', () => {
  it('writes all 2,000 good records around a 100,000-deep value and dead-letters that one with the reason', async () => {
    const input = poisonFile();
    const output = join(dir, 'out.ndjson');
    const engine = await runYaml(`
streams: 1
name: poison
nodes:
  src: { op: file.read, with: { path: ${JSON.stringify(input)}, format: ndjson } }
  out: { op: file.write, in: src, with: { path: ${JSON.stringify(output)}, mode: truncate } }
  dead: { op: test.collect, in: out.dlq, with: { into: poison-dlq } }
`);
    const written = readFileSync(output, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { i: number });
    expect(written.map((r) => r.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    const dead = take('poison-dlq') as { node: string; error: string }[];
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ node: 'out', error: 'Maximum call stack size exceeded' });
    const stats = new Map(engine.nodeStats()).get('out')!;
    expect([stats.restarts, stats.deadLetters, stats.deadLettersLost]).toEqual([0, 1, 0]);
  });

  it('counts a dead letter with no `dlq` consumer as lost', async () => {
    const engine = await runYaml(`
streams: 1
name: poison-lost
nodes:
  src: { op: file.read, with: { path: ${JSON.stringify(poisonFile())}, format: ndjson } }
  out: { op: file.write, in: src, with: { path: ${JSON.stringify(join(dir, 'lost.ndjson'))}, mode: truncate } }
`);
    expect(engine.lostDeadLetters()).toEqual(new Map([['out', 1]]));
  });

  it('fails the node on a connection error without splitting the batch (no more writes against a down server)', async () => {
    const ctx = contextWithSettings({});
    let calls = 0;
    const sink = sinkBatches<number>(
      () => {
        calls += 1;
        throw new Error('connection lost');
      },
      undefined,
      { ctx, isolate: true },
    );
    const batch = { items: [1, 2, 3, 4], ack: new Ack() };
    await expect(lastValueFrom(sink(from([batch])).pipe(toArray()))).rejects.toThrow('connection lost');
    expect(ctx.failures).toHaveLength(0);
    expect(batch.ack.done).toBe(false);
    expect(calls).toBe(1);
  });

  it('stops splitting and fails the node when the server goes down while a record error is being isolated', async () => {
    const ctx = contextWithSettings({});
    const writes: number[][] = [];
    const sink = sinkBatches<number>(
      (items) => {
        writes.push(items);
        if (writes.length === 1) throw new RangeError('cannot serialise');
        throw new Error('connection lost');
      },
      undefined,
      { ctx, isolate: true },
    );
    const batch = { items: [1, 2, 3, 4], ack: new Ack() };
    await expect(lastValueFrom(sink(from([batch])).pipe(toArray()))).rejects.toThrow('connection lost');
    expect(writes).toEqual([[1, 2, 3, 4], [1, 2]]);
    expect(ctx.failures).toHaveLength(0);
  });

  it('logs a failing finalize under the node\'s label instead of swallowing it', async () => {
    const ctx = contextWithSettings({});
    const sink = sinkBatches<number>(() => undefined, undefined, {
      ctx,
      finalize() {
        throw new Error('EIO on close');
      },
    });
    await lastValueFrom(sink(from([{ items: [1], ack: new Ack() }])).pipe(toArray()));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(ctx.logs).toEqual([{ level: 'error', fields: { error: 'EIO on close' }, message: 'node `node` (test): cannot close: EIO on close' }]);
  });

  it('closes its file on every exit: restarts leak no descriptor', async () => {
    let failing = 3;
    const fdsBefore = readdirSync('/proc/self/fd').length;
    const output = join(dir, 'restarts.ndjson');
    // A record whose serialisation throws a transient-looking error on its first tries makes the sink restart.
    const tricky = {
      toJSON() {
        if (failing-- > 0) throw new Error('busy');
        return { ok: true };
      },
    };
    const source = defineOperator({
      name: 'test.one-tricky',
      summary: 'Emits one record whose serialisation fails at first.',
      doc: 'Test only.',
      inputs: {},
      outputs: { out: { type: 'Event', doc: 'One record.' } },
      settings: z.object({}),
      create: (ctx) => () => from([{ items: [tricky], ack: ctx.newAck() }]),
    });
    const engine = await runYaml(
      `
streams: 1
name: restarts
nodes:
  src: { op: test.one-tricky }
  out: { op: file.write, in: src, with: { path: ${JSON.stringify(output)}, mode: truncate } }
`,
      { extra: [source] },
    );
    expect(new Map(engine.nodeStats()).get('out')!.restarts).toBe(3);
    expect(readFileSync(output, 'utf8')).toBe('{"ok":true}\n');
    // Closing is asynchronous: give the last close a moment.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fdsBefore);
  });
});
