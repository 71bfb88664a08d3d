/**
 * What `--ui` costs a run at full speed: W1 (`pipelines/w1-iot-rollup.yaml`
 * on generated readings) with the compiled `streams run` from `dist/`,
 * without `--ui`, and with `--ui` and clients of the live feed connected for
 * the whole run: `clients` WebSocket clients reading `/api/live`, or with
 * `browser` one Chromium page of the visualiser (the page, its assets and
 * its feed, as a user opens it). Rounds alternate which goes first. Prints
 * the median CPU time of each run's process (what to compare on a shared
 * machine, where wall time also counts waiting for a core), its wall time,
 * the ratio (the aim: under 2 % more), the part of it that is start-up
 * (the same pair of runs on one reading) and the load average.
 *
 *   node bench/ui-overhead.ts [readings] [rounds] [clients] [ws|browser]   (default 1000000 5 1 ws)
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { launchBrowser, type TestBrowser } from '../test/helpers/browser.ts';
import { buildDist, reportUsage, root, usage } from './dist.ts';
import { ensureW1Data } from './w1-data.ts';

const readings = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 5);
const clientCount = Number(process.argv[4] ?? 1);
const kind = process.argv[5] ?? 'ws';
if (kind !== 'ws' && kind !== 'browser') throw new Error(`the client kind is ws or browser, got \`${kind}\``);
const port = 19507;
const input = join(tmpdir(), `w1-${readings}.ndjson`);
await ensureW1Data(input, readings);
// One reading: what `--ui` costs once, at start (loading the server, `ws`, the first plan), apart from what it costs while records flow.
const tiny = join(tmpdir(), 'w1-1.ndjson');
await ensureW1Data(tiny, 1);
const cli = buildDist();
const browser: TestBrowser | undefined = kind === 'browser' ? await launchBrowser() : undefined;
const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loadBefore = loadAverage();

/** One run; with `ui`, clients connect as soon as the server answers and read every message until the run ends. */
async function run(ui: boolean, from = input): Promise<{ seconds: number; cpu: number; messages: number }> {
  const args = [cli, 'run', join(root, 'pipelines/w1-iot-rollup.yaml'), '--param', `input=${from}`, '--param', `output=${join(tmpdir(), 'w1-ui-out.ndjson')}`, '--log-level', 'warn'];
  if (ui) args.push('--ui', `127.0.0.1:${port}`);
  const started = performance.now();
  const child = spawn(process.execPath, [...reportUsage, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let messages = 0;
  const sockets: WebSocket[] = [];
  if (ui && browser) {
    // The page, as a user opens it: its assets, then its feed; every WebSocket frame it receives is counted.
    const page = await browser.browser.newPage();
    page.on('websocket', (socket) => socket.on('framereceived', () => (messages += 1)));
    const base = `http://127.0.0.1:${port}/`;
    let ended = false;
    void exited.then(() => (ended = true));
    while (!ended && !(await page.goto(base).then((r) => r?.ok() ?? false, () => false))) await new Promise((resolve) => setTimeout(resolve, 20));
    await exited;
    await page.close();
  } else if (ui) {
    let ended = false;
    void exited.then(() => (ended = true));
    while (!ended && sockets.length < clientCount) {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/api/live`, ['streams.v1']);
      const opened = await new Promise<boolean>((resolve) => {
        socket.on('open', () => resolve(true));
        socket.on('error', () => resolve(false));
      });
      if (opened) {
        socket.on('message', () => (messages += 1));
        sockets.push(socket);
      } else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await exited;
  for (const socket of sockets) socket.terminate();
  return { seconds: (performance.now() - started) / 1000, cpu: usage(stderr).cpuSeconds, messages };
}

const plain: { seconds: number; cpu: number }[] = [];
const withUi: { seconds: number; cpu: number }[] = [];
let messages = 0;
const startCosts: number[] = [];
for (let round = 0; round < rounds; round++) {
  // Alternate which goes first, so a drift of the machine's speed hits both alike.
  for (const ui of round % 2 === 0 ? [false, true] : [true, false]) {
    const measured = await run(ui);
    (ui ? withUi : plain).push(measured);
    messages += measured.messages;
  }
  startCosts.push((await run(true, tiny)).cpu - (await run(false, tiny)).cpu);
}
await browser?.close();
const median = (values: number[]): number => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
const cpuA = median(plain.map((r) => r.cpu));
const cpuB = median(withUi.map((r) => r.cpu));
process.stdout.write(
  `W1 ${readings} readings, ${rounds} rounds: CPU without --ui ${cpuA.toFixed(2)} s, with --ui and ${kind === 'browser' ? 'a Chromium page' : `${clientCount} WebSocket client(s)`} ${cpuB.toFixed(2)} s ` +
    `(${(((cpuB - cpuA) / cpuA) * 100).toFixed(1)} %); wall ${median(plain.map((r) => r.seconds)).toFixed(2)} s and ${median(withUi.map((r) => r.seconds)).toFixed(2)} s; ${messages} feed messages received\n` +
    `CPU of every run: ${plain.map((r) => r.cpu.toFixed(2)).join(' ')} | ${withUi.map((r) => r.cpu.toFixed(2)).join(' ')}\n` +
    // Each round's two runs ran back to back: their ratio is less exposed to the machine's drift than the medians are.
    `median of the rounds' ratios: ${((median(withUi.map((r, i) => r.cpu / plain[i].cpu)) - 1) * 100).toFixed(1)} %\n` +
    `of which start-up (a one-reading run with --ui less one without, median): ${(median(startCosts) * 1000).toFixed(0)} ms CPU, ${((median(startCosts) / cpuA) * 100).toFixed(1)} % of a run without --ui\n` +
    `load average before ${loadBefore}, after ${loadAverage()}\n`,
);
