/**
 * W1, windowed IoT aggregation, end to end as a user runs it: the compiled
 * `streams run pipelines/w1-iot-rollup.yaml` (as an installed package runs
 * it, from `dist/`) against a hand-written plain JavaScript loop and a
 * hand-written RxJS pipeline over the same file, in one run. Each is a
 * whole process, timed from its start to its exit (so start-up counts),
 * with its own peak RSS; each writes its aggregates, and the three outputs
 * must agree.
 *
 *   node bench/w1.ts [readings=5000000] [rounds=3]
 *
 * Prints events per second (median of the rounds), CPU seconds (user +
 * system, the figure to trust on a busy machine, where wall time also counts
 * waiting for a core) and peak RSS for each, and the engine's ratio to each
 * baseline by wall time and by CPU time (aim: at least 0.9 of the loop).
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDist, reportUsage, root, usage } from './dist.ts';
import { ensureW1Data } from './w1-data.ts';

type Reading = { ts: number; device: string; metric: string; value: number };
type Stats = { key: string; start: number; end: number; count: number; sum: number; min: number; max: number; avg: number };

const chunkSize = 64 * 1024;

/** Lines of a file, a chunk at a time, split on `\n` (the same reading as `file.read`). */
async function* lineChunks(path: string): AsyncGenerator<string[]> {
  let carry = '';
  for await (const chunk of createReadStream(path, { highWaterMark: chunkSize, encoding: 'utf8' }) as AsyncIterable<string>) {
    const text = carry + chunk;
    const last = text.lastIndexOf('\n');
    if (last < 0) {
      carry = text;
      continue;
    }
    carry = text.slice(last + 1);
    yield text.slice(0, last).split('\n');
  }
  if (carry) yield [carry];
}

/** Tumbling one-second windows per device, closed when the watermark (largest ts) passes their end. */
class Windows {
  open = new Map<number, Map<string, Stats>>();
  watermark = -Infinity;

  add(r: Reading): void {
    if (r.ts > this.watermark) this.watermark = r.ts;
    const start = r.ts - (r.ts % 1000);
    let window = this.open.get(start);
    if (!window) this.open.set(start, (window = new Map()));
    const s = window.get(r.device);
    if (s) {
      s.count++;
      s.sum += r.value;
      if (r.value < s.min) s.min = r.value;
      if (r.value > s.max) s.max = r.value;
    } else {
      window.set(r.device, { key: r.device, start, end: start + 1000, count: 1, sum: r.value, min: r.value, max: r.value, avg: 0 });
    }
  }

  close(all = false): Stats[] {
    const out: Stats[] = [];
    for (const [start, window] of [...this.open].sort((a, b) => a[0] - b[0])) {
      if (!all && start + 1000 > this.watermark) continue;
      this.open.delete(start);
      for (const s of [...window.values()].sort((a, b) => (a.key < b.key ? -1 : 1))) {
        s.avg = s.sum / s.count;
        out.push(s);
      }
    }
    return out;
  }
}

async function plainLoop(input: string, output: string): Promise<void> {
  const windows = new Windows();
  const lines: string[] = [];
  for await (const chunk of lineChunks(input)) {
    for (const line of chunk) {
      const r = JSON.parse(line) as Reading;
      if (r.value >= 0) windows.add(r);
    }
    for (const s of windows.close()) lines.push(JSON.stringify(s));
  }
  for (const s of windows.close(true)) lines.push(JSON.stringify(s));
  writeFileSync(output, lines.join('\n') + '\n');
}

async function rxjsPipeline(input: string, output: string): Promise<void> {
  // Loaded here, so that the plain loop's process does not pay for RxJS.
  const { concat, concatMap, defer, filter, from, map, mergeMap } = await import('rxjs');
  const lines: string[] = [];
  const windows = new Windows();
  const readings$ = from(lineChunks(input)).pipe(
    concatMap((chunk) => chunk),
    map((line) => JSON.parse(line) as Reading),
    filter((r) => r.value >= 0),
    // Fold each reading in; when the watermark enters a new second, emit what it closed.
    mergeMap((r) => {
      const second = Math.floor(windows.watermark / 1000);
      windows.add(r);
      return Math.floor(r.ts / 1000) > second ? windows.close() : [];
    }),
  );
  await new Promise<void>((resolve, reject) => {
    concat(readings$, defer(() => from(windows.close(true))))
      .pipe(map((s) => JSON.stringify(s)))
      .subscribe({ next: (line) => lines.push(line), error: reject, complete: resolve });
  });
  writeFileSync(output, lines.join('\n') + '\n');
}

