import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.ts';

const dir = mkdtempSync(join(tmpdir(), 'streams-metrics-'));

/** The value of one series in Prometheus text, or undefined when the series is absent. */
function series(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('streams run --metrics', () => {
  it('serves process and Node metrics, bytes read and written apart, and every counter from 0', async () => {
    const input = join(dir, 'in.txt');
    writeFileSync(input, 'alpha\nbeta\n'); // 11 bytes
    const file = join(dir, 'metrics.yaml');
    // `tick` never ends, so the process stays up to be scraped after the file is copied.
    writeFileSync(
      file,
      `streams: 1\nname: m\nnodes:\n  lines: { op: file.read, with: { path: ${input} } }\n  copy: { op: file.write, in: lines, with: { path: ${join(dir, 'out.txt')} } }\n` +
        '  tick: { op: generate, with: { rate: 1 } }\n  quiet: { op: filter, in: tick, with: { where: "false" } }\n  sink: { op: file.write, in: quiet, with: { path: /dev/null } }\n',
    );
    const port = await freePort();
    const child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--metrics', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: 'ignore' });
    let text = '';
    const copied = (): boolean => series(text, 'streams_node_bytes_total', 'pipeline="m",node="copy",direction="written"')! > 0;
    const ticked = (): boolean => series(text, 'streams_node_records_in_total', 'pipeline="m",node="quiet"')! > 0;
    for (let i = 0; i < 200 && !(copied() && ticked()); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
    }
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));

    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_version_info']) {
      expect(text, name).toMatch(new RegExp(`^${name}`, 'm'));
    }
    expect(series(text, 'streams_node_bytes_total', 'pipeline="m",node="lines",direction="read"')).toBe(11);
    expect(series(text, 'streams_node_bytes_total', 'pipeline="m",node="lines",direction="written"')).toBe(0);
    expect(series(text, 'streams_node_bytes_total', 'pipeline="m",node="copy",direction="written"')).toBe(11);
    expect(series(text, 'streams_node_bytes_total', 'pipeline="m",node="copy",direction="read"')).toBe(0);
    // Counters that never moved still have their series.
    for (const node of ['lines', 'copy', 'tick', 'quiet', 'sink']) {
      expect(series(text, 'streams_node_dropped_total', `pipeline="m",node="${node}",reason="error"`), node).toBe(0);
      expect(series(text, 'streams_node_errors_total', `pipeline="m",node="${node}"`), node).toBe(0);
    }
    expect(series(text, 'streams_node_records_in_total', 'pipeline="m",node="sink"')).toBe(0);
    // One observation per input batch: none for the sources and for `sink` (the filter passes nothing), one for
    // the 11-byte file, and one per tick for `quiet` (`rate: 1` emits one record a batch).
    const timed = (node: string) => series(text, 'streams_node_processing_seconds_count', `pipeline="m",node="${node}"`);
    expect(['lines', 'copy', 'tick', 'sink'].map(timed)).toEqual([0, 1, 0, 0]);
    expect(timed('quiet')).toBe(series(text, 'streams_node_records_in_total', 'pipeline="m",node="quiet"'));
  }, 60_000);

  it('counts dead letters lost for want of a `dlq` consumer, each node from 0', async () => {
    const input = join(dir, 'mixed.txt');
    writeFileSync(input, '{"a": 1}\nnot json\n{"a": 2}\n');
    const file = join(dir, 'lost.yaml');
    // `decode`'s dlq port is unconnected, so the line that is not JSON is lost; `tick` keeps the process up.
    writeFileSync(
      file,
      `streams: 1\nname: lost\nnodes:\n  lines: { op: file.read, with: { path: ${input} } }\n  decode: { op: decode.json, in: lines }\n` +
        `  copy: { op: file.write, in: decode, with: { path: ${join(dir, 'decoded.txt')} } }\n  tick: { op: generate, with: { rate: 1 } }\n  sink: { op: file.write, in: tick, with: { path: /dev/null } }\n`,
    );
    const port = await freePort();
    const child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--metrics', `127.0.0.1:${port}`, '--log-level', 'error'], { stdio: 'ignore' });
    const name = 'streams_node_dead_letters_lost_total';
    let text = '';
    for (let i = 0; i < 200 && !(series(text, 'streams_node_records_in_total', 'pipeline="lost",node="copy"')! >= 2); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
    }
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));

    expect(text).toMatch(new RegExp(`^# TYPE ${name} counter$`, 'm'));
    expect(series(text, name, 'pipeline="lost",node="decode"')).toBe(1);
    for (const node of ['lines', 'copy', 'tick', 'sink']) expect(series(text, name, `pipeline="lost",node="${node}"`), node).toBe(0);
  }, 60_000);

  it('says in one sentence that the --metrics port is taken, and exits 2', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    const file = join(dir, 'busy.yaml');
    writeFileSync(file, 'streams: 1\nname: busy\nnodes:\n  tick: { op: generate, with: { count: 1 } }\n  sink: { op: file.write, in: tick, with: { path: /dev/null } }\n');
    try {
      // Synchronous would block the event loop that serves `taken`; a bind refusal needs no answer from it.
      const result = spawnSync(process.execPath, ['bin/streams.ts', 'run', file, '--metrics', `127.0.0.1:${port}`], { encoding: 'utf8', timeout: 30_000 });
      expect(result.status).toBe(2);
      expect(result.stderr).toBe(
        `streams: \`--metrics\`: cannot listen on 127.0.0.1:${port}: the address is already in use (another process or node listens there; change \`--metrics\`)\n`,
      );
    } finally {
      taken.close();
    }
  }, 60_000);
});
