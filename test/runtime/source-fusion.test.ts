import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkYaml, runYaml, startYaml, take } from '../helpers/pipeline.ts';

const dir = mkdtempSync(join(tmpdir(), 'streams-source-fusion-'));

/** Lines over many 1 KiB chunks: good objects, CRLF, blank, not JSON, an array, a wrong type, and a last line with no newline. */
function mixedInput(): string {
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    if (i % 97 === 0) lines.push('not json');
    else if (i % 89 === 0) lines.push('');
    else if (i % 83 === 0) lines.push('[1,2]');
    else if (i % 79 === 0) lines.push(`{"a":"${i}"}`);
    else if (i % 7 === 0) lines.push(`{"a":${i}}\r`);
    else lines.push(`{"a":${i},"pad":"${'x'.repeat(i % 13)}"}`);
  }
  return lines.join('\n') + '\n{"a":-1}';
}

function pipeline(name: string, input: string, schema: boolean, checkpoint?: string): string {
  return `
streams: 1
name: ${name}
nodes:
  lines: { op: file.read, with: { path: ${JSON.stringify(input)}, chunk_size: 1024${checkpoint ? `, checkpoint: ${JSON.stringify(checkpoint)}` : ''} } }
  parse: { op: decode.json, in: lines${schema ? ', with: { schema: { a: number } }' : ''} }
  good: { op: test.collect, in: parse, with: { into: ${name}-good } }
  bad: { op: test.collect, in: parse.dlq, with: { into: ${name}-bad } }
`;
}

describe('file.read fused with decode.json in a fixed graph', () => {
  const input = join(dir, 'mixed.txt');
  writeFileSync(input, mixedInput());

  it.each([false, true])('gives the records, dead letters and counts of the two nodes apart (schema: %s)', async (schema) => {
    const apart = await runYaml(pipeline(`apart-${schema}`, input, schema));
    const apartGood = take(`apart-${schema}-good`);
    const apartBad = take(`apart-${schema}-bad`);
    const fused = await runYaml(pipeline(`fused-${schema}`, input, schema), { fixed: true });
    expect(apart.runners.get('parse')!.fusedInto).toBeUndefined();
    expect(fused.runners.get('parse')!.fusedInto?.name).toBe('lines');
    const fusedGood = take(`fused-${schema}-good`);
    const fusedBad = take(`fused-${schema}-bad`) as { error: string; node: string; record: { text: string } }[];
    expect(fusedGood).toEqual(apartGood);
    expect(fusedBad).toEqual(apartBad);
    // Every kind of bad line was there to compare: blank, not JSON, an array, and (with the schema) a string.
    const kinds = new Set(fusedBad.map((b) => (b.record.text.startsWith('{"a":"') ? 'string a' : b.record.text)));
    expect(kinds).toEqual(new Set(['', 'not json', '[1,2]', ...(schema ? ['string a'] : [])]));
    expect(fusedBad.every((b) => b.node === 'parse')).toBe(true);
    expect(fusedGood).toContainEqual({ a: 7 });
    expect(fusedGood.at(-1)).toEqual({ a: -1 });
    const [a, f] = [new Map(apart.nodeStats()).get('parse')!, new Map(fused.nodeStats()).get('parse')!];
    expect(f.recordsOut).toBe(a.recordsOut);
    expect(f.deadLetters).toBe(a.deadLetters);
    expect(f.errors).toBe(a.errors);
    expect(f.recordsIn).toBe(a.recordsIn);
    expect(new Map(fused.nodeStats()).get('lines')!.recordsOut).toBe(new Map(apart.nodeStats()).get('lines')!.recordsOut);
    const edge = (engine: typeof fused) => [...engine.edgeStats()].find(([e]) => e.to === 'parse')![1];
    expect(edge(fused).records).toBe(edge(apart).records);
  });

  it('moves the checkpoint past batches whose every line was a dead letter', async () => {
    const allBad = join(dir, 'all-bad.txt');
    // Several chunks of nothing but bad lines, then one good line.
    writeFileSync(allBad, 'not json\n'.repeat(500) + '{"a":1}\n');
    const checkpoint = join(dir, 'all-bad.offset');
    await runYaml(pipeline('checkpoint', allBad, false, checkpoint), { fixed: true });
    expect(take('checkpoint-good')).toEqual([{ a: 1 }]);
    expect(take('checkpoint-bad')).toHaveLength(500);
    expect(JSON.parse(readFileSync(checkpoint, 'utf8'))).toEqual({ position: statSync(allBad).size });
  });

  it('refuses a reload, which could not replace the decoder without reading the file again', async () => {
    const engine = startYaml(pipeline('refused', input, false), { fixed: true });
    const result = await engine.reload(checkYaml(pipeline('refused', input, true)));
    await engine.done;
    expect(result.status).toBe('rejected');
    expect(result.status === 'rejected' && result.cause).toMatch(/fixed graph/);
    expect(take('refused-good').length).toBeGreaterThan(2000);
    take('refused-bad');
  });

  it('keeps the two nodes apart when the graph may be reloaded', async () => {
    const engine = await runYaml(pipeline('reloadable', input, false));
    expect(engine.runners.get('parse')!.fusedInto).toBeUndefined();
    take('reloadable-good');
    take('reloadable-bad');
  });
});
