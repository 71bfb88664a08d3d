/**
 * Start-up: how long `streams --help` and `streams validate
 * pipelines/demo.yaml` take and how much memory they use, from the sources
 * (Node strips the types of every file it loads) and from the compiled
 * `dist/` an installed package runs, against `node -e 0` on the same Node;
 * and `streams run` of the W1 pipeline over its 4,000-reading sample, from
 * dist: a run that is mostly start-up.
 * Whole processes: wall time, CPU time (user + system: the figure to trust
 * on a busy machine) and peak RSS, median over the runs; the commands take
 * turns so a drift of the machine's speed hits them alike.
 *
 *   node bench/startup.ts [runs=15] [BASELINE]
 *
 * BASELINE: another build's `dist/bin/streams.js` (say, of the previous
 * commit: `git archive` it to a folder, link node_modules, `node
 * bin/build.ts`), whose dist commands run in turn with these, so that a
 * change is measured against it in the same run, under the same load.
 *
 * Aim: `validate` from dist under 0.3 s and 100 MB.
 */
import { spawnSync } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDist, reportUsage, root, usage } from './dist.ts';

const runs = Number(process.argv[2] ?? 15);
const dist = buildDist();
const source = join(root, 'bin', 'streams.ts');

const commands: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  '--help (sources)': [source, '--help'],
  'validate (sources)': [source, 'validate', 'pipelines/demo.yaml'],
  '--help (dist)': [dist, '--help'],
  'validate (dist)': [dist, 'validate', 'pipelines/demo.yaml'],
  'run W1 sample (dist)': [dist, 'run', 'pipelines/w1-iot-rollup.yaml', '--param', `output=${join(tmpdir(), 'ami-streams-startup-w1.ndjson')}`, '--log-level', 'warn'],
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const baseline = process.argv[3];
if (baseline) {
  for (const name of ['--help', 'validate', 'run W1 sample']) commands[`${name} (baseline)`] = [baseline, ...commands[`${name} (dist)`].slice(1)];
}

const samples = new Map(Object.keys(commands).map((name) => [name, { seconds: [] as number[], cpu: [] as number[], rss: [] as number[] }]));
// One warm-up round (file cache, compile cache), then the counted ones.
for (let round = -1; round < runs; round++) {
  for (const [name, args] of Object.entries(commands)) {
    const started = performance.now();
    const run = spawnSync(process.execPath, [...reportUsage, ...args], { cwd: root, encoding: 'utf8' });
    const seconds = (performance.now() - started) / 1000;
    if (run.status !== 0) throw new Error(`${name} exited ${run.status}: ${run.stderr}`);
    if (round < 0) continue;
    const { rssMb, cpuSeconds } = usage(run.stderr);
    samples.get(name)!.seconds.push(seconds);
    samples.get(name)!.cpu.push(cpuSeconds);
    samples.get(name)!.rss.push(rssMb);
  }
}

const base = samples.get('node -e 0')!;
const baseSeconds = median(base.seconds);
const baseCpu = median(base.cpu);
const baseRss = median(base.rss);
const ms = (seconds: number): string => `${(seconds * 1000).toFixed(0).padStart(5)} ms`;
console.log(`start-up, node ${process.version}, median of ${runs} runs (whole processes); load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}`);
console.log(`${''.padEnd(25)} ${'wall'.padStart(8)} ${'cpu'.padStart(8)} ${'peak RSS'.padStart(8)}   ratios to node -e 0 (wall, cpu, RSS)`);
for (const [name, s] of samples) {
  const [seconds, cpu, rss] = [median(s.seconds), median(s.cpu), median(s.rss)];
  const ratios = name === 'node -e 0' ? '' : `   ${(seconds / baseSeconds).toFixed(1)}x, ${(cpu / baseCpu).toFixed(1)}x, ${(rss / baseRss).toFixed(1)}x`;
  console.log(`${name.padEnd(25)} ${ms(seconds)} ${ms(cpu)} ${rss.toFixed(0).padStart(5)} MB${ratios}`);
}
const validate = samples.get('validate (dist)')!;
const ok = median(validate.seconds) < 0.3 && median(validate.rss) < 100;
console.log(`validate from dist: ${ok ? 'within' : 'outside'} the aim (under 300 ms and 100 MB)`);
if (baseline) {
  console.log(`against the baseline (${baseline}), dist / baseline by median:`);
  for (const name of ['--help', 'validate', 'run W1 sample']) {
    const [now, then] = [samples.get(`${name} (dist)`)!, samples.get(`${name} (baseline)`)!];
    console.log(`  ${name.padEnd(14)} wall ${(median(now.seconds) / median(then.seconds)).toFixed(2)}, cpu ${(median(now.cpu) / median(then.cpu)).toFixed(2)}, RSS ${(median(now.rss) / median(then.rss)).toFixed(2)}`);
  }
}
