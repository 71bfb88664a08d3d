/**
 * The three servers the CDN serving benchmarks compare, started the same
 * way for each of them (`cdn-serve.ts`, `cdn-hit-path.ts`): nginx (one
 * worker, Debian's nginx-light) serving a folder, a bare `node:http` +
 * `lru-cache` server (`cdn-bare-server.ts`) holding the same files, and the
 * edge (`cache`, run by `bin/streams.ts` from the sources) in front of that
 * nginx; optionally a second edge run from another checkout (`baseline`),
 * so two builds are compared side by side in one run; plus the figures they
 * are measured by: wrk runs and the CPU time a process has used, from /proc
 * (Linux).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './dist.ts';

/** The objects served: a 1 KB playlist and a 256 KB segment. */
export const objects = { '1KB': { path: '/small.m3u8', bytes: 1024 }, '256KB': { path: '/segment.m4s', bytes: 256 * 1024 } };
/** The three targets every run has. */
export type Compared = 'edge' | 'bare' | 'nginx';
/** A target: one of the three, or a second edge from another checkout. */
export type Target = Compared | 'baseline';
export const targetNames: readonly Compared[] = ['edge', 'bare', 'nginx'];

/** Installs wrk and nginx-light (Debian, apt-get) when they are missing. */
export function ensureTools(): void {
  const missing = ['wrk', 'nginx'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0);
  if (missing.length === 0) return;
  process.stderr.write(`installing ${missing.join(', ')} (apt-get)...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const packages = missing.map((tool) => (tool === 'nginx' ? 'nginx-light' : tool));
  const installed = spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  if (installed.status !== 0) throw new Error(`could not install ${packages.join(', ')}`);
}

function nginxConfig(work: string, files: string, port: number): string {
  return `daemon off;
worker_processes 1;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${work}/body;
  proxy_temp_path ${work}/proxy;
  fastcgi_temp_path ${work}/fastcgi;
  uwsgi_temp_path ${work}/uwsgi;
  scgi_temp_path ${work}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${files};
    add_header Cache-Control "public, max-age=3600";
  }
}
`;
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never answered`);
}

/** nginx's one worker: the master's child. */
function nginxWorker(master: number): number {
  const children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/);
  return Number(children[0]);
}

/** The running servers: each one's port and the process whose CPU it spends. */
export interface Targets {
  /** The targets started: the three, then `baseline` when asked for. */
  names: readonly Target[];
  ports: Record<Target, number>;
  pids: Record<Target, number>;
  work: string;
  /** Stops them all; resolves once the Node servers have exited (their CPU profiles, when asked for, are then written). */
  stop(): Promise<void>;
}

/** How the servers are started. */
export interface TargetOptions {
  /** The first port: nginx's; bare Node, the edge and the baseline edge take the next ones. */
  base: number;
  /** Options for the Node of a Node target (`--cpu-prof`). */
  nodeOptions?: Partial<Record<'edge' | 'bare' | 'baseline', string[]>>;
  /** Another checkout of the project: its edge runs as `baseline`, in front of the same nginx. */
  baselineRoot?: string;
  /**
   * Edges with their access log connected to the analytics a CDN pipeline
   * runs on it (`pipelines/cdn-edge.yaml`: a 10 s window per edge, request
   * count, bytes, TTFB p99), in the same process: a request then also
   * costs its access record and its share of the window.
   */
  log?: boolean;
}

/** The access-log analytics an edge runs with `log` (its output goes to stdout, which the bench ignores). */
const logAnalytics = `  per-10s:
    op: window.tumbling
    in: edge.log
    with: { size: 10s, key: edge }
  figures:
    op: aggregate
    in: per-10s
    with: { requests: count(), bytes_sent: sum(bytes), ttfb_p99_ms: "quantile(ttfb_ms, 0.99)" }
  report:
    op: stdout
    in: figures
`;

/**
 * Starts the servers on ports from `options.base` and waits until each
 * serves both objects (an edge's first two requests fill its cache: every
 * request measured afterwards is a hit).
 */
