import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startAdminServer } from '../../runtime/server/admin.ts';
import { LiveFeed } from '../../runtime/server/live-feed.ts';
import type { LiveEvent } from '../../runtime/server/protocol.ts';
import { Taps } from '../../runtime/server/taps.ts';
import { createMetricsRegistry } from '../../runtime/metrics.ts';
import { Engine } from '../../runtime/engine.ts';
import { checkYaml, startYaml, take, testRegistry } from '../helpers/pipeline.ts';

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

/**
 * 1,000 numbered records a tenth of a second of event time apart, in windows
 * of a second: 100 panes, each to the aggregate. With `alsoRaw`, the window
 * has a second consumer, so the pair cannot fuse and a channel carries them.
 */
const windowed = (into: string, alsoRaw: boolean) => `
streams: 1
name: fused
nodes:
  src: { op: test.count, with: { count: 1000, batch: 50 } }
  stamp: { op: map, in: src, with: { set: { ts: "n * 100.0" } } }
  win: { op: window.tumbling, in: stamp, with: { size: 1s, time: ts } }
  agg: { op: aggregate, in: win, with: { count: count() } }
  out: { op: test.collect, in: agg, with: { into: ${into} } }
${alsoRaw ? `  raw: { op: test.collect, in: win, with: { into: ${into}-raw, summary: true } }\n` : ''}`;

type EdgeEvent = Extract<LiveEvent, { type: 'edge.stats' }>;

/**
 * A feed over a running `engine` whose clock moves a second at each
 * sample, so a sample's rate is the count since the sample before:
 * `crossed` samples and returns the edge `win.out->agg`; `moreThan` samples,
 * bounded, until more than `records` panes have crossed it (they close as
 * event time passes) and returns that first sample.
 */
function watchPanes(engine: Engine): { crossed: () => EdgeEvent; moreThan: (records: number) => Promise<EdgeEvent> } {
  let clock = 0;
  const feed = new LiveFeed(engine, { now: () => clock });
  const crossed = (): EdgeEvent => {
    clock += 1000;
    feed.sample();
    return feed.stats().edges.find((e) => e.edge === 'win.out->agg')!;
  };
  const moreThan = async (records: number): Promise<EdgeEvent> => {
    let now = crossed();
    for (let i = 0; i < 200 && now.records <= records; i++) {
      await sleep(20);
      now = crossed();
    }
    expect(now.records).toBeGreaterThan(records);
    return now;
  };
  crossed();
  return { crossed, moreThan };
}
type NodeEvent = Extract<LiveEvent, { type: 'node.stats' }>;

