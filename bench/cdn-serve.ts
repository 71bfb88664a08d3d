/**
 * C1, serving from cache: the edge (`cache`, run by `bin/streams.ts` from
 * the sources, which Node runs as they are: the request path is the same
 * code once compiled by V8, and no stale `dist/` can be measured) against a bare `node:http` + `lru-cache` server and against
 * nginx (one worker) serving the same files, a 1 KB playlist and a 256 KB
 * segment, each driven by wrk with 64 keep-alive connections on this
 * machine, targets taken in turns, rounds interleaved. The edge's origin is
 * the nginx under test; every request measured is a hit.
 *
 *   node bench/cdn-serve.ts [seconds=8] [rounds=3]
 *
 * Prints requests per second (median of the rounds) for each target and
 * size, and the edge's ratio to each baseline; and the CPU time each
 * server spent a request, the steadier figure on a shared machine. Aims: the edge at least 0.9
 * of bare Node and 0.55 of nginx for 1 KB, at least nginx for 256 KB.
 * Installs wrk and nginx-light (Debian) if they are missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './dist.ts';

const seconds = Number(process.argv[2] ?? 8);
const rounds = Number(process.argv[3] ?? 3);
const ports = { nginx: 7850, bare: 7851, edge: 7852 };
const objects = { '1KB': { path: '/small.m3u8', bytes: 1024 }, '256KB': { path: '/segment.m4s', bytes: 256 * 1024 } };

function ensureTools(): void {
  const missing = ['wrk', 'nginx'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0);
  if (missing.length === 0) return;
  process.stderr.write(`installing ${missing.join(', ')} (apt-get)...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const packages = missing.map((tool) => (tool === 'nginx' ? 'nginx-light' : tool));
  const installed = spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  if (installed.status !== 0) throw new Error(`could not install ${packages.join(', ')}`);
}

const work = mkdtempSync(join(tmpdir(), 'cdn-c1-'));
// nginx's worker runs as an unprivileged user: it must be able to read the files.
chmodSync(work, 0o755);
const files = join(work, 'files');
mkdirSync(files);
writeFileSync(join(files, 'small.m3u8'), Buffer.alloc(objects['1KB'].bytes, '#'));
writeFileSync(join(files, 'segment.m4s'), Buffer.alloc(objects['256KB'].bytes, 7));

function nginxConfig(): string {
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
    listen 127.0.0.1:${ports.nginx};
    root ${files};
    add_header Cache-Control "public, max-age=3600";
  }
}
`;
}

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
let stopping = false;
function stopAll(): void {
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
}
process.on('exit', stopAll);

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

/** CPU time a process has used (user and system, all its threads), µs; from /proc (Linux). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

/**
 * Requests per second wrk measured for one URL, and the server's CPU time
 * per request (µs): on a machine shared with other work, throughput
 * follows whoever else runs, while the CPU a request costs does not.
 */
function wrk(url: string, pid: number): { perSecond: number; cpuPerRequest: number } {
  const before = cpuMicros(pid);
  const run = spawnSync('wrk', ['-t1', '-c64', `-d${seconds}s`, url], { encoding: 'utf8' });
  const used = cpuMicros(pid) - before;
  const match = /Requests\/sec:\s+([\d.]+)/.exec(run.stdout);
  const count = /(\d+) requests in/.exec(run.stdout);
  if (!match || !count) throw new Error(`wrk said: ${run.stdout}${run.stderr}`);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(run.stdout);
  if (errors) throw new Error(`${url}: ${errors[1]} error answers`);
  return { perSecond: Number(match[1]), cpuPerRequest: used / Number(count[1]) };
}

/** nginx's one worker: the master's child. */
function nginxWorker(master: number): number {
  const children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/);
  return Number(children[0]);
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1];

ensureTools();
const cli = join(root, 'bin', 'streams.ts');
writeFileSync(join(work, 'nginx.conf'), nginxConfig());
const nginx = start(existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx', ['-c', join(work, 'nginx.conf'), '-p', work]);
const bare = start(process.execPath, [join(root, 'bench', 'cdn-bare-server.ts'), files, String(ports.bare)]);
writeFileSync(
  join(work, 'edge.yaml'),
  `streams: 1
name: c1-edge
nodes:
  edge:
    op: cache
    with: { listen: "127.0.0.1:${ports.edge}", origin: "http://127.0.0.1:${ports.nginx}", size: 256MiB }
`,
);
const edgeProcess = start(process.execPath, [cli, 'run', join(work, 'edge.yaml'), '--log-level', 'warn']);

const targets = { edge: ports.edge, bare: ports.bare, nginx: ports.nginx } as const;
type Target = keyof typeof targets;
for (const [name, port] of Object.entries(targets)) {
  for (const object of Object.values(objects)) await waitFor(`http://127.0.0.1:${port}${object.path}`);
  process.stderr.write(`${name} ready\n`);
}

const pids: Record<Target, number> = { edge: edgeProcess.pid!, bare: bare.pid!, nginx: nginxWorker(nginx.pid!) };
const results: Record<string, Record<Target, number[]>> = {};
const cpu: Record<string, Record<Target, number[]>> = {};
for (let round = 0; round < rounds; round++) {
  for (const [size, object] of Object.entries(objects)) {
    results[size] ??= { edge: [], bare: [], nginx: [] };
    cpu[size] ??= { edge: [], bare: [], nginx: [] };
    // Turns rotate so no target always runs first or last.
    const order = (Object.keys(targets) as Target[]).map((_, i, all) => all[(i + round) % all.length]);
    for (const target of order) {
      const measured = wrk(`http://127.0.0.1:${targets[target]}${object.path}`, pids[target]);
      results[size][target].push(measured.perSecond);
      cpu[size][target].push(measured.cpuPerRequest);
      process.stderr.write(`round ${round + 1} ${size} ${target}: ${Math.round(measured.perSecond)} req/s, ${measured.cpuPerRequest.toFixed(1)} µs CPU a request\n`);
    }
  }
}
stopAll();

console.log(`C1 serving from cache, wrk -t1 -c64 -d${seconds}s, median of ${rounds} rounds (req/s)`);
console.log('size    edge      bare-node  nginx     edge/bare  edge/nginx');
for (const [size, byTarget] of Object.entries(results)) {
  const edge = median(byTarget.edge);
  const bare = median(byTarget.bare);
  const nginx = median(byTarget.nginx);
  console.log(`${size.padEnd(8)}${String(Math.round(edge)).padEnd(10)}${String(Math.round(bare)).padEnd(11)}${String(Math.round(nginx)).padEnd(10)}${(edge / bare).toFixed(2).padEnd(11)}${(edge / nginx).toFixed(2)}`);
}
console.log('server CPU a request (µs, median; the ratios are requests a CPU second, edge to baseline)');
console.log('size    edge      bare-node  nginx     edge/bare  edge/nginx');
for (const [size, byTarget] of Object.entries(cpu)) {
  const edge = median(byTarget.edge);
  const bare = median(byTarget.bare);
  const nginx = median(byTarget.nginx);
  console.log(`${size.padEnd(8)}${edge.toFixed(1).padEnd(10)}${bare.toFixed(1).padEnd(11)}${nginx.toFixed(1).padEnd(10)}${(bare / edge).toFixed(2).padEnd(11)}${(nginx / edge).toFixed(2)}`);
}
console.log('aims: 1KB edge/bare >= 0.90 and edge/nginx >= 0.55; 256KB edge/nginx >= 1.00');
