/**
 * The admin server under load: a graph at full speed (four W1-like chains of
 * generated readings: filter, map, one-second windows per device,
 * aggregates, JSON to /dev/null) run by the compiled `streams run --ui`, for
 * `seconds`, with no client and then with `clients` WebSocket clients of
 * `/api/live` reading every message (rounds alternate which goes first).
 * Prints, for each, the records per CPU-second of the run's process (the
 * figure to trust on a shared machine) and per wall second, and its RSS
 * every few seconds (memory must stay flat); the aim is throughput within
 * 5 % of the run without clients.
 *
 * In the run with clients one more client stops reading as soon as it has
 * joined. After the measured window the feed is made to send more (the
 * same pipeline reloaded through `POST /api/reload`, which sends the plan
 * again) until every reader has had far more than the stalled client's
 * buffers could hold; then the bench checks that the server dropped the
 * stalled client and that every reader is still connected and still fed.
 *
 *   node bench/ui-load.ts [seconds] [clients] [rounds]   (default 60 20 1)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { buildDist, reportUsage, usage } from './dist.ts';
import { uiLoadPipeline } from './ui-load-pipeline.ts';

const seconds = Number(process.argv[2] ?? 60);
const clientCount = Number(process.argv[3] ?? 20);
const rounds = Number(process.argv[4] ?? 1);
const port = 19508;
const base = `http://127.0.0.1:${port}`;
/** Seconds the graph runs before the measured window: start-up and JIT warm-up. */
const warmUp = 5;
/** What each reader must have received after the stalled client stopped, before its drop is checked: far past its kernel buffers (4 MiB to send, its receive window) and the server's 4 MiB bound. */
const drownBytes = 24 * 1024 * 1024;

