/**
 * The README's CDN section as a user runs it: `pipelines/cdn-origin.yaml`
 * and `pipelines/cdn-edge.yaml` as processes on two ports with the real
 * Redis as the purge channel, then a MISS, a HIT, a coalesced miss, a purge
 * by tag acknowledged by the edge, a refused unsigned path and a signed URL
 * from `streams sign`, and the edge's analytics line.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const redis = process.env.STREAMS_REDIS_URL ?? '';
const originPort = 18471;
const edgePort = 18472;
const edge = `http://127.0.0.1:${edgePort}`;
const env = { ...process.env, CDN_SIGN_KEY: randomUUID() + randomUUID() };
const edgeName = `readme-edge-${randomUUID().slice(0, 6)}`;
const children: ChildProcess[] = [];
let edgeOut = '';

function start(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['bin/streams.ts', 'run', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

async function ready(url: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never answered`);
}

const xCache = async (path: string, init?: RequestInit): Promise<string | null> => {
  const answer = await fetch(`${edge}${path}`, init);
  await answer.arrayBuffer();
  return answer.headers.get('x-cache');
};

beforeAll(async () => {
  if (!redis) throw new Error('STREAMS_REDIS_URL is not set: run `npm run services:start`');
  start(['pipelines/cdn-origin.yaml', '--param', `http=127.0.0.1:${originPort}`]);
  // The default purge channel, as the README runs it; the edge has a name of its own so the report can be read.
  const child = start(['pipelines/cdn-edge.yaml', '--param', `http=127.0.0.1:${edgePort}`, '--param', `origin=http://127.0.0.1:${originPort}`, '--param', `redis=${redis}`, '--param', `name=${edgeName}`]);
  child.stdout!.on('data', (chunk: Buffer) => (edgeOut += chunk.toString()));
  await ready(`http://127.0.0.1:${originPort}/healthz`);
  await ready(`${edge}/healthz`);
}, 30_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.on('exit', resolve)) : undefined)));
});

describe('the README CDN demo', () => {
  it('answers MISS, then HIT, and one cold object to two clients at once as MISS and COALESCED', async () => {
    expect(await xCache('/hello.txt', { method: 'HEAD' })).toBe('MISS');
    expect(await xCache('/hello.txt', { method: 'HEAD' })).toBe('HIT');
    const both = await Promise.all([xCache('/videos/catalogue.txt'), xCache('/videos/catalogue.txt')]);
    expect(both.sort()).toEqual(['COALESCED', 'MISS']);
  });

  it('purges by tag through streams purge, acknowledged by the edge by name', async () => {
    expect(await xCache('/news/today.html')).toBe('MISS');
    expect(await xCache('/news/today.html')).toBe('HIT');
    let purge = spawnSync(process.execPath, ['bin/streams.ts', 'purge', '--redis', redis, '--tag', 'news'], { encoding: 'utf8', env });
    // The edge registers on the channel a moment after it listens.
    for (let i = 0; i < 30 && !purge.stdout.includes(edgeName); i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      purge = spawnSync(process.execPath, ['bin/streams.ts', 'purge', '--redis', redis, '--tag', 'news'], { encoding: 'utf8', env });
    }
    expect(purge.stdout).toMatch(new RegExp(`applied\\s+${edgeName}\\s+1 object`));
    expect(await xCache('/news/today.html')).toBe('MISS');
  }, 20_000);

  it('refuses /private/ unsigned and serves it on a URL from streams sign', async () => {
    expect((await fetch(`${edge}/private/report.txt`)).status).toBe(403);
    const sign = spawnSync(process.execPath, ['bin/streams.ts', 'sign', '/private/report.txt', '--expires', '1h'], { encoding: 'utf8', env });
    expect(sign.status).toBe(0);
    const answer = await fetch(`${edge}${sign.stdout.trim()}`);
    expect(answer.status).toBe(200);
    expect(await answer.text()).toContain('Members only');
  });

  it('prints the edge\'s analytics every 10 s', async () => {
    // The windows are aligned to the clock: the requests above may fall in
    // two of them, so the figures are summed over the lines printed so far.
    const lines = (): Record<string, number | string>[] => edgeOut.split('\n').filter((l) => l.includes('"hit_ratio"')).map((l) => JSON.parse(l) as Record<string, number | string>);
    const sum = (field: string): number => lines().reduce((total, line) => total + Number(line[field]), 0);
    const deadline = Date.now() + 25_000;
    while (sum('requests') < 8 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(lines().length).toBeGreaterThan(0);
    for (const line of lines()) expect(line.key).toBe(edgeName);
    expect(sum('requests')).toBeGreaterThanOrEqual(8);
    expect(sum('hits')).toBeGreaterThanOrEqual(2);
  }, 30_000);
});