const baselines: Record<string, (input: string, output: string) => Promise<void>> = { 'plain loop': plainLoop, 'RxJS (hand-written)': rxjsPipeline };

/** The command line of each variant: the compiled CLI for the engine, this file in child mode for the baselines. */
function commandLine(name: string, input: string, output: string, dist: string): string[] {
  if (name === 'engine') {
    const params = ['--param', `input=${input}`, '--param', `output=${output}`];
    return [dist, 'run', join(root, 'pipelines', 'w1-iot-rollup.yaml'), ...params, '--log-level', 'info'];
  }
  return [new URL(import.meta.url).pathname, '--child', name, input, output];
}

function canonical(path: string): string[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const s = JSON.parse(line) as Stats;
      return `${s.start} ${s.key} ${s.count} ${s.sum} ${s.min} ${s.max} ${s.avg}`;
    })
    .sort();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return baselines[process.argv[3]](process.argv[4], process.argv[5]);
  const readings = Number(process.argv[2] ?? 5_000_000);
  const rounds = Number(process.argv[3] ?? 3);
  const input = join(tmpdir(), `ami-streams-w1-${readings}.ndjson`);
  await ensureW1Data(input, readings);
  const dist = buildDist();
  console.log(`load average ${loadavg().map((n) => n.toFixed(1)).join(' ')} at the start`);
  console.log(`W1: ${readings.toLocaleString('en')} readings in ${input}; ${rounds} rounds; each variant a whole process, start-up included, on node ${process.version} without flags (as the installed \`streams\` runs)`);
  const results = new Map<string, { rates: number[]; cpu: number[]; rss: number[]; output: string }>();
  /** The engine's start-up (process start to its `running` line) and run (`running` to `finished`), in seconds. */
  const phases = { startup: [] as number[], run: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    for (const name of ['engine', ...Object.keys(baselines)]) {
      const output = join(tmpdir(), `ami-streams-w1-out-${name.replace(/\W+/g, '-')}.ndjson`);
      const started = performance.now();
      const startedAt = Date.now();
      const run = spawnSync(process.execPath, [...reportUsage, ...commandLine(name, input, output, dist)], { encoding: 'utf8', maxBuffer: 1 << 24 });
      const seconds = (performance.now() - started) / 1000;
      if (run.status !== 0) throw new Error(`${name} failed: ${run.stderr}`);
      const entry = results.get(name) ?? { rates: [], cpu: [], rss: [], output };
      const { rssMb, cpuSeconds } = usage(run.stderr);
      entry.rates.push(readings / seconds);
      entry.cpu.push(cpuSeconds);
      entry.rss.push(rssMb);
      if (name === 'engine') {
        const at = (msg: string): number => Date.parse((JSON.parse(run.stderr.split('\n').find((line) => line.includes(`"msg":"${msg}"`))!) as { time: string }).time);
        phases.startup.push((at('running') - startedAt) / 1000);
        phases.run.push((at('finished') - at('running')) / 1000);
      }
      results.set(name, entry);
    }
  }
  const outputs = [...results.values()].map((r) => canonical(r.output));
  for (const [i, name] of [...results.keys()].entries()) {
    if (outputs[i].join('\n') !== outputs[0].join('\n')) throw new Error(`${name} produced different aggregates from the engine (${outputs[i].length} vs ${outputs[0].length} rows)`);
  }
  console.log(`all three produced the same ${outputs[0].length.toLocaleString('en')} aggregates`);
  const engineRate = median(results.get('engine')!.rates);
  const engineCpu = median(results.get('engine')!.cpu);
  const loopSeconds = readings / median(results.get('plain loop')!.rates);
  console.log(`engine: start-up (process start to \`running\`) ${median(phases.startup).toFixed(2)} s, pipeline (\`running\` to \`finished\`) ${median(phases.run).toFixed(2)} s; the plain loop's whole process ${loopSeconds.toFixed(2)} s`);
  for (const [name, r] of results) {
    const rate = median(r.rates);
    const cpu = median(r.cpu);
    // Rates as ratios: this one's time over the engine's, by the clock and by CPU.
    const ratio = name === 'engine' ? '' : `   engine / this: ${(engineRate / rate).toFixed(2)} by wall time, ${(cpu / engineCpu).toFixed(2)} by CPU`;
    console.log(`${name.padEnd(22)} ${(rate / 1e6).toFixed(2)} M events/s   ${cpu.toFixed(2)} s CPU   peak RSS ${median(r.rss).toFixed(0)} MB${ratio}`);
  }
}

await main();
