import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { LiveEvent } from '../../runtime/server/protocol.ts';

const dir = mkdtempSync(join(tmpdir(), 'streams-admin-'));
const port = 19501;
const token = 'tok-admin-test';
const base = `http://127.0.0.1:${port}`;
const auth = { authorization: `Bearer ${token}` };

const pipeline = (extra = ''): string =>
  [
    'streams: 1',
    'name: admin',
    'nodes:',
    '  gen:',
    '    op: generate',
    '    with:',
    '      rate: 200',
    '      fields: { n: i, password: \'"hunter2"\', note: \'"visible"\' }',
    '  keep:',
    '    op: filter',
    '    in: gen',
    '    with: { where: "n >= 0" }',
    '  sink:',
    '    op: file.write',
    '    in: keep',
    '    with: { path: "${env:ADMIN_TEST_SECRET}" }',
    extra,
  ].join('\n');

let child: ChildProcess;
let stderr = '';

async function until<T>(read: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; stderr: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const getJson = async (path: string): Promise<any> => (await fetch(base + path, { headers: auth })).json();

beforeAll(async () => {
  const file = join(dir, 'admin.yaml');
  writeFileSync(file, pipeline());
  child = spawn(process.execPath, ['bin/streams.ts', 'run', file, '--ui', `127.0.0.1:${port}`, '--ui-token', token, '--log-level', 'warn'], {
    env: { ...process.env, ADMIN_TEST_SECRET: '/dev/null' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await until(async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined), 'the admin server');
});

afterAll(async () => {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
});

describe('streams run --ui: the admin API', () => {
  it('prints the page address, never the token', () => {
    expect(stderr).toContain(`visualiser at http://127.0.0.1:${port}/`);
    expect(stderr).not.toContain(token);
  });

  it.each([
    ['GET', '/api/graph'],
    ['GET', '/api/stats'],
    ['GET', '/api/reloads'],
    ['GET', '/api/tap/gen'],
    ['POST', '/api/reload'],
  ])('answers 401 to %s %s without the token, and with a wrong one', async (method, path) => {
    expect((await fetch(base + path, { method })).status).toBe(401);
    expect((await fetch(base + path, { method, headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    // A token in the query is not accepted: only the header (and, for browsers' WebSockets, the subprotocol).
    expect((await fetch(`${base}${path}?token=${token}`, { method })).status).toBe(401);
  });

  it('refuses the WebSocket without the token with 401', async () => {
    const status = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/api/live`, ['streams.v1']);
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.on('open', () => resolve(101));
      socket.on('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('serves the plan: every node with op, ports, types, host and source line; every edge with its type', async () => {
    const plan = await getJson('/api/graph');
    expect(plan).toMatchObject({ v: 1, type: 'graph.plan', graph: 'admin' });
    expect(plan.nodes.map((n: any) => n.id)).toEqual(['gen', 'keep', 'sink']);
    const keep = plan.nodes.find((n: any) => n.id === 'keep');
    expect(keep).toMatchObject({ op: 'filter', host: 'local', source: { line: 9, col: 3 } });
    expect(keep.inputs[0].port).toBe('in');
    expect(plan.edges.map((e: any) => e.id)).toEqual(['gen.out->keep', 'keep.out->sink']);
    expect(plan.edges[0].type).toMatch(/^Event/);
  });

  it('redacts settings whose values came from ${env:...} in the plan', async () => {
    const text = JSON.stringify(await getJson('/api/graph'));
    expect(text).not.toContain('/dev/null');
    expect(text).toContain('"path":"[redacted]"');
  });

  it('reports rates above zero once records flow, and the channels with their capacity', async () => {
    const stats = await until(async () => {
      const s = await getJson('/api/stats');
      return s.nodes.find((n: any) => n.node === 'sink' && n.records_in_per_s > 0) ? s : undefined;
    }, 'a rate above 0');
    const edge = stats.edges.find((e: any) => e.edge === 'gen.out->keep');
    expect(edge.capacity).toBeGreaterThan(0);
    expect(stats.states.every((s: any) => s.state === 'running')).toBe(true);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('taps the last records through a port, with secret fields redacted', async () => {
    const tap = await getJson('/api/tap/gen/out?n=5');
    expect(tap.records.length).toBeGreaterThan(0);
    expect(tap.records.length).toBeLessThanOrEqual(5);
    expect(tap.records[0].record).toMatchObject({ password: '[redacted]', note: 'visible' });
    expect(JSON.stringify(tap)).not.toContain('hunter2');
    const missing = await fetch(`${base}/api/tap/nope`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.message).toContain('no node `nope`');
  });

  it('sends a late joiner the plan and the last state at once, then numbers every second', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/api/live`, ['streams.v1'], { headers: auth });
    const events: LiveEvent[] = [];
    socket.on('message', (data) => events.push(...(JSON.parse(String(data)) as LiveEvent[])));
    await until(async () => (events.some((e) => e.type === 'graph.plan') ? true : undefined), 'the snapshot', 3000);
    const first = events.slice();
    expect(first[0]).toMatchObject({ type: 'hello', protocol: 1, graph: 'admin' });
    expect(first.filter((e) => e.type === 'node.state').map((e) => (e as any).node).sort()).toEqual(['gen', 'keep', 'sink']);
    await until(async () => (events.length > first.length && events.slice(first.length).some((e) => e.type === 'edge.stats') ? true : undefined), 'edge.stats', 3000);
    socket.close();
  });

  it('streams tap prints the records through a port as JSON lines, secrets redacted', () => {
    const run = spawnSync(process.execPath, ['bin/streams.ts', 'tap', `127.0.0.1:${port}`, 'gen.out', '--limit', '3'], { encoding: 'utf8', env: { ...process.env, STREAMS_UI_TOKEN: token }, timeout: 15_000 });
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ password: '[redacted]', note: 'visible' });
    expect(run.stdout).not.toContain('hunter2');
  });

  it('streams top prints a row per node with its rates; without the token it says what is missing', () => {
    const run = spawnSync(process.execPath, ['bin/streams.ts', 'top', `http://127.0.0.1:${port}/`, '--token', token, '--once'], { encoding: 'utf8', timeout: 15_000 });
    expect(run.status).toBe(0);
    const rows = run.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^NODE\s+STATE\s+IN\/S\s+OUT\/S\s+QUEUE\s+DROPS\s+ERRORS\s+RESTARTS$/);
    expect(rows.slice(1).map((r) => r.split(/\s+/)[0])).toEqual(['gen', 'keep', 'sink']);
    const refused = spawnSync(process.execPath, ['bin/streams.ts', 'top', `127.0.0.1:${port}`, '--once'], { encoding: 'utf8', env: { ...process.env, STREAMS_UI_TOKEN: '' }, timeout: 15_000 });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('unauthorized: pass the run\'s --ui-token with --token or STREAMS_UI_TOKEN');
  });

  it('answers 413 to a reload body over the limit', async () => {
    const response = await fetch(`${base}/api/reload`, { method: 'POST', headers: auth, body: 'x'.repeat(1024 * 1024 + 1) });
    expect(response.status).toBe(413);
  });

  it('rejects an invalid pipeline with located diagnostics and no stack trace, changing nothing', async () => {
    const response = await fetch(`${base}/api/reload`, { method: 'POST', headers: auth, body: pipeline().replace('where:', 'wher:') });
    expect(response.status).toBe(422);
    const body = (await response.json()) as any;
    expect(body.status).toBe('rejected');
    expect(body.diagnostics[0]).toMatchObject({ line: 12, col: 13, code: 'unknown_setting' });
    expect(JSON.stringify(body)).not.toMatch(/\n\s+at /);
    const garbage = await fetch(`${base}/api/reload`, { method: 'POST', headers: auth, body: 'nodes: [\n' });
    expect(garbage.status).toBe(422);
    expect((await getJson('/api/graph')).nodes).toHaveLength(3);
  });

  it('applies a valid pipeline as --watch would, answers the diff, and pushes it to live clients', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/api/live`, ['streams.v1'], { headers: auth });
    const events: LiveEvent[] = [];
    socket.on('message', (data) => events.push(...(JSON.parse(String(data)) as LiveEvent[])));
    await until(async () => (events.some((e) => e.type === 'graph.plan') ? true : undefined), 'the snapshot', 3000);
    const joined = events.length;
    const next = pipeline('  copy:\n    op: file.write\n    in: gen\n    with: { path: /dev/null }\n').replace('n >= 0', 'n >= 1');
    const before = Date.now();
    const sent = performance.now();
    const response = await fetch(`${base}/api/reload`, { method: 'POST', headers: auth, body: next });
    const elapsed = performance.now() - sent;
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({ status: 'applied', via: 'api', diff: { kept: ['gen', 'sink'], replaced: ['keep'], added: ['copy'], removed: [] } });
    // Checking, replacing a node and starting another take time, and no more than the request took.
    expect(body.took_ms).toBeGreaterThan(0);
    expect(body.took_ms).toBeLessThanOrEqual(elapsed);
    expect(body.time).toBeGreaterThanOrEqual(before);
    expect(body.time).toBeLessThanOrEqual(Date.now());
    await until(async () => (events.slice(joined).some((e) => e.type === 'reload.applied') ? true : undefined), 'reload.applied', 3000);
    const plan = events.slice(joined).find((e) => e.type === 'graph.plan') as Extract<LiveEvent, { type: 'graph.plan' }>;
    expect(plan.nodes.map((n) => n.id)).toEqual(['gen', 'keep', 'sink', 'copy']);
    socket.close();
    const history = await getJson('/api/reloads');
    expect(history.reloads.map((r: any) => r.status)).toEqual(['rejected', 'rejected', 'applied']);
  });
});

describe('streams run --ui: exposure', () => {
  it('refuses to listen beyond loopback without a token, with a clear message', () => {
    const file = join(dir, 'exposed.yaml');
    writeFileSync(file, pipeline());
    const run = spawnSync(process.execPath, ['bin/streams.ts', 'run', file, '--ui', '0.0.0.0:19502'], { encoding: 'utf8', env: { ...process.env, STREAMS_UI_TOKEN: '', ADMIN_TEST_SECRET: 'x' } });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--ui: refusing to serve the admin API on 0.0.0.0 (not loopback) without a token');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
