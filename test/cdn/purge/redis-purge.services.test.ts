/**
 * Purge over a real Redis (`npm run services:start`): three edges
 * listening in this process, `streams purge` spawned as a user runs it, and
 * the faults: an edge down, an edge silent for long, a cache that throws,
 * malformed messages, duplicates, an unreachable server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PurgeBusError } from '../../../nodes/cdn/purge/bus.ts';
import { purgeProtocolVersion, type PurgeAck } from '../../../nodes/cdn/purge/command.ts';
import { handlePurgeRequest } from '../../../nodes/cdn/purge/http.ts';
import { redisNames } from '../../../nodes/cdn/purge/registry.ts';
import { openPurgeSender, sendPurge } from '../../../nodes/cdn/purge/send.ts';
import { runCli, startEdge, uniqueChannel, until, type TestEdge } from './purge-harness.ts';

const url = process.env.STREAMS_REDIS_URL ?? '';
let redis: Redis;
const edges: TestEdge[] = [];

beforeAll(async () => {
  if (!url) throw new Error('STREAMS_REDIS_URL is not set: run `npm run services:start` (or `bash test/services/start.sh redis`)');
  redis = new Redis(url);
  await redis.ping();
});

afterEach(async () => {
  await Promise.all(edges.splice(0).map((edge) => edge.listener.stop()));
});

afterAll(async () => {
  // The registries the tests' edges left behind.
  const keys = await redis.keys('test:purge:*:edges');
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

async function threeEdges(channel: string, removes: Array<number | (() => number)> = [1, 1, 1]): Promise<TestEdge[]> {
  const started = await Promise.all(['edge-a', 'edge-b', 'edge-c'].map((name, i) => startEdge({ redis: url, channel }, name, removes[i])));
  edges.push(...started);
  return started;
}

describe('purge over Redis', () => {
  it('reaches all three edges once each, and `streams purge` names them all and exits 0', async () => {
    const channel = uniqueChannel('all');
    const [a, b, c] = await threeEdges(channel, [3, 0, 7]);
    const run = await runCli(['purge', '--redis', url, '--channel', channel, '--prefix', '/live/', '--timeout', '5s']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/applied by 3 of 3 edges/);
    expect(run.stdout).toMatch(/^applied {2}edge-a {2}3 objects {2}\d+\.\d ms$/m);
    expect(run.stdout).toMatch(/^applied {2}edge-b {2}0 objects/m);
    expect(run.stdout).toMatch(/^applied {2}edge-c {2}7 objects/m);
    for (const edge of [a, b, c]) expect(edge.calls).toEqual([{ kind: 'prefix', value: '/live/', soft: false }]);
  });

  it('passes url, tag and soft through to each cache', async () => {
    const channel = uniqueChannel('kinds');
    const [a] = await threeEdges(channel);
    expect((await runCli(['purge', '--redis', url, '--channel', channel, '/v/a.m3u8'])).code).toBe(0);
    expect((await runCli(['purge', '--redis', url, '--channel', channel, '--tag', 'match-42', '--soft'])).code).toBe(0);
    expect(a.calls).toEqual([
      { kind: 'url', value: '/v/a.m3u8', soft: false },
      { kind: 'tag', value: 'match-42', soft: true },
    ]);
  });

  it('names an edge that is down (registered, not acknowledging) and exits 1 after the timeout', async () => {
    const channel = uniqueChannel('down');
    const [a, b, c] = await threeEdges(channel);
    await c.listener.stop();
    const run = await runCli(['purge', '--redis', url, '--channel', channel, '--url', '/x', '--timeout', '1s']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/applied by 2 of 3 edges/);
    expect(run.stdout).toMatch(/^missing {2}edge-c {2}no acknowledgement within 1000 ms$/m);
    expect(run.ms).toBeGreaterThanOrEqual(1000);
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(1);
    expect(c.calls).toHaveLength(0);
  });

  it('reports an edge silent past the alive window as down without waiting for it', async () => {
    const channel = uniqueChannel('stale');
    await threeEdges(channel);
    await redis.zadd(redisNames(channel).registry, Date.now() - 60_000, 'edge-gone');
    const started = performance.now();
    const report = await sendPurge({ redis: url, channel }, { kind: 'url', value: '/x', soft: false }, 5_000);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(report.applied.map((entry) => entry.edge)).toEqual(['edge-a', 'edge-b', 'edge-c']);
    expect(report.missing).toEqual(['edge-gone']);
    expect(report.stale[0].edge).toBe('edge-gone');
    const run = await runCli(['purge', '--redis', url, '--channel', channel, '--url', '/x']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^missing {2}edge-gone {2}down: last heartbeat 6\d s ago$/m);
  });

  it('reports an edge whose cache throws as failed, with the reason, and exits 1', async () => {
    const channel = uniqueChannel('throws');
    const [, , c] = await threeEdges(channel, [1, 1, () => {
      throw new Error('store is closed');
    }]);
    const run = await runCli(['purge', '--redis', url, '--channel', channel, '--url', '/x']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^failed {3}edge-c {2}store is closed$/m);
    expect(c.log.lines.some((line) => line.startsWith('error') && line.includes('store is closed'))).toBe(true);
  });

  it('ignores malformed messages with a log line and goes on applying the next command', async () => {
    const channel = uniqueChannel('malformed');
    const [a] = await threeEdges(channel);
    await redis.publish(channel, 'not json at all');
    await redis.publish(channel, JSON.stringify({ v: 1, type: 'purge', id: 'abcdefgh12', selector: { kind: 'everything', value: '/', soft: false }, sent_at: 1 }));
    await redis.publish(channel, JSON.stringify({ v: 2, type: 'purge' }));
    await until('three warnings', () => a.log.lines.filter((line) => line.startsWith('warn')).length >= 3);
    expect(a.log.lines[0]).toMatch(/^warn purge listener `edge-a`: ignored a message on `test:purge:malformed:[0-9a-f]+`: not JSON/);
    expect(a.log.lines[1]).toMatch(/`selector.kind`/);
    expect(a.log.lines[2]).toMatch(/protocol version 2 is not 1/);
    expect(a.calls).toHaveLength(0);
    const report = await sendPurge({ redis: url, channel }, { kind: 'url', value: '/after', soft: false }, 5_000);
    expect(report.applied).toHaveLength(3);
    expect(a.calls).toEqual([{ kind: 'url', value: '/after', soft: false }]);
  });

  it('applies a command seen twice once, and acknowledges both times', async () => {
    const channel = uniqueChannel('dup');
    const [a, b, c] = await threeEdges(channel);
    const replies = new Redis(url);
    const acks: PurgeAck[] = [];
    replies.on('message', (_channel: string, text: string) => acks.push(JSON.parse(text) as PurgeAck));
    await replies.subscribe(redisNames(channel).acks);
    const command = JSON.stringify({ v: purgeProtocolVersion, type: 'purge', id: 'dupdupdup1', selector: { kind: 'tag', value: 't', soft: false }, sent_at: Date.now() });
    await redis.publish(channel, command);
    await redis.publish(channel, command);
    await until('six acks', () => acks.length >= 6);
    await replies.quit();
    for (const edge of [a, b, c]) expect(edge.calls).toHaveLength(1);
    expect(acks.filter((ack) => ack.edge === 'edge-a')).toHaveLength(2);
  });

  it('says no edge is registered on an empty channel, and exits 1', async () => {
    const run = await runCli(['purge', '--redis', url, '--channel', uniqueChannel('empty'), '--url', '/x']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/no edge is registered on this channel/);
  });

  it('fails with one clear line when Redis cannot be reached', async () => {
    const run = await runCli(['purge', '--redis', 'redis://127.0.0.1:18251', '--url', '/x']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^streams: cannot connect to the purge bus \(Redis\) at redis:\/\/127\.0\.0\.1:18251/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('keeps one sender open for many purges, each acknowledged by all three', async () => {
    const channel = uniqueChannel('many');
    const [a] = await threeEdges(channel);
    const sender = await openPurgeSender({ redis: url, channel });
    try {
      for (let i = 0; i < 20; i++) {
        const report = await sender.send({ kind: 'url', value: `/s/${i}`, soft: false }, 5_000);
        expect(report.applied).toHaveLength(3);
      }
    } finally {
      await sender.close();
    }
    expect(a.calls).toHaveLength(20);
  });

  it('goes on after Redis drops the edge\'s and the sender\'s connections: both reconnect and subscribe again', async () => {
    const channel = uniqueChannel('reconnect');
    const name = `edge-r-${channel.slice(-8)}`;
    const edge = await startEdge({ redis: url, channel }, name);
    edges.push(edge);
    const sender = await openPurgeSender({ redis: url, channel });
    try {
      expect((await sender.send({ kind: 'url', value: '/before', soft: false }, 5_000)).applied).toHaveLength(1);
      const subscribedIds = async (connectionName: string): Promise<string[]> => {
        const list = (await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
        return list.split('\n').filter((line) => line.includes(` name=${connectionName} `)).map((line) => /^id=(\d+)/.exec(line)?.[1] ?? '');
      };
      const [listening] = await subscribedIds(`ami-streams:${name}:purge-listen`);
      const [replies] = await subscribedIds('ami-streams:purge:replies');
      await redis.call('CLIENT', 'KILL', 'ID', listening);
      await redis.call('CLIENT', 'KILL', 'ID', replies);
      let back = false;
      const deadline = Date.now() + 10_000;
      while (!back && Date.now() < deadline) {
        const [edgeNow, senderNow] = await Promise.all([subscribedIds(`ami-streams:${name}:purge-listen`), subscribedIds('ami-streams:purge:replies')]);
        back = edgeNow.length === 1 && edgeNow[0] !== listening && senderNow.length === 1 && senderNow[0] !== replies;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(back).toBe(true);
      const report = await sender.send({ kind: 'url', value: '/after', soft: false }, 5_000);
      expect(report.applied.map((entry) => entry.edge)).toEqual([name]);
      expect(edge.calls.map((call) => call.value)).toEqual(['/before', '/after']);
      expect(edge.log.lines.some((line) => line.startsWith('error') && line.includes('cannot reach Redis'))).toBe(true);
    } finally {
      await sender.close();
    }
  });

  it('survives a restart of its Redis: a kept sender fails while it is down, then edge and sender reconnect and purge again', async () => {
    // A Redis of our own on a port of ours: the shared one must not restart under other tests.
    const port = 18252;
    const own = `redis://127.0.0.1:${port}`;
    const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    const startServer = async (): Promise<ChildProcess> => {
      const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      for (let attempt = 0; ; attempt++) {
        const client = new Redis(own, { lazyConnect: true, retryStrategy: () => null });
        client.on('error', () => undefined);
        const up = await client.connect().then(() => true, () => false);
        client.disconnect();
        if (up) return server;
        if (attempt > 100) throw new Error(`redis-server did not start on port ${port}`);
        await pause(50);
      }
    };
    const stopServer = (server: ChildProcess): Promise<void> => new Promise((resolve) => {
      server.once('exit', () => resolve());
      server.kill('SIGKILL');
    });
    let server = await startServer();
    try {
      const edge = await startEdge({ redis: own, channel: 'purge', heartbeatMs: 200 }, 'edge-restart');
      edges.push(edge);
      const sender = await openPurgeSender({ redis: own, channel: 'purge' });
      try {
        expect((await sender.send({ kind: 'url', value: '/before', soft: false }, 5_000)).applied).toHaveLength(1);
        await stopServer(server);
        await expect(sender.send({ kind: 'url', value: '/down', soft: false }, 1_000)).rejects.toBeInstanceOf(PurgeBusError);
        // Down longer than the few quick attempts a fail-fast client makes.
        await pause(2_500);
        server = await startServer();
        // Redis keeps nothing across the restart: the registry fills again from the heartbeats.
        const check = new Redis(own);
        for (let i = 0; i < 200 && (await check.zscore('purge:edges', 'edge-restart')) === null; i++) await pause(50);
        check.disconnect();
        // Both reconnect with backoff: the sender refuses (bus_unreachable) until its reply subscription is back.
        let report = await sender.send({ kind: 'url', value: '/after', soft: false }, 5_000).catch((error: unknown) => error as PurgeBusError);
        for (let i = 0; i < 100 && report instanceof PurgeBusError; i++) {
          await pause(100);
          report = await sender.send({ kind: 'url', value: '/after', soft: false }, 5_000).catch((error: unknown) => error as PurgeBusError);
        }
        if (report instanceof PurgeBusError) throw report;
        expect(report.applied.map((entry) => entry.edge)).toEqual(['edge-restart']);
        expect(edge.calls.map((call) => call.value)).toEqual(['/before', '/after']);
      } finally {
        await sender.close();
      }
    } finally {
      await Promise.all(edges.splice(0).map((edge) => edge.listener.stop()));
      await stopServer(server);
    }
  });

  it('answers POST /api/v1/cdn/cache/purge bodies: 200 when all applied, 504 naming the missing edge', async () => {
    const channel = uniqueChannel('http');
    const [, , c] = await threeEdges(channel);
    const ok = await handlePurgeRequest('{"prefix":"/live/","soft":true}', { redis: url, channel });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ complete: true, selector: { kind: 'prefix', value: '/live/', soft: true }, missing: [] });
    await c.listener.stop();
    const partial = await handlePurgeRequest({ url: '/x', timeout: '500ms' }, { redis: url, channel });
    expect(partial.status).toBe(504);
    expect(partial.json).toMatchObject({ complete: false, missing: ['edge-c'] });
    const none = await handlePurgeRequest({ url: '/x' }, { redis: url, channel: uniqueChannel('none') });
    expect(none.status).toBe(503);
  });
});
