/**
 * Benchmark: planning the generated 2,000-node pipeline of `check-2000.ts`
 * over 10 hosts (sources on the 4 edges, sinks on the 3 origins, windows
 * with `parallelism: 3`), against checking the same file in the same run.
 * Aim: planning under 200 ms.
 *
 *   node bench/plan-2000.ts
 */
import { performance } from 'node:perf_hooks';
import { checkPipeline } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { planGraph } from '../graph/plan.ts';
import { registry } from '../nodes/all.ts';
import { generatePipeline } from './check-2000.ts';

const warmups = 3;
const runs = 9;

const roles = ['edge', 'edge', 'edge', 'edge', 'origin', 'origin', 'origin', 'gpu', 'gpu', 'gpu'];
const hosts = roles.map((role, i) => `  host-${i}: { role: ${role}, region: r${i % 2}, offers: [listen, ffmpeg${role === 'gpu' ? ', gpu' : ''}], url: "http://10.0.0.${i + 1}:7070" }`);

/** The 2,000-node pipeline with hosts, transports, placements and parallel windows. */
export function generatePlannedPipeline(count: number): string {
  return generatePipeline(count)
    .replace('\nnodes:\n', `\nhosts:\n${hosts.join('\n')}\ntransports:\n  kafka: { brokers: [127.0.0.1:9092], partitions: 3 }\n  objects: { url: s3://bench/objects }\nnodes:\n`)
    .replaceAll('    op: generate\n', '    op: generate\n    place: { role: edge }\n')
    .replaceAll('    op: window.tumbling\n', '    op: window.tumbling\n    parallelism: 3\n')
    .replaceAll('    op: file.write\n', '    op: file.write\n    place: { role: origin }\n');
}

function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

if (import.meta.main) {
  const text = generatePlannedPipeline(2_000);
  const check = () => checkPipeline({ file: 'plan-2000.yaml', text, registry, env: {} });
  const checked = check();
  const errors = checked.diagnostics.filter((d) => d.severity === 'error');
  if (!checked.graph || errors.length > 0) {
    for (const d of errors.slice(0, 10)) console.error(formatDiagnostic(d));
    throw new Error('the generated pipeline does not check');
  }
  const graph = checked.graph;
  const plan = () => planGraph({ graph, text });
  const first = plan();
  if (!first.plan) {
    for (const d of first.diagnostics.slice(0, 10)) console.error(formatDiagnostic(d));
    throw new Error('the generated pipeline does not plan');
  }
  const crossing = first.plan.edges.filter((e) => e.transport.kind !== 'local').length;
  const instances = first.plan.nodes.reduce((sum, n) => sum + n.instances.length, 0);
  console.log(`pipeline: ${graph.nodes.size} nodes (${instances} instances), ${graph.edges.length} edges (${crossing} between hosts), ${graph.hosts.length} hosts`);
  // Interleaved round by round, so a busy machine slows both alike.
  const samples = { check: [] as number[], plan: [] as number[] };
  for (let round = 0; round < warmups + runs; round++) {
    for (const [label, action] of [['check', check], ['plan', plan]] as const) {
      const start = performance.now();
      action();
      if (round >= warmups) samples[label].push(performance.now() - start);
    }
  }
  const planMs = median(samples.plan);
  const checkMs = median(samples.check);
  console.log(`checkPipeline  median ${checkMs.toFixed(1).padStart(7)} ms`);
  console.log(`planGraph      median ${planMs.toFixed(1).padStart(7)} ms   ${(planMs / checkMs).toFixed(3)}x the check`);
  console.log(`aim: planning under 200 ms (${planMs < 200 ? 'met' : 'missed'})`);
}
