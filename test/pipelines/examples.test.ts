import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { registry } from '../../nodes/all.ts';

/** Example pipelines that need a real server say so on a `# needs:` line; they run in the services suite. */
export function examplePipelines(): { file: string; needs: string[] }[] {
  return readdirSync('pipelines')
    .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
    .map((f) => {
      const file = join('pipelines', f);
      const needs = /^# needs: (.+)$/m.exec(readFileSync(file, 'utf8'))?.[1].split(/[, ]+/).filter(Boolean) ?? [];
      return { file, needs };
    });
}

const dir = mkdtempSync(join(tmpdir(), 'streams-examples-'));

describe('example pipelines', () => {
  it.each(examplePipelines().map((p) => p.file))('%s is valid, with no warnings', (file) => {
    const text = readFileSync(file, 'utf8');
    // Secrets come from the environment; give each variable the file names a stand-in value (long enough for a signing key).
    const env = Object.fromEntries([...text.matchAll(/\$\{env:(\w+)\}/g)].map((m) => [m[1], 'stand-in-secret-0123456789abcdef']));
    const result = checkPipeline({ file, text, registry, env });
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`)).toEqual([]);
  });

  it('demo.yaml runs to completion and prints converted readings', () => {
    const run = spawnSync(process.execPath, ['bin/streams.ts', 'run', 'pipelines/demo.yaml', '--log-level', 'warn'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const rows = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { value: number; fahrenheit: number; device: string });
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.every((r) => r.value >= 0 && /^dev-[0-2]$/.test(r.device))).toBe(true);
  });

  it('w1-iot-rollup.yaml gives per-device one-second aggregates equal to a direct computation', () => {
    const output = join(dir, 'w1.ndjson');
    const run = spawnSync(process.execPath, ['bin/streams.ts', 'run', 'pipelines/w1-iot-rollup.yaml', '--param', `output=${output}`, '--log-level', 'warn'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const expected = new Map<string, { count: number; sum: number; min: number; max: number }>();
    for (const line of readFileSync('test/fixtures/w1-sample.ndjson', 'utf8').trim().split('\n')) {
      const r = JSON.parse(line) as { ts: number; device: string; value: number };
      if (r.value < 0) continue;
      const key = `${r.ts - (r.ts % 1000)} ${r.device}`;
      const s = expected.get(key) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity };
      s.count++;
      s.sum += r.value;
      s.min = Math.min(s.min, r.value);
      s.max = Math.max(s.max, r.value);
      expected.set(key, s);
    }
    const rows = readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { key: string; start: number; end: number; count: number; sum: number; min: number; max: number; avg: number });
    expect(rows).toHaveLength(expected.size);
    for (const row of rows) {
      const want = expected.get(`${row.start} ${row.key}`)!;
      expect(row.end - row.start).toBe(1000);
      expect(row.count).toBe(want.count);
      expect(row.sum).toBeCloseTo(want.sum, 9);
      expect(row.min).toBe(want.min);
      expect(row.max).toBe(want.max);
      expect(row.avg).toBeCloseTo(want.sum / want.count, 9);
    }
  });
});
