/**
 * Benchmark: validating a 140,000-node pipeline (about 10 MB, the node mix of
 * `check-2000`), wall time, CPU time and peak RSS, against only parsing its
 * YAML (`yaml`'s parseDocument) in the same run. The text is generated once
 * into a file; each measurement runs in its own child process that reads
 * that file, as `streams validate` does, so that its peak RSS is its own.
 * The check runs twice over: with Node's default young generation, and with
 * `--max-semi-space-size=16` (a smaller one: fewer pages committed at the peak).
 * Aim: under 2 s and 400 MB.
 *
 *   node bench/check-large.ts [node count] [runs]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LineCounter, parseDocument } from 'yaml';
import { checkPipeline } from '../graph/check.ts';
import { registry } from '../nodes/all.ts';
import { generatePipeline } from './check-2000.ts';

const nodeCount = Number(process.argv[2] ?? 140_000);
const runs = Number(process.argv[3] ?? 3);

interface Sample {
  ms: number;
  cpuMs: number;
  peakMiB: number;
  baseMiB: number;
  bytes: number;
  nodes?: number;
  errors?: number;
}

const file = join(tmpdir(), `ami-streams-check-large-${nodeCount}.yaml`);

/** One measurement in this process: read the file, then time the action; peak RSS from the kernel's high-water mark. */
function measure(what: 'parse' | 'check'): Sample {
  const text = readFileSync(file, 'utf8');
  const baseMiB = process.memoryUsage().rss / 2 ** 20;
  const cpu = process.cpuUsage();
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
  const used = process.cpuUsage(cpu);
  return { ms, cpuMs: (used.user + used.system) / 1000, peakMiB: process.resourceUsage().maxRSS / 1024, baseMiB, bytes: text.length, nodes, errors };
}

/** The young generation's semi-space, in MB, of the second check. */
const smallSemiSpace = 16;

function child(what: 'parse' | 'check', nodeFlags: string[] = []): Sample {
  const out = execFileSync(process.execPath, [...nodeFlags, import.meta.filename, String(nodeCount), String(runs), `--child=${what}`], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as Sample;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

const mode = process.argv.find((arg) => arg.startsWith('--child='))?.slice('--child='.length) as 'parse' | 'check' | undefined;
if (mode) {
  process.stdout.write(JSON.stringify(measure(mode)));
} else {
  writeFileSync(file, generatePipeline(nodeCount));
  const samples: Record<'parse' | 'check' | 'checkSmallYoung', Sample[]> = { parse: [], check: [], checkSmallYoung: [] };
  // Interleaved, so a busy machine slows all alike.
  for (let i = 0; i < runs; i++) {
    for (const what of ['parse', 'check'] as const) samples[what].push(child(what));
    samples.checkSmallYoung.push(child('check', [`--max-semi-space-size=${smallSemiSpace}`]));
  }
  const [first] = samples.check;
  if (first.errors !== 0 || first.nodes !== nodeCount) {
    console.error(`the generated pipeline does not check: ${first.errors} errors, ${first.nodes} nodes`);
    process.exitCode = 1;
  }
  rmSync(file);
  console.log(`pipeline: ${nodeCount} nodes, ${(first.bytes / 2 ** 20).toFixed(1)} MiB of YAML; ${runs} runs each, medians; load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}`);
  const row = (label: string, list: Sample[]) => {
    const ms = median(list.map((s) => s.ms));
    const peak = median(list.map((s) => s.peakMiB));
    console.log(`${label.padEnd(28)} ${ms.toFixed(0).padStart(6)} ms wall ${median(list.map((s) => s.cpuMs)).toFixed(0).padStart(6)} ms CPU   peak RSS ${peak.toFixed(0).padStart(5)} MiB (file read: ${median(list.map((s) => s.baseMiB)).toFixed(0)} MiB)`);
    return { ms, peak };
  };
  const parse = row('yaml parseDocument + toJS', samples.parse);
  const check = row('checkPipeline', samples.check);
  const small = row(`  --max-semi-space-size=${smallSemiSpace}`, samples.checkSmallYoung);
  console.log(
    `checking costs ${(check.ms / parse.ms).toFixed(2)}x the time and ${(check.peak / parse.peak).toFixed(2)}x the peak RSS of parsing; ` +
      `aim: under 2 s and 400 MB (${check.ms < 2000 && check.peak < 400 ? 'met' : 'missed'}; ` +
      `with --max-semi-space-size=${smallSemiSpace}: ${(small.peak / check.peak).toFixed(2)}x the peak RSS, ${small.ms < 2000 && small.peak < 400 ? 'met' : 'missed'})`,
  );
}
