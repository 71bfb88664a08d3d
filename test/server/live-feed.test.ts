import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startAdminServer } from '../../runtime/server/admin.ts';
import { LiveFeed } from '../../runtime/server/live-feed.ts';
import type { LiveEvent } from '../../runtime/server/protocol.ts';
import { Taps } from '../../runtime/server/taps.ts';
import { checkYaml, startYaml } from '../helpers/pipeline.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const yaml = (where = 'n >= 0') => `
streams: 1
name: feed
nodes:
  gen: { op: generate, with: { rate: 500, fields: { n: i, secret_note: '"hidden"' } } }
  keep: { op: filter, in: gen, with: { where: "${where}" } }
  out: { op: test.collect, in: keep, with: { into: feed } }
`;

describe('the live feed (protocol v1)', () => {
  it('turns counters into per-second rates, sends states on change, and keeps the last of each for late joiners', async () => {
    const engine = startYaml(yaml());
    let clock = Date.now();
    const feed = new LiveFeed(engine, { now: () => clock });
    const events: LiveEvent[] = [];
    feed.subscribe((e) => events.push(e));
    feed.sample();
    await sleep(400);
    clock += 1000;
    feed.sample();
    const stats = events.filter((e) => e.type === 'node.stats' && e.node === 'keep').at(-1) as Extract<LiveEvent, { type: 'node.stats' }>;
    expect(stats.records_in_per_s).toBeGreaterThan(0);
    expect(stats).toMatchObject({ v: 1, graph: 'feed', node: 'keep', errors: 0, restarts: 0 });
    // States are sent when they change, not every second.
    expect(events.filter((e) => e.type === 'node.state' && e.node === 'keep')).toHaveLength(1);
    const edge = events.find((e) => e.type === 'edge.stats' && e.edge === 'gen.out->keep') as Extract<LiveEvent, { type: 'edge.stats' }>;
    expect(edge).toMatchObject({ from: 'gen', to: 'keep' });
    expect(edge.capacity).toBeGreaterThan(0);
    const snapshot = feed.snapshot();
    expect(snapshot.slice(0, 2).map((e) => e.type)).toEqual(['hello', 'graph.plan']);
    expect(snapshot.filter((e) => e.type === 'node.stats')).toHaveLength(3);
    await engine.drain();
  });

  it('after a reload sends the new plan, then reload.applied with the diff, and keeps it in the history', async () => {
    const engine = startYaml(yaml());
    const feed = new LiveFeed(engine);
    const events: LiveEvent[] = [];
    feed.subscribe((e) => events.push(e));
    const result = await engine.reload(checkYaml(yaml('n >= 1')));
    expect(result.status).toBe('applied');
    if (result.status !== 'applied') return;
    feed.recordReload({ status: 'applied', time: Date.now(), took_ms: 1, diff: result.diff, via: 'api' });
    expect(events.map((e) => e.type).slice(0, 2)).toEqual(['graph.plan', 'reload.applied']);
    expect(feed.reloads).toHaveLength(1);
    expect(feed.snapshot().at(-1)).toMatchObject({ type: 'reload.applied', reload: { diff: { replaced: ['keep'] } } });
    await engine.drain();
  });
});

describe('taps', () => {
  it('cost nothing until asked for, then sample records with secret fields redacted, and unhook when idle', async () => {
    const engine = startYaml(yaml());
    let clock = Date.now();
    const taps = new Taps(engine, { idleMs: 5000, now: () => clock });
    expect(engine.channels.every((c) => c.tap === undefined)).toBe(true);
    const records = await taps.read('gen', undefined, 3, 2000);
    expect(records).toHaveLength(3);
    expect(records[0].record).toMatchObject({ secret_note: '[redacted]' });
    expect(taps.hookedChannels).toBe(1);
    clock += 6000;
    taps.sweep();
    expect(taps.hookedChannels).toBe(0);
    expect(engine.channels.every((c) => c.tap === undefined)).toBe(true);
    await engine.drain();
  });

  it('take at most the configured records a second', async () => {
    const engine = startYaml(yaml());
    const clock = Date.now();
    const taps = new Taps(engine, { perSecond: 5, now: () => clock });
    await taps.read('gen', undefined, 200, 300);
    expect((await taps.read('gen', undefined, 200, 0)).length).toBe(5);
    taps.stop();
    await engine.drain();
  });
});

describe('the admin server', () => {
  it('drops a WebSocket client that stops reading, and keeps serving the others', async () => {
    const engine = startYaml(yaml());
    const feed = new LiveFeed(engine);
    const taps = new Taps(engine);
    const server = await startAdminServer({ listen: { host: '127.0.0.1', port: 19504 }, feed, taps, clientLimits: { messages: 2, bytes: 4096 } });
    const url = 'ws://127.0.0.1:19504/api/live';
    const slow = new WebSocket(url, ['streams.v1']);
    const fast = new WebSocket(url, ['streams.v1']);
    let fastMessages = 0;
    fast.on('message', () => (fastMessages += 1));
    await Promise.all([slow, fast].map((s) => new Promise((resolve) => s.on('open', resolve))));
    // The slow client's socket stops reading: the kernel buffers fill, then the server's.
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();
    const closed = new Promise((resolve) => slow.on('close', resolve));
    for (let i = 0; i < 400 && server.droppedClients === 0; i++) {
      for (let j = 0; j < 20; j++) feed.diagnostic({ file: 'x', line: 1, col: 1, severity: 'warning', code: 'bad_field', message: 'x'.repeat(4000) });
      await sleep(5);
    }
    expect(server.droppedClients).toBe(1);
    expect(server.clients).toBe(1);
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    await closed;
    const before = fastMessages;
    feed.sample();
    await sleep(100);
    expect(fastMessages).toBeGreaterThan(before);
    fast.close();
    await server.close();
    await engine.drain();
  });
});