const chains = 4;
const pipelineText = uiLoadPipeline(chains);
const file = join(tmpdir(), 'ui-load.yaml');
writeFileSync(file, pipelineText);
const cli = buildDist();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** CPU seconds (user and system) the process has used so far. */
function cpuOf(pid: number): number {
  // Fields 14 and 15 of /proc/PID/stat, in clock ticks (100 a second on Linux); the command name, in parentheses, may hold spaces.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMbOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** The admin API's last sample: when it was taken, and the records the sources had emitted by then. */
async function lastSample(): Promise<{ time: number; records: number }> {
  const stats = (await (await fetch(`${base}/api/stats`)).json()) as { time: number; nodes: { node: string; records_out: number }[] };
  return { time: stats.time, records: stats.nodes.filter((n) => n.node.startsWith('readings-')).reduce((sum, n) => sum + n.records_out, 0) };
}

/**
 * The records at the feed's next sample (taken once a second) and the
 * process's CPU time read as soon as it is seen, so that both ends of the
 * measured window line up within a poll (the last sample alone may be up to
 * a second old: over a minute, up to 1.7 % off either way).
 */
async function freshSample(pid: number): Promise<{ time: number; records: number; cpu: number }> {
  const previous = await lastSample();
  for (let i = 0; i < 100; i++) {
    await sleep(25);
    const sample = await lastSample();
    if (sample.time !== previous.time) return { ...sample, cpu: cpuOf(pid) };
  }
  throw new Error('the live feed took no sample in 2.5 s');
}

interface Reader {
  socket: WebSocket;
  messages: number;
  bytes: number;
  closed: boolean;
}

function connect(): Promise<Reader> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/api/live`, ['streams.v1']);
  const reader: Reader = { socket, messages: 0, bytes: 0, closed: false };
  socket.on('message', (data: Buffer) => {
    reader.messages += 1;
    reader.bytes += data.length;
  });
  socket.on('close', () => (reader.closed = true));
  return new Promise((resolve, reject) => {
    socket.on('open', () => resolve(reader));
    socket.on('error', reject);
  });
}

interface Result {
  recordsPerCpuSecond: number;
  recordsPerSecond: number;
  rss: number[];
  stalled?: { dropped: boolean; droppedAfterMb: number; readersOpen: number; readersFedAfter: number };
}

async function run(withClients: boolean): Promise<Result> {
  const child: ChildProcess = spawn(process.execPath, [...reportUsage, cli, 'run', file, '--ui', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const pid = child.pid!;
  for (let i = 0; ; i++) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 500 || child.exitCode !== null) throw new Error(`the run did not start: ${stderr.slice(-1000)}`);
    await sleep(20);
  }
  const readers: Reader[] = [];
  let stalled: Reader | undefined;
  if (withClients) {
    for (let i = 0; i < clientCount; i++) readers.push(await connect());
    stalled = await connect();
    // Stops reading: what the server sends piles up in the kernel's buffers, then in the server's.
    (stalled.socket as unknown as { _socket: { pause(): void } })._socket.pause();
  }
  await sleep(warmUp * 1000);
  const first = await freshSample(pid);
  const rss: number[] = [rssMbOf(pid)];
  const step = Math.max(1, Math.round(seconds / 12));
  for (let t = step; t <= seconds; t += step) {
    await sleep(step * 1000);
    rss.push(rssMbOf(pid));
  }
  const last = await freshSample(pid);
  const records = last.records - first.records;
  const result: Result = { recordsPerCpuSecond: records / (last.cpu - first.cpu), recordsPerSecond: records / ((last.time - first.time) / 1000), rss };

  if (stalled) {
    const lost = readers.filter((r) => r.closed).length;
    if (lost > 0) throw new Error(`${lost} reading client(s) were disconnected during the measured window`);
    // Reloading the same text changes nothing but sends the plan again: more for every client, fast.
    const start = Math.min(...readers.map((r) => r.bytes));
    while (Math.min(...readers.map((r) => r.bytes)) - start < drownBytes) {
      const answer = await fetch(`${base}/api/reload`, { method: 'POST', body: pipelineText });
      if (answer.status !== 200) throw new Error(`reload answered ${answer.status}: ${await answer.text()}`);
    }
    const droppedAfterMb = (Math.min(...readers.map((r) => r.bytes)) - start) / 1024 / 1024;
    // Reading again, it gets what the kernel held, then the end of the connection if the server dropped it.
    (stalled.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    for (let i = 0; i < 100 && !stalled.closed; i++) await sleep(50);
    const before = readers.map((r) => r.messages);
    // The next sample, a second later, must reach every reader.
    for (let i = 0; i < 60 && readers.some((r, n) => r.messages === before[n]); i++) await sleep(50);
    result.stalled = {
      dropped: stalled.closed,
      droppedAfterMb,
      readersOpen: readers.filter((r) => !r.closed && r.socket.readyState === WebSocket.OPEN).length,
      readersFedAfter: readers.filter((r, n) => r.messages > before[n]).length,
    };
  }
  for (const reader of [...readers, ...(stalled ? [stalled] : [])]) reader.socket.terminate();
  child.kill('SIGTERM');
  await exited;
  usage(stderr);
  return result;
}

/** The middle value; of an even count, the mean of the two middle ones. */
function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
const loadBefore = loadAverage();
const none: Result[] = [];
const loaded: Result[] = [];
for (let round = 0; round < rounds; round++) {
  for (const withClients of round % 2 === 0 ? [false, true] : [true, false]) (withClients ? loaded : none).push(await run(withClients));
}
const a = median(none.map((r) => r.recordsPerCpuSecond));
const b = median(loaded.map((r) => r.recordsPerCpuSecond));
const rssLine = (r: Result): string => r.rss.map((mb) => mb.toFixed(0)).join(' ');
const lines = [
  `ui-load: ${chains} W1-like chains at full speed, ${seconds} s measured after ${warmUp} s, ${rounds} round(s)`,
  `records per CPU-second: no client ${a.toFixed(0)}, ${clientCount} clients (+1 stalled) ${b.toFixed(0)} (${(((b - a) / a) * 100).toFixed(1)} %)`,
  // Each round's two runs are back to back: their ratio sees less of the machine's load drifting than the medians do.
  `per-round ratios (clients / none): ${none.map((r, i) => `${(((loaded[i].recordsPerCpuSecond - r.recordsPerCpuSecond) / r.recordsPerCpuSecond) * 100).toFixed(1)} %`).join(', ')}; median ${(median(none.map((r, i) => loaded[i].recordsPerCpuSecond / r.recordsPerCpuSecond)) * 100 - 100).toFixed(1)} %`,
  `records per wall second: no client ${median(none.map((r) => r.recordsPerSecond)).toFixed(0)}, ${clientCount} clients ${median(loaded.map((r) => r.recordsPerSecond)).toFixed(0)}`,
  ...none.map((r, i) => `RSS MB every ${Math.max(1, Math.round(seconds / 12))} s, no client, round ${i + 1}: ${rssLine(r)}`),
  ...loaded.map((r, i) => `RSS MB every ${Math.max(1, Math.round(seconds / 12))} s, ${clientCount} clients, round ${i + 1}: ${rssLine(r)}`),
  ...loaded.map(({ stalled: s }) => (s ? `stalled client: ${s.dropped ? 'dropped' : 'NOT dropped'} (readers had ${s.droppedAfterMb.toFixed(0)} MB more); readers still open ${s.readersOpen}/${clientCount}, fed after the drop ${s.readersFedAfter}/${clientCount}` : '')),
  `load average before ${loadBefore}, after ${loadAverage()}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
