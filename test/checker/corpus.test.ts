/**
 * The invalid-pipeline corpus: each file under `invalid/` opens with the
 * diagnostics it must give, one `# expect: LINE:COL: SEVERITY: MESSAGE` line
 * each, in output order. The checker's output must match them exactly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { registry } from '../../nodes/all.ts';

const folder = new URL('./invalid/', import.meta.url);
const names = readdirSync(folder).filter((name) => name.endsWith('.yaml')).sort();

/** The environment every corpus file is checked in: `HOME` is set, nothing else. */
const env = { HOME: '/home/user' };

/** The `# expect:` lines of the file's leading comment block. */
function expectations(text: string): string[] {
  const expected: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    if (line.startsWith('# expect: ')) expected.push(line.slice('# expect: '.length));
  }
  return expected;
}

describe('invalid pipeline corpus', () => {
  it('holds at least 45 pipelines, each named NN-short-name.yaml', () => {
    expect(names.length).toBeGreaterThanOrEqual(45);
    for (const name of names) expect(name).toMatch(/^\d\d-[a-z0-9-]+\.yaml$/);
  });

  it.each(names)('%s gives exactly the diagnostics it expects', (name) => {
    const text = readFileSync(new URL(name, folder), 'utf8');
    const expected = expectations(text);
    expect(expected.length, 'a corpus file states at least one expected diagnostic').toBeGreaterThan(0);
    const file = `test/checker/invalid/${name}`;
    const result = checkPipeline({ file, text, registry, env });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual(expected.map((line) => `${file}:${line}`));
    // A file with errors yields no graph; one with only warnings still runs.
    const hasError = expected.some((line) => /^\d+:\d+: error: /.test(line));
    expect(result.graph === undefined).toBe(hasError);
  });
});
