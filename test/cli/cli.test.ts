import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.ts';

function streams(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/streams.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'streams-cli-'));


describe('streams CLI', () => {
  it('validate: exit 0 for a valid file, 1 with located errors for an invalid one, 2 for an unreadable one', () => {
    const ok = streams('validate', 'pipelines/demo.yaml');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/pipelines\/demo\.yaml: ok \(4 nodes, 3 edges\)/);
    const single = streams('validate', 'pipelines/cdn-origin.yaml');
    expect(single.stdout).toContain('pipelines/cdn-origin.yaml: ok (1 node, 0 edges)');

    const bad = join(dir, 'typo.yaml');
    writeFileSync(bad, 'streams: 1\nname: typo\nnodes:\n  src:\n    op: generate\n    with: { count: 3, sead: 4 }\n  out: { op: stdout, in: src }\n');
    const invalid = streams('validate', bad);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain(':6:23: error: unknown setting `sead` for `generate` (did you mean `seed`?)');
    expect(invalid.stderr).not.toMatch(/\n\s+at /); // no stack trace

    const missing = streams('validate', join(dir, 'nope.yaml'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read `.*nope\.yaml`: no such file/);
  });

  it('usage errors exit 2 with a message, and every command has --help', () => {
    expect(streams('frobnicate').code).toBe(2);
    expect(streams('validate').code).toBe(2);
    expect(streams('graph', 'pipelines/demo.yaml', '--format', 'png').stderr).toMatch(/unknown format `png`/);
    for (const command of ['validate', 'ops', 'graph', 'run']) {
      const help = streams(command, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Usage: streams /);
    }
  });

  it('ops lists operators and shows one, suggesting a name for a typo', () => {
    const table = streams('ops');
    expect(table.code).toBe(0);
    for (const name of ['generate', 'file.read', 'filter', 'map', 'decode.json']) expect(table.stdout).toContain(name);
    const one = streams('ops', 'filter');
    expect(one.stdout).toContain('where');
    const typo = streams('ops', 'filtr');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('did you mean `filter`?');
  });

  it('graph draws DOT and Mermaid with operators on nodes and types on edges', () => {
    const dot = streams('graph', 'pipelines/demo.yaml', '--format', 'dot');
    expect(dot.stdout).toContain('"sensors" -> "valid" [label="Event<unknown>"]');
    expect(dot.stdout).toContain('label="valid\\nfilter"');
    const mermaid = streams('graph', 'pipelines/demo.yaml', '--format', 'mermaid');
    expect(mermaid.stdout).toMatch(/^flowchart LR/);
    expect(mermaid.stdout).toContain('n_sensors -->|');
  });

  it('run executes the demo to completion and exits 0', () => {
    const result = streams('run', 'pipelines/demo.yaml', '--log-level', 'warn');
    expect(result.code).toBe(0);
    const rows = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { value: number; fahrenheit: number });
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.value).toBeGreaterThanOrEqual(0);
      expect(row.fahrenheit).toBeCloseTo((row.value * 9) / 5 + 32, 9);
    }
  });

  it('run --metrics serves Prometheus text with node and edge metrics', async () => {
    const port = await freePort();
    const file = join(dir, 'metrics.yaml');
    writeFileSync(file, 'streams: 1\nname: m\nnodes:\n  src: { op: generate, with: { rate: 1000 } }\n  keep: { op: filter, in: src, with: { where: "i % 2 == 0" } }\n  out: { op: file.write, in: keep, with: { path: /dev/null } }\n');
    const child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--metrics', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: 'ignore' });
    let text = '';
    for (let i = 0; i < 100 && !/records_in_total\{pipeline="m",node="out"\} [1-9]/.test(text); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
    }
    child.kill('SIGTERM');
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
    for (const name of ['streams_node_records_in_total', 'streams_node_records_out_total', 'streams_node_bytes_total', 'streams_node_errors_total', 'streams_node_dlq_total', 'streams_node_restarts_total', 'streams_node_starts_total', 'streams_node_processing_seconds_bucket', 'streams_edge_queue_depth', 'streams_edge_queue_capacity', 'streams_edge_dropped_total']) {
      expect(text).toContain(name);
    }
    const out = Number(/streams_node_records_in_total\{pipeline="m",node="out"\} (\d+)/.exec(text)![1]);
    const keepIn = Number(/streams_node_records_in_total\{pipeline="m",node="keep"\} (\d+)/.exec(text)![1]);
    expect(out).toBeGreaterThan(0);
    expect(out).toBeLessThanOrEqual(keepIn);
    expect(text).toMatch(/streams_edge_queue_capacity\{pipeline="m",from="keep\.out",to="out"\} 16384/);
  }, 30_000);
});