export async function startTargets(options: TargetOptions): Promise<Targets> {
  const ports: Record<Target, number> = { nginx: options.base, bare: options.base + 1, edge: options.base + 2, baseline: options.base + 3 };
  const names: Target[] = options.baselineRoot === undefined ? [...targetNames] : [...targetNames, 'baseline'];
  const work = mkdtempSync(join(tmpdir(), 'cdn-c1-'));
  // nginx's worker runs as an unprivileged user: it must be able to read the files.
  chmodSync(work, 0o755);
  const files = join(work, 'files');
  mkdirSync(files);
  writeFileSync(join(files, 'small.m3u8'), Buffer.alloc(objects['1KB'].bytes, '#'));
  writeFileSync(join(files, 'segment.m4s'), Buffer.alloc(objects['256KB'].bytes, 7));
  writeFileSync(join(work, 'nginx.conf'), nginxConfig(work, files, ports.nginx));
  const edgeFile = (target: 'edge' | 'baseline'): string => {
    const file = join(work, `${target}.yaml`);
    writeFileSync(
      file,
      `streams: 1
name: c1-${target}
nodes:
  edge:
    op: cache
    with: { listen: "127.0.0.1:${ports[target]}", origin: "http://127.0.0.1:${ports.nginx}", size: 256MiB }
${options.log === true ? logAnalytics : ''}`,
    );
    return file;
  };

  let stopping = false;
  const children: ChildProcess[] = [];
  function start(command: string, args: string[]): ChildProcess {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => {
      if (code && code !== 0 && !stopping) process.stderr.write(`${command} exited ${code}: ${stderr.slice(-1000)}\n`);
    });
    children.push(child);
    return child;
  }
  function killAll(): void {
    stopping = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  }
  process.on('exit', killAll);

  const nginx = start(existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx', ['-c', join(work, 'nginx.conf'), '-p', work]);
  const nodeOptions = options.nodeOptions ?? {};
  const bare = start(process.execPath, [...(nodeOptions.bare ?? []), join(root, 'bench', 'cdn-bare-server.ts'), files, String(ports.bare)]);
  const edges = [start(process.execPath, [...(nodeOptions.edge ?? []), join(root, 'bin', 'streams.ts'), 'run', edgeFile('edge'), '--log-level', 'warn'])];
  if (options.baselineRoot !== undefined) {
    edges.push(start(process.execPath, [...(nodeOptions.baseline ?? []), join(options.baselineRoot, 'bin', 'streams.ts'), 'run', edgeFile('baseline'), '--log-level', 'warn']));
  }
  for (const name of names) {
    for (const object of Object.values(objects)) await waitFor(`http://127.0.0.1:${ports[name]}${object.path}`);
    process.stderr.write(`${name} ready\n`);
  }
  return {
    names,
    ports,
    pids: { edge: edges[0].pid!, bare: bare.pid!, nginx: nginxWorker(nginx.pid!), baseline: edges[1]?.pid ?? 0 },
    work,
    stop() {
      // Node processes write their CPU profiles as they exit.
      const exited = [bare, ...edges].map((child) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : Promise.resolve()));
      killAll();
      return Promise.all(exited).then(() => undefined);
    },
  };
}

/** CPU time a process has used (user and system, all its threads), µs; from /proc (Linux). */
export function cpuMicros(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** CPU time a process has used in user space and in the kernel (all its threads), µs; from /proc (Linux). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: (Number(fields[11]) * 1e6) / 100, system: (Number(fields[12]) * 1e6) / 100 };
}

/**
 * Requests per second wrk measured for one URL (`-t1`, `connections`
 * keep-alive connections, `seconds`), and the server's CPU time per request
 * (µs), all of it and its user-space part: on a machine shared with other
 * work, throughput follows whoever else runs, while the CPU a request costs
 * does not. The user-space part leaves out the kernel's share (the
 * `writev` and loopback delivery, most of a small hit, the same for every
 * server): it is what a server's own code decides.
 */
export function wrk(url: string, pid: number, options: { seconds: number; connections: number }): WrkMeasure {
  const before = cpuTimes(pid);
  const run = spawnSync('wrk', wrkArguments(url, options), { encoding: 'utf8' });
  return wrkMeasure(url, run.stdout + run.stderr, before, cpuTimes(pid));
}

/** What one wrk run measured of a server. */
export interface WrkMeasure {
  perSecond: number;
  cpuPerRequest: number;
  userPerRequest: number;
  requests: number;
}

function wrkArguments(url: string, options: { seconds: number; connections: number }): string[] {
  return ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, url];
}

function wrkMeasure(url: string, output: string, before: { user: number; system: number }, after: { user: number; system: number }): WrkMeasure {
  const used = after.user + after.system - before.user - before.system;
  const match = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const count = /(\d+) requests in/.exec(output);
  if (!match || !count) throw new Error(`wrk said: ${output}`);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  if (errors) throw new Error(`${url}: ${errors[1]} error answers`);
  return { perSecond: Number(match[1]), cpuPerRequest: used / Number(count[1]), userPerRequest: (after.user - before.user) / Number(count[1]), requests: Number(count[1]) };
}

/**
 * {@link wrk} on several servers at once, one wrk each, over the same
 * seconds: whatever else the machine runs meanwhile falls on all of them
 * alike, so their figures compare far more closely than runs taken in
 * turns (on a machine at load 20, turns seconds apart differed by 2-3
 * times for the same server).
 */
export async function wrkTogether(runs: { url: string; pid: number }[], options: { seconds: number; connections: number }): Promise<WrkMeasure[]> {
  const before = runs.map((run) => cpuTimes(run.pid));
  const outputs = await Promise.all(
    runs.map(
      (run) =>
        new Promise<string>((resolve, reject) => {
          const child = spawn('wrk', wrkArguments(run.url, options), { stdio: ['ignore', 'pipe', 'pipe'] });
          let output = '';
          child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
          child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
          child.on('error', reject);
          child.on('close', () => resolve(output));
        }),
    ),
  );
  // Each server's CPU is read once every wrk has finished: none is still serving by then.
  const after = runs.map((run) => cpuTimes(run.pid));
  return runs.map((run, i) => wrkMeasure(run.url, outputs[i], before[i], after[i]));
}

export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1];

/** The machine's load average (1, 5, 15 minutes), for the printed figures. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
