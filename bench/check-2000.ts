/**
 * Benchmark: checking a generated 2,000-node pipeline, against the baseline
 * of only parsing its YAML (`yaml`'s parseDocument) in the same run.
 * Aim: checking under 200 ms.
 *
 *   node bench/check-2000.ts
 *
 * `bench/check-large.ts` checks a 140,000-node file made by the same generator.
 */
import { performance } from 'node:perf_hooks';
import { parseDocument } from 'yaml';
import { checkPipeline } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { registry } from '../nodes/all.ts';

const nodeCount = 2_000;
const warmups = 3;
const runs = 7;

/**
 * A realistic mix, in lanes of ten nodes: a generator; a filter fanned out
 * to a map and a raw sink; JSON encode and decode with a schema; a filter;
 * a window and its aggregate (when the registry has them, else maps); a sink
 * per lane, and every fifth lane's sink also reads the previous lane.
 */
export function generatePipeline(count: number): string {
  const windows = registry.has('window.tumbling') && registry.has('aggregate');
  const out: string[] = ['streams: 1', 'name: bench-2000', 'nodes:'];
  let written = 0;
  const node = (name: string, lines: string[]): void => {
    if (written >= count) return;
    out.push(`  ${name}:`, ...lines.map((line) => `    ${line}`));
    written++;
  };
  for (let lane = 0; written < count; lane++) {
    node(`src-${lane}`, [
      'op: generate',
      'with:',
      `  count: ${1000 + lane}`,
      '  rate: 50',
      `  seed: ${lane}`,
      '  fields:',
      `    device: '"dev-" + string(random_int % ${(lane % 7) + 2})'`,
      '    value: random * 100.0',
      '    ts: now',
    ]);
    node(`valid-${lane}`, [`op: filter`, `in: src-${lane}`, 'with: { where: "value >= 0.0 && device != \'dev-0\'" }']);
    node(`scaled-${lane}`, [
      'op: map',
      `in: valid-${lane}`,
      'with:',
      '  set:',
      '    fahrenheit: value * 9.0 / 5.0 + 32.0',
      '    bucket: int(value) / 10',
      '  drop: [raw]',
    ]);
    node(`json-${lane}`, ['op: encode.json', `in: scaled-${lane}`]);
    node(`parsed-${lane}`, [
      'op: decode.json',
      `in: json-${lane}`,
      'with: { schema: { device: string, value: number, ts: number, fahrenheit: number } }',
    ]);
    node(`hot-${lane}`, ['op: filter', `in: parsed-${lane}`, 'with:', '  where: |', '    fahrenheit > 80.0 &&', '      device.startsWith("dev-")']);
    if (windows) {
      node(`per-second-${lane}`, ['op: window.tumbling', `in: hot-${lane}`, 'with: { size: 1s, time: ts, key: device, lateness: 2s }']);
      node(`stats-${lane}`, ['op: aggregate', `in: per-second-${lane}`, 'with: { count: count(), avg: avg(value), p99: "quantile(value, 0.99)" }']);
    } else {
      node(`per-second-${lane}`, ['op: map', `in: hot-${lane}`, 'with: { set: { second: "ts / 1000" } }']);
      node(`stats-${lane}`, ['op: map', `in: per-second-${lane}`, 'with: { keep: [device, value, second] }']);
    }
    const reads = lane % 5 === 4 ? `[stats-${lane}, stats-${lane - 1}.out]` : `stats-${lane}`;
    node(`out-${lane}`, ['op: file.write', `in: ${reads}`, `with: { path: out/stats-${lane}.ndjson }`]);
    node(`raw-${lane}`, ['op: file.write', `in: valid-${lane}`, `with: { path: out/raw-${lane}.ndjson, mode: truncate }`]);
  }
  return out.join('\n') + '\n';
}

/**
 * Times each action `runs` times after `warmups`, interleaving them round by
 * round so that a busy machine slows all of them alike.
 */
function timeAll(actions: Record<string, () => void>): Record<string, number[]> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(actions).map((label) => [label, []]));
  for (let round = 0; round < warmups + runs; round++) {
    for (const [label, action] of Object.entries(actions)) {
      const start = performance.now();
      action();
      if (round >= warmups) samples[label].push(performance.now() - start);
    }
  }
  for (const [label, list] of Object.entries(samples)) {
    list.sort((a, b) => a - b);
    console.log(`${label.padEnd(30)} median ${median(list).toFixed(1).padStart(7)} ms   min ${list[0].toFixed(1).padStart(7)} ms   ${(nodeCount / median(list)).toFixed(1).padStart(6)} nodes/ms`);
  }
  return samples;
}

function median(sorted: number[]): number {
  return sorted[Math.floor(sorted.length / 2)];
}

// Run as a script; `bench/check-large.ts` imports the generator.
if (import.meta.main) {
  const text = generatePipeline(nodeCount);
  const check = () => checkPipeline({ file: 'bench-2000.yaml', text, registry, env: {} });
  const result = check();
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !result.graph) {
    console.error('the generated pipeline does not check:');
    for (const d of errors.slice(0, 10)) console.error(formatDiagnostic(d));
    process.exitCode = 1;
  } else {
    const ops = new Map<string, number>();
    for (const n of result.graph.nodes.values()) ops.set(n.op, (ops.get(n.op) ?? 0) + 1);
    console.log(`pipeline: ${result.graph.nodes.size} nodes, ${result.graph.edges.length} edges, ${text.split('\n').length} lines, ${(text.length / 1024).toFixed(0)} KiB`);
    console.log(`operators: ${[...ops].map(([op, n]) => `${op} ${n}`).join(', ')}`);
    // Two baselines: `parseDocument` as it comes, and as the checker calls it (its duplicate-key check, quadratic, off).
    const samples = timeAll({
      'yaml parseDocument': () => parseDocument(text),
      '  the same, uniqueKeys off': () => parseDocument(text, { uniqueKeys: false }),
      checkPipeline: check,
    });
    const checked = median(samples.checkPipeline);
    console.log(
      `checking costs ${(checked / median(samples['yaml parseDocument'])).toFixed(2)}x parseDocument, ` +
        `${(checked / median(samples['  the same, uniqueKeys off'])).toFixed(2)}x the parse it does; ` +
        `aim: checking under 200 ms (${checked < 200 ? 'met' : 'missed'})`,
    );
  }
}
