import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runYaml } from '../helpers/pipeline.ts';

const dir = mkdtempSync(join(tmpdir(), 'streams-file-write-'));

function appendTo(output: string): string {
  return `
streams: 1
name: append
nodes:
  src: { op: test.count, with: { count: 2 } }
  encode: { op: encode.json, in: src }
  out: { op: file.write, in: encode, with: { path: ${JSON.stringify(output)} } }
`;
}

describe('file.write appending', () => {
  it('starts on a line of its own after a torn last line (a run killed mid-write), so no record is glued to it', async () => {
    const output = join(dir, 'torn.ndjson');
    writeFileSync(output, '{"n":0}\n{"n":1,"tw');
    await runYaml(appendTo(output));
    const lines = readFileSync(output, 'utf8').split('\n');
    expect(lines[0]).toBe('{"n":0}');
    expect(lines[1]).toBe('{"n":1,"tw');
    expect(lines.slice(2, 4).map((line) => JSON.parse(line) as unknown)).toEqual([{ n: 0 }, { n: 1 }]);
  });

  it('adds nothing between whole lines', async () => {
    const output = join(dir, 'whole.ndjson');
    writeFileSync(output, '{"n":9}\n');
    await runYaml(appendTo(output));
    expect(readFileSync(output, 'utf8')).toBe('{"n":9}\n{"n":0}\n{"n":1}\n');
  });
});
