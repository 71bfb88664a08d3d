/**
 * Benchmark: `streams validate` of a 140,000-node pipeline (about 17 MiB,
 * the node mix of `check-2000`), as a user runs it: the compiled CLI
 * (`node dist/bin/streams.js validate FILE`, built afresh first), each run
 * a whole process: wall time, CPU time (user + system: the steadier figure
 * on a busy machine) and peak RSS, median of the runs. In the same run, in
 * turn with it:
 *
 * - `node -e 0`, the floor every command starts from;
 * - the `yaml` library's `parseDocument(...).toJS()` of the same file in a
 *   plain process: what reading the file costs without the checker (about
 *   7 s and 1.4 GB; `--no-parse` leaves it out);
 * - the same validate with `--max-semi-space-size=16`: a user's own cap on
 *   the young generation, under which validate still holds it at its
 *   starting size (cli/young-generation.ts);
 * - with `--baseline=DIST`, another build's `dist/bin/streams.js` (say, of
 *   the commit before: `git worktree add`, link node_modules, `node
 *   bin/build.ts`), so that a change is measured against it under the same
 *   load; both must print the same diagnostics.
 *
 * Aim (#7): validate under 2 s and 400 MB.
 *
 *   node bench/check-large.ts [nodes=140000] [runs=5] [--baseline=DIST] [--no-parse]
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDist, reportUsage, root, usage } from './dist.ts';
import { median } from './cdn-targets.ts';
import { generatePipeline } from './check-2000.ts';

const positional = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const nodeCount = Number(positional[0] ?? 140_000);
const runs = Number(positional[1] ?? 5);
const baseline = process.argv.find((arg) => arg.startsWith('--baseline='))?.slice('--baseline='.length);
const withParse = !process.argv.includes('--no-parse');

const file = join(tmpdir(), `ami-streams-check-large-${nodeCount}.yaml`);
writeFileSync(file, generatePipeline(nodeCount));
const dist = buildDist();

/** The library's parse as the checker's fallback calls it (no duplicate-key check: quadratic), in a process of its own. */
const parseAlone = [
  '--input-type=module',
  '-e',
  "import { readFileSync } from 'node:fs'; import { LineCounter, parseDocument } from 'yaml';" +
    "parseDocument(readFileSync(process.argv[1], 'utf8'), { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: false, strict: true, logLevel: 'error' }).toJS();",
  file,
];

const commands: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  ...(withParse ? { 'yaml parseDocument + toJS': parseAlone } : {}),
  'validate (dist)': [dist, 'validate', file],
  '  --max-semi-space-size=16': ['--max-semi-space-size=16', dist, 'validate', file],
  ...(baseline ? { 'validate (baseline)': [baseline, 'validate', file] } : {}),
};

interface Samples {
  wall: number[];
  cpu: number[];
  rss: number[];
}

const samples = new Map<string, Samples>(Object.keys(commands).map((name) => [name, { wall: [], cpu: [], rss: [] }]));
const outputs = new Map<string, string>();
// One warm-up round (file cache, compile cache), then the counted ones; in turn, so a busy machine slows all alike.
try {
  for (let round = -1; round < runs; round++) {
    for (const [name, args] of Object.entries(commands)) {
      const started = performance.now();
      const run = spawnSync(process.execPath, [...reportUsage, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
      const wall = (performance.now() - started) / 1000;
      if (run.status !== 0) throw new Error(`${name} exited ${run.status}: ${run.stderr.slice(0, 2000)}`);
      const { rssMb, cpuSeconds } = usage(run.stderr);
      if (round < 0) {
        // What validate printed, the usage line left out: every build must say the same.
        outputs.set(name, run.stdout + run.stderr.slice(0, run.stderr.trimEnd().lastIndexOf('\n') + 1));
        continue;
      }
      const s = samples.get(name)!;
      s.wall.push(wall);
      s.cpu.push(cpuSeconds);
      s.rss.push(rssMb);
    }
  }
} finally {
  rmSync(file);
}

const expected = `${file}: ok (${nodeCount} nodes,`;
for (const name of Object.keys(commands).filter((n) => n.includes('validate') || n.includes('semi-space'))) {
  const printed = outputs.get(name)!;
  if (!printed.startsWith(expected)) {
    console.error(`${name}: the generated pipeline does not check:\n${printed.slice(0, 2000)}`);
    process.exitCode = 1;
  } else if (printed !== outputs.get('validate (dist)')) {
    console.error(`${name} printed other diagnostics than validate (dist)`);
    process.exitCode = 1;
  }
}

console.log(`validate of a ${nodeCount}-node pipeline (node ${process.version}), median of ${runs} runs, whole processes; load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}`);
console.log(`${''.padEnd(28)} ${'wall'.padStart(8)} ${'cpu'.padStart(8)} ${'peak RSS'.padStart(9)}`);
const medians = new Map<string, { wall: number; cpu: number; rss: number }>();
for (const [name, s] of samples) {
  const m = { wall: median(s.wall), cpu: median(s.cpu), rss: median(s.rss) };
  medians.set(name, m);
  console.log(`${name.padEnd(28)} ${m.wall.toFixed(2).padStart(6)} s ${m.cpu.toFixed(2).padStart(6)} s ${m.rss.toFixed(0).padStart(5)} MiB`);
}
const validate = medians.get('validate (dist)')!;
const ratio = (of: string, to: string): string => {
  const [a, b] = [medians.get(of)!, medians.get(to)!];
  return `${(a.wall / b.wall).toFixed(2)}x wall, ${(a.cpu / b.cpu).toFixed(2)}x CPU, ${(a.rss / b.rss).toFixed(2)}x peak RSS`;
};
if (withParse) console.log(`validate costs ${ratio('validate (dist)', 'yaml parseDocument + toJS')} of the yaml library's parse alone`);
console.log(`--max-semi-space-size=16: ${ratio('  --max-semi-space-size=16', 'validate (dist)')} of validate as shipped (which still holds the young generation under that cap)`);
if (baseline) console.log(`against the baseline: ${ratio('validate (dist)', 'validate (baseline)')}`);
const peakMb = (validate.rss * 2 ** 20) / 1e6;
console.log(`aim (#7): under 2 s and 400 MB: ${validate.wall < 2 && peakMb < 400 ? 'met' : 'missed'} (${validate.wall.toFixed(2)} s wall, ${peakMb.toFixed(0)} MB peak)`);