describe('an edge fused away (a window with its aggregate)', () => {
  /** Runs the pipeline to its end and samples its counters once, a second after the start. */
  async function sampled(alsoRaw: boolean): Promise<{ events: LiveEvent[]; results: number; scrape: string }> {
    const into = `fused-${alsoRaw ? 'channel' : 'fused'}`;
    const engine = new Engine(checkYaml(windowed(into, alsoRaw)), { registry: testRegistry() });
    let clock = 0;
    const feed = new LiveFeed(engine, { now: () => clock });
    // The first sample, before anything runs, is the baseline of the rates.
    feed.sample();
    const events: LiveEvent[] = [];
    feed.subscribe((e) => events.push(e));
    engine.start();
    await engine.done;
    clock += 1000;
    feed.sample();
    const scrape = await createMetricsRegistry({ pipeline: 'fused', nodes: () => engine.nodeStats(), edges: () => engine.edgeStats() }).metrics();
    take(`${into}-raw`);
    return { events, results: take(into).length, scrape };
  }
  const edge = (events: LiveEvent[]) => events.find((e): e is EdgeEvent => e.type === 'edge.stats' && e.edge === 'win.out->agg');
  const node = (events: LiveEvent[], id: string) => events.find((e): e is NodeEvent => e.type === 'node.stats' && e.node === id)!;

  it('reports the records that crossed it, as the same pair unfused shows them, and says it is fused', async () => {
    const fused = await sampled(false);
    const channel = await sampled(true);
    expect(fused.results).toBe(100);
    expect(channel.results).toBe(100);
    // The figures a channel gives: 100 panes in a second, all handed on.
    expect(edge(channel.events)).toMatchObject({ from: 'win', to: 'agg', records: 100, records_per_s: 100, records_in_per_s: 100, records_out_per_s: 100 });
    expect(edge(channel.events)!.fused).toBeUndefined();
    // The fused edge, which has no channel, reads the same, with nothing queued and no bytes to size.
    expect(edge(fused.events)).toMatchObject({ from: 'win', to: 'agg', records: 100, records_per_s: 100, records_in_per_s: 100, records_out_per_s: 100, depth: 0, capacity: 0, drops: 0, fused: true, bytes_estimated: false });
    // So do the nodes at either end: the window's output and the aggregate's input are the panes.
    for (const { events } of [fused, channel]) {
      expect(node(events, 'win')).toMatchObject({ records_in: 1000, records_out: 100 });
      expect(node(events, 'agg')).toMatchObject({ records_in: 100, records_out: 100, records_in_per_s: 100 });
    }
    // Prometheus shows queues only: a fused edge has none (a capacity of 0 would read as full).
    expect(fused.scrape).not.toMatch(/streams_edge_queue_capacity\{[^}]*from="win.out"/);
    expect(channel.scrape).toMatch(/streams_edge_queue_capacity\{[^}]*from="win.out",to="agg"/);
  });

  it('marks the bytes of the nodes beside it as fused (not measured), not 0 B/s, and only those sides', async () => {
    const fused = await sampled(false);
    const channel = await sampled(true);
    // Unfused, the panes on the channel are sized (estimated, as events): the window's bytes out are real.
    expect(node(channel.events, 'win').bytes_out_per_s).toBeGreaterThan(0);
    expect(node(channel.events, 'agg').bytes_in_per_s).toBeGreaterThan(0);
    for (const id of ['win', 'agg']) {
      expect(node(channel.events, id).bytes_in_fused).toBeUndefined();
      expect(node(channel.events, id).bytes_out_fused).toBeUndefined();
    }
    // Fused, no panes exist to size: the window's output and the aggregate's input say so.
    expect(node(fused.events, 'win')).toMatchObject({ bytes_out_per_s: 0, bytes_out_fused: true });
    expect(node(fused.events, 'agg')).toMatchObject({ bytes_in_per_s: 0, bytes_in_fused: true });
    // Their other sides are ordinary edges, measured as ever.
    expect(node(fused.events, 'win').bytes_in_fused).toBeUndefined();
    expect(node(fused.events, 'win').bytes_in_per_s).toBeGreaterThan(0);
    expect(node(fused.events, 'agg').bytes_out_fused).toBeUndefined();
    expect(node(fused.events, 'stamp').bytes_out_fused).toBeUndefined();
  });

  it('keeps its totals across a reload that leaves the pair fused', async () => {
    const text = (where: string) => `
streams: 1
name: fused-reload
nodes:
  src: { op: test.count, with: { count: 100000000, batch: 20, every_ms: 2 } }
  keep: { op: filter, in: src, with: { where: "${where}" } }
  stamp: { op: map, in: keep, with: { set: { ts: "n * 10.0" } } }
  win: { op: window.tumbling, in: stamp, with: { size: 100ms, time: ts } }
  agg: { op: aggregate, in: win, with: { count: count() } }
  out: { op: test.collect, in: agg, with: { into: fused-reload, summary: true } }
`;
    const engine = startYaml(text('n >= 0'));
    const { crossed, moreThan } = watchPanes(engine);
    const before = await moreThan(0);
    expect(before.fused).toBe(true);
    expect((await engine.reload(checkYaml(text('n >= 1')))).status).toBe('applied');
    // At once, before more panes close: the totals ran on.
    expect(crossed()).toMatchObject({ fused: true, records: before.records });
    await moreThan(before.records);
    await engine.drain();
    take('fused-reload');
  });

  it('keeps its totals and its rate across reloads that unfuse the pair (a channel) and fuse it again', async () => {
    const text = (raw: boolean) => `
streams: 1
name: fusion-swap
nodes:
  src: { op: test.count, with: { count: 100000000, batch: 20, every_ms: 2 } }
  stamp: { op: map, in: src, with: { set: { ts: "n * 10.0" } } }
  win: { op: window.tumbling, in: stamp, with: { size: 100ms, time: ts } }
  agg: { op: aggregate, in: win, with: { count: count() } }
  out: { op: test.collect, in: agg, with: { into: fusion-swap, summary: true } }
${raw ? '  raw: { op: test.collect, in: win, with: { into: fusion-swap-raw, summary: true } }\n' : ''}`;
    const engine = startYaml(text(false));
    const { crossed, moreThan } = watchPanes(engine);
    const fused = await moreThan(0);
    expect(fused.fused).toBe(true);
    // A second consumer of the window: the pair runs apart, on a channel.
    expect((await engine.reload(checkYaml(text(true)))).status).toBe('applied');
    const unfused = crossed();
    expect(unfused.fused).toBeUndefined();
    expect(unfused.records).toBeGreaterThanOrEqual(fused.records);
    // The rate over the swap is the panes that crossed since the sample before it, neither restarted nor lost.
    expect(unfused.records_in_per_s).toBe(unfused.records - fused.records);
    const onChannel = await moreThan(unfused.records);
    // Panes flow on the channel, and its rate shows them.
    expect(onChannel.records_in_per_s).toBe(onChannel.records - unfused.records);
    expect(onChannel.records_in_per_s).toBeGreaterThan(0);
    // And back: the channel's totals run on in the fused edge.
    expect((await engine.reload(checkYaml(text(false)))).status).toBe('applied');
    const refused = crossed();
    expect(refused.fused).toBe(true);
    expect(refused.records).toBeGreaterThanOrEqual(onChannel.records);
    expect(refused.records_in_per_s).toBe(refused.records - onChannel.records);
    const fusedAgain = await moreThan(refused.records);
    expect(fusedAgain.records_in_per_s).toBe(fusedAgain.records - refused.records);
    expect(fusedAgain.records_in_per_s).toBeGreaterThan(0);
    await engine.drain();
    take('fusion-swap');
    take('fusion-swap-raw');
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
    const frames: { binary: boolean; first: unknown }[] = [];
    fast.on('message', (data: Buffer, isBinary: boolean) => {
      fastMessages += 1;
      frames.push({ binary: isBinary, first: (JSON.parse(data.toString('utf8')) as LiveEvent[])[0] });
    });
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
    // Encoded once for every client, each message still goes as a text frame of JSON: the snapshot, then the samples.
    expect(frames.every((f) => !f.binary)).toBe(true);
    expect(frames[0].first).toMatchObject({ type: 'hello', protocol: 1 });
    expect(frames.at(-1)!.first).toMatchObject({ graph: 'feed' });
    fast.close();
    await server.close();
    await engine.drain();
  });
});
