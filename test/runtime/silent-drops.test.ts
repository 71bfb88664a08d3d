import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { runTestFile } from '../../cli/pipeline-test.ts';
import { defineOperator, z, type Batch, type Logger } from '../../runtime/api.ts';
import { map as mapBatches } from 'rxjs';
import { runYaml, take } from '../helpers/pipeline.ts';

const dir = mkdtempSync(join(tmpdir(), 'streams-drops-'));

function captureLogger(): Logger & { lines: { level: string; fields: object; message: string }[]; child(): Logger } {
  const lines: { level: string; fields: object; message: string }[] = [];
  const at = (level: string) => (fields: object, message: string) => void lines.push({ level, fields, message });
  const logger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

describe('records on an unconnected port', () => {
  it('counts late records as drops with a reason and warns once', async () => {
    const log = captureLogger();
    const engine = await runYaml(
      `
streams: 1
name: late
nodes:
  src: { op: test.count, with: { count: 40, batch: 1 } }
  stamp: { op: map, in: src, with: { set: { ts: "n % 20 == 19 ? 0.0 : double(n) * 100.0" } } }
  win: { op: window.tumbling, in: stamp, with: { size: 1s, time: ts } }
  out: { op: test.collect, in: win, with: { into: late } }
`,
      { log },
    );
    take('late');
    const dropped = new Map(engine.nodeStats()).get('win')!.dropped;
    expect(dropped.get('unconnected_late')).toBe(2);
    const warnings = log.lines.filter((l) => l.level === 'warn' && l.message.includes('unconnected `late` port'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(/^node `win` \(test\.yaml:7\): records on its unconnected `late` port are dropped/);
  });
});

/** Passes records on and copies each batch to an optional `side` port, saying whether `side` was read. */
const sideOperator = defineOperator({
  name: 'test.side',
  summary: 'test only',
  doc: 'test only',
  inputs: { in: { type: 'Event', doc: 'records' } },
  outputs: { out: { type: 'Event', doc: 'records' }, side: { type: 'Event', doc: 'copies', optional: true } },
  settings: z.object({}),
  create(ctx) {
    return (input) =>
      input.pipe(
        mapBatches((batch: Batch) => {
          sideReads.push(ctx.connected('side'));
          batch.ack.retain();
          ctx.emit('side', { items: batch.items, ack: batch.ack });
          return batch;
        }),
      );
  },
});
const sideReads: boolean[] = [];

describe('records on an unconnected optional port', () => {
  it('are neither counted as drops nor warned about, and the node can tell nobody reads the port', async () => {
    const log = captureLogger();
    const engine = await runYaml(
      `
streams: 1
name: side
nodes:
  src: { op: test.count, with: { count: 10, batch: 5 } }
  copy: { op: test.side, in: src }
  out: { op: test.collect, in: copy, with: { into: side-out } }
`,
      { log, extra: [sideOperator] },
    );
    expect(take('side-out')).toHaveLength(10);
    expect(new Map(engine.nodeStats()).get('copy')!.dropped.size).toBe(0);
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
    expect(sideReads).toEqual([false, false]);
  });

  it('are read when connected, and the node is told so', async () => {
    sideReads.length = 0;
    await runYaml(
      `
streams: 1
name: side
nodes:
  src: { op: test.count, with: { count: 10, batch: 5 } }
  copy: { op: test.side, in: src }
  out: { op: test.collect, in: copy, with: { into: side-main } }
  copies: { op: test.collect, in: copy.side, with: { into: side-copies } }
`,
      { extra: [sideOperator] },
    );
    expect(take('side-copies')).toHaveLength(10);
    expect(sideReads).toEqual([true, true]);
  });
});

describe('streams test feeding a Bytes input', () => {
  it('says the node takes Bytes, at the test file line, instead of only a count mismatch', async () => {
    writeFileSync(join(dir, 'bytes.yaml'), 'streams: 1\nname: bytes\nnodes:\n  lines: { op: file.read, with: { path: in.txt } }\n  parse: { op: decode.json, in: lines }\n  out: { op: stdout, in: parse }\n');
    writeFileSync(join(dir, 'in.txt'), '');
    const file = join(dir, 'bytes.test.yaml');
    writeFileSync(file, 'streams_test: 1\npipeline: bytes.yaml\ntests:\n  - name: events into bytes\n    input:\n      parse: [{ a: 1 }]\n    expect:\n      parse: [{ a: 1 }]\n');
    const { diagnostics } = await runTestFile(file);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      expect.stringMatching(/bytes\.test\.yaml:6:7: error: node `parse` takes Bytes, and `input\.parse` gives events: feed the node after it, or give lines as `\{ text: "\.\.\." \}`$/),
    ]);
  });

  it('accepts lines given as { text } for a Bytes input', async () => {
    const file = join(dir, 'bytes-text.test.yaml');
    writeFileSync(file, 'streams_test: 1\npipeline: bytes.yaml\ntests:\n  - name: lines into bytes\n    input:\n      parse: [{ text: \'{"a":1}\' }]\n    expect:\n      parse: [{ a: 1 }]\n');
    const { outcomes, diagnostics } = await runTestFile(file);
    expect(diagnostics).toEqual([]);
    expect(outcomes).toEqual([{ name: 'lines into bytes', passed: true, failures: [] }]);
  });
});
