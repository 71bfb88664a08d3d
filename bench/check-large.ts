/**
 * Benchmark: validating a 140,000-node pipeline (about 10 MB, the node mix of
 * `check-2000`), wall time and peak RSS, against only parsing its YAML
 * (`yaml`'s parseDocument, as the checker calls it) in the same run. Each
 * measurement runs in its own child process, so that peak RSS is its own.
 * Aim: under 2 s and 400 MB.
 *
 *   node bench/check-large.ts [node count] [runs]
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { LineCounter, parseDocument } from 'yaml';
import { checkPipeline } from '../graph/check.ts';
import { registry } from '../nodes/registry.ts';
import { generatePipeline } from './check-2000.ts';

const nodeCount = Number(process.argv[2] ?? 140_000);
const runs = Number(process.argv[3] ?? 3);

interface Sample {
  ms: number;
  peakMiB: number;
  baseMiB: number;
  bytes: number;
  nodes?: number;
  errors?: number;
}

/** One measurement in this process: generate the text, then time the action; peak RSS from the kernel's high-water mark. */
function measure(what: 'parse' | 'check'): Sample {
  const text = generatePipeline(nodeCount);
  const baseMiB = process.memoryUsage().rss / 2 ** 20;
  const start = performance.now();
  let nodes: number | undefined;
  let errors: number | undefined;
  if (what === 'parse') {
    parseDocument(text, { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: false, strict: true, logLevel: 'error' }).toJS();
  } else {
    const result = checkPipeline({ file: 'large.yaml', text, registry, env: {} });
    nodes = result.graph?.nodes.size;
    errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  }
  const ms = performance.now() - start;
  return { ms, peakMiB: process.resourceUsage().maxRSS / 1024, baseMiB, bytes: text.length, nodes, errors };
}

function child(what: 'parse' | 'check'): Sample {
  const out = execFileSync(process.execPath, [import.meta.filename, String(nodeCount), `--child=${what}`], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as Sample;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

const mode = process.argv.find((arg) => arg.startsWith('--child='))?.slice('--child='.length) as 'parse' | 'check' | undefined;
if (mode) {
  process.stdout.write(JSON.stringify(measure(mode)));
} else {
  const samples: Record<'parse' | 'check', Sample[]> = { parse: [], check: [] };
  // Interleaved, so a busy machine slows both alike.
  for (let i = 0; i < runs; i++) for (const what of ['parse', 'check'] as const) samples[what].push(child(what));
  const [first] = samples.check;
  if (first.errors !== 0 || first.nodes !== nodeCount) {
    console.error(`the generated pipeline does not check: ${first.errors} errors, ${first.nodes} nodes`);
    process.exitCode = 1;
  }
  console.log(`pipeline: ${nodeCount} nodes, ${(first.bytes / 2 ** 20).toFixed(1)} MiB of YAML; ${runs} runs each, medians`);
  const row = (label: string, list: Sample[]) => {
    const ms = median(list.map((s) => s.ms));
    const peak = median(list.map((s) => s.peakMiB));
    console.log(`${label.padEnd(28)} ${ms.toFixed(0).padStart(6)} ms   peak RSS ${peak.toFixed(0).padStart(5)} MiB (text generated: ${median(list.map((s) => s.baseMiB)).toFixed(0)} MiB)`);
    return { ms, peak };
  };
  const parse = row('yaml parseDocument + toJS', samples.parse);
  const check = row('checkPipeline', samples.check);
  console.log(
    `checking costs ${(check.ms / parse.ms).toFixed(2)}x the time and ${(check.peak / parse.peak).toFixed(2)}x the peak RSS of parsing; ` +
      `aim: under 2 s and 400 MB (${check.ms < 2000 && check.peak < 400 ? 'met' : 'missed'})`,
  );
}
