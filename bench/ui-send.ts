/**
 * What the live feed costs the server per WebSocket client: the admin
 * server in this process, its feed sampling the ui-load graph's counters
 * (28 nodes, 24 edges; the numbers change every sample) `messages` times,
 * once with no client and once with `clients` clients of `/api/live` in
 * another process reading every message; rounds alternate which goes
 * first. The CPU time of this process in each, apart, is the cost: the
 * difference over clients and messages is what one client costs the server
 * per message, that is per second at the feed's one message a second. The
 * samples are paced (every `paceMs`), so that no client falls behind the
 * server's bound on what may wait for it; pacing costs both runs the same.
 *
 *   node bench/ui-send.ts [messages] [clients] [rounds] [paceMs]   (default 1000 20 3 5)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { checkPipeline } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { registry } from '../nodes/all.ts';
import { startAdminServer } from '../runtime/server/admin.ts';
import { LiveFeed, type FeedEngine } from '../runtime/server/live-feed.ts';
import { Taps } from '../runtime/server/taps.ts';
import { EdgeStats, NodeStats } from '../runtime/stats.ts';
import { root } from './dist.ts';
import { uiLoadPipeline } from './ui-load-pipeline.ts';

const messages = Number(process.argv[2] ?? 1000);
const clientCount = Number(process.argv[3] ?? 20);
const rounds = Number(process.argv[4] ?? 3);
const paceMs = Number(process.argv[5] ?? 5);
const port = 19519;

const checked = checkPipeline({ file: 'ui-load.yaml', text: uiLoadPipeline(), registry, env: {} });
if (!checked.graph) throw new Error(checked.diagnostics.map(formatDiagnostic).join('\n'));
const graph = checked.graph;
const nodes = [...graph.nodes.keys()].map((name) => [name, new NodeStats()] as [string, NodeStats]);
const edges = graph.edges.map((e) => [{ from: `${e.from}.${e.fromPort}`, to: e.to }, new EdgeStats(16_384)] as [{ from: string; to: string }, EdgeStats]);
const engine: FeedEngine = { graph, nodeStats: () => nodes, edgeStats: () => edges };

/** Moves every counter on, as a second of a busy run would. */
function advance(step: number): void {
  for (const [, stats] of nodes) {
    stats.recordsIn += 150_000 + (step % 97);
    stats.recordsOut += 140_000 + (step % 89);
    stats.state = 'running';
  }
  for (const [, stats] of edges) {
    stats.records += 150_000 + (step % 83);
    stats.delivered += 150_000 + (step % 79);
    stats.depth = step % 1024;
  }
}

/** The readers, in a process of their own so their CPU is not counted: they print `ready`, then `done` once each has had `count` messages. */
const readerScript = `
import { WebSocket } from 'ws';
const [url, n, count] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const got = new Array(n).fill(0);
let done = false;
await Promise.all(got.map((_, i) => new Promise((resolve, reject) => {
  const socket = new WebSocket(url, ['streams.v1']);
  socket.on('message', () => {
    got[i] += 1;
    if (!done && got.every((g) => g > count)) { done = true; process.stdout.write('done\\n'); setTimeout(() => process.exit(0), 50); }
  });
  socket.on('open', resolve);
  socket.on('error', reject);
})));
process.stdout.write('ready\\n');
`;

const cpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface Run {
  cpu: number;
  messageBytes: number;
  dropped: number;
}

async function run(clients: number): Promise<Run> {
  const feed = new LiveFeed(engine, { now: Date.now });
  const server = await startAdminServer({ listen: { host: '127.0.0.1', port }, feed, taps: new Taps({ runners: new Map(), channels: [] }) });
  let messageBytes = 0;
  const sizes = feed.subscribe(function measure(event) {
    if (event.type === 'node.stats' || event.type === 'edge.stats') messageBytes += Buffer.byteLength(JSON.stringify(event));
  });
  // The readers count the snapshot too: `messages` samples give them more than `messages` messages.
  const readers = clients > 0 ? spawn(process.execPath, ['--input-type=module', '-e', readerScript, `ws://127.0.0.1:${port}/api/live`, String(clients), String(messages)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }) : undefined;
  const lines: string[] = [];
  readers?.stdout!.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n')));
  const until = async (line: string): Promise<void> => {
    for (let i = 0; i < 2000 && !lines.includes(line); i++) await sleep(10);
    if (!lines.includes(line)) throw new Error(`the readers never said \`${line}\``);
  };
  if (readers) await until('ready');
  advance(0);
  feed.sample();
  sizes();
  const started = cpuSeconds();
  for (let step = 1; step <= messages; step++) {
    advance(step);
    feed.sample();
    await sleep(paceMs);
  }
  if (readers) await until('done');
  const cpu = cpuSeconds() - started;
  const dropped = server.droppedClients;
  await server.close();
  feed.stop();
  return { cpu, messageBytes, dropped };
}

// A first pair unmeasured: JIT warm-up of both paths.
await run(0);
await run(clientCount);
const none: number[] = [];
const loaded: number[] = [];
let messageBytes = 0;
let dropped = 0;
const loadBefore = loadAverage();
for (let round = 0; round < rounds; round++) {
  for (const clients of round % 2 === 0 ? [0, clientCount] : [clientCount, 0]) {
    const result = await run(clients);
    (clients === 0 ? none : loaded).push(result.cpu);
    messageBytes = result.messageBytes;
    dropped += result.dropped;
  }
}
const median = (values: number[]): number => {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const perRound = none.map((cpu, i) => ((loaded[i] - cpu) / clientCount / messages) * 1e6);
const perClient = median(perRound);
process.stdout.write(
  [
    `ui-send: ${messages} samples of ${nodes.length} nodes and ${edges.length} edges (a message of about ${(messageBytes / 1024).toFixed(1)} KiB), every ${paceMs} ms, ${rounds} round(s)`,
    `server CPU: no client ${median(none).toFixed(3)} s, ${clientCount} clients ${median(loaded).toFixed(3)} s (medians)`,
    `per client per message (= per second at one message a second): ${perClient.toFixed(1)} µs median; rounds ${perRound.map((us) => us.toFixed(1)).join(', ')} µs`,
    `${clientCount} clients at one message a second: ${((perClient * clientCount) / 1e4).toFixed(3)} % of a core`,
    `clients dropped: ${dropped}`,
    `load average before ${loadBefore}, after ${loadAverage()}`,
  ].join('\n') + '\n',
);
