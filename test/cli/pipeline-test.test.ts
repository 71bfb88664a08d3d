import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCliOnFifo } from '../helpers/fifo-cli.ts';

function streams(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/streams.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'streams-unit-'));
copyFileSync('pipelines/demo.yaml', join(dir, 'demo.yaml'));

describe('streams test', () => {
  it('passes every pipeline test shipped beside the examples', () => {
    const files = readdirSync('pipelines').filter((f) => f.endsWith('.test.yaml')).map((f) => join('pipelines', f));
    expect(files.length).toBeGreaterThan(0);
    const result = streams('test', ...files);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(result.code).toBe(0);
  });

  it('reports a failing expectation with a field-by-field difference and exits 1', () => {
    const file = join(dir, 'failing.test.yaml');
    writeFileSync(file, `streams_test: 1
pipeline: demo.yaml
tests:
  - name: wrong conversion
    input:
      valid: [{ device: a, value: 10 }]
    expect:
      celsius: [{ device: a, value: 10, fahrenheit: 51 }]
  - name: wrong count
    input:
      valid: [{ value: 1 }, { value: -1 }]
    expect:
      celsius: { count: 2, all: "fahrenheit < 0.0" }
`);
    const result = streams('test', file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('FAIL');
    expect(result.stdout).toContain('celsius.out: record 1: field `fahrenheit`: expected 51, got 50');
    expect(result.stdout).toContain('celsius.out: expected 2 records, got 1');
    expect(result.stdout).toMatch(/celsius.out: record 1 fails `fahrenheit < 0.0`/);
    expect(result.stdout).toMatch(/^0 passed, 2 failed$/m);
  });

  it('points at the line of a test that names a node the pipeline lacks', () => {
    const file = join(dir, 'typo.test.yaml');
    writeFileSync(file, `streams_test: 1
pipeline: demo.yaml
tests:
  - name: typo
    input:
      vaild: [{ value: 1 }]
    expect:
      celsius: { count: 1 }
`);
    const result = streams('test', file);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/typo\.test\.yaml:6:7: error: test feeds unknown node `vaild` \(did you mean `valid`\?\)/);
  });

  it('reads a test file once, so one given as a pipe (`streams test <(...)`) runs', async () => {
    // A FIFO yields its text to one reader: a second read would wait forever for a writer.
    const { code, stdout, stderr } = await runCliOnFifo({
      fifo: join(dir, 'piped.test.yaml'),
      args: ['test'],
      text: 'streams_test: 1\npipeline: demo.yaml\ntests:\n  - name: piped\n    input:\n      valid: [{ value: 1 }]\n    expect:\n      celsius: { count: 1 }\n',
    });
    expect(stderr).toBe('');
    expect(stdout).toContain('1 passed, 0 failed');
    expect(code).toBe(0);
  }, 30_000);
});
