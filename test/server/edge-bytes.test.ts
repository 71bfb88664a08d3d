import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ack } from '../../runtime/ack.ts';
import { Channel } from '../../runtime/channel.ts';
import { defaultChannel } from '../../runtime/engine.ts';
import { LiveFeed, type FeedEngine } from '../../runtime/server/live-feed.ts';
import type { LiveEvent } from '../../runtime/server/protocol.ts';
import { encodedSize } from '../../runtime/server/record-size.ts';
import { NodeStats } from '../../runtime/stats.ts';
import type { Batch } from '../../runtime/types.ts';
import { checkYaml } from '../helpers/pipeline.ts';

type Of<T extends LiveEvent['type']> = Extract<LiveEvent, { type: T }>;

const batchOf = (items: unknown[]): Batch => ({ items, ack: new Ack() });

describe('encodedSize: a record\'s size as JSON, without the JSON', () => {
  it('is the UTF-8 length of JSON.stringify for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(encodedSize(value)).toBe(Buffer.byteLength(JSON.stringify(value)));
      }),
      { numRuns: 500 },
    );
  });

  it('counts binary data as its own length, leaves out undefined fields, and ends on a cycle', () => {
    expect(encodedSize({ frame: Buffer.alloc(1000) })).toBe('{"frame":}'.length + 1000);
    expect(encodedSize({ a: 1, gone: undefined })).toBe('{"a":1}'.length);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(encodedSize(cyclic)).toBeGreaterThan(0);
  });
});

describe('a channel counts records and bytes in and out', () => {
  it('counts Bytes items\' bytes exactly as they are pushed and as they are handed on', async () => {
    const channel = new Channel('lines.out', 'decode', defaultChannel);
    channel.push(batchOf([{ data: Buffer.alloc(100) }, { text: 'hello' }]));
    // Nothing attached yet: in, but not out.
    expect(channel.stats).toMatchObject({ records: 2, delivered: 0, bytesIn: 105, bytesOut: 0 });
    const taken: Batch[] = [];
    channel.attach((batch) => taken.push(batch));
    await Promise.resolve();
    channel.push(batchOf([{ data: Buffer.alloc(10) }]));
    expect(taken).toHaveLength(2);
    expect(channel.stats).toMatchObject({ records: 3, delivered: 3, bytesIn: 115, bytesOut: 115 });
  });

  it('counts no bytes for events, and keeps the items of one batch only when a sample is asked for', () => {
    const channel = new Channel('gen.out', 'keep', defaultChannel);
    channel.attach(() => undefined);
    const first = [{ n: 1 }];
    channel.push(batchOf(first));
    expect(channel.stats.sampled).toBeUndefined();
    channel.stats.wantSample = true;
    const second = [{ n: 2 }, { n: 3 }];
    channel.push(batchOf(second));
    channel.push(batchOf([{ n: 4 }]));
    expect(channel.stats.sampled).toBe(second);
    expect(channel.stats.wantSample).toBe(false);
    expect(channel.stats.bytesIn).toBe(0);
  });
});

describe('the live feed\'s bytes per second', () => {
  const graph = checkYaml(`
streams: 1
name: bytes
nodes:
  gen: { op: generate, with: { rate: 10, fields: { n: i } } }
  keep: { op: filter, in: gen, with: { where: "n >= 0" } }
  out: { op: test.collect, in: keep, with: { into: bytes } }
`);

  /** A feed over hand-driven channels and node counters, on a clock the test moves. */
  function feedOver(channels: Channel[], nodes: Record<string, NodeStats>) {
    const engine: FeedEngine = {
      graph,
      nodeStats: () => Object.entries(nodes),
      edgeStats: () => channels.map((c) => [{ from: c.from, to: c.to }, c.stats]),
    };
    let clock = 1_000_000;
    const feed = new LiveFeed(engine, { now: () => clock });
    const events: LiveEvent[] = [];
    feed.subscribe((event) => events.push(event));
    return {
      feed,
      /** Moves the clock a second on and samples; returns that sample's events. */
      second(): LiveEvent[] {
        const from = events.length;
        clock += 1000;
        feed.sample();
        return events.slice(from);
      },
    };
  }
  const edgeOf = (events: LiveEvent[], id: string) => events.find((e): e is Of<'edge.stats'> => e.type === 'edge.stats' && e.edge === id)!;
  const nodeOf = (events: LiveEvent[], id: string) => events.find((e): e is Of<'node.stats'> => e.type === 'node.stats' && e.node === id)!;

  it('estimates an event edge\'s bytes from a sampled batch: its record rate times their mean JSON size, marked estimated', () => {
    const channel = new Channel('gen.out', 'keep', defaultChannel);
    channel.attach(() => undefined);
    const nodes = { gen: new NodeStats(), keep: new NodeStats() };
    const { second } = feedOver([channel], nodes);
    // 26 bytes each as JSON: {"device":"d1","value":20}
    const record = (value: number) => ({ device: 'd1', value });
    // No sample yet: the records are counted, their bytes not yet known.
    let events = second();
    for (let i = 0; i < 10; i++) channel.push(batchOf(Array.from({ length: 10 }, () => record(20))));
    events = second();
    expect(edgeOf(events, 'gen.out->keep')).toMatchObject({ records_in_per_s: 100, records_out_per_s: 100, records_per_s: 100, bytes_in_per_s: 2600, bytes_out_per_s: 2600, bytes_estimated: true });
    // The nodes at either end count no bytes of their own: they show their edge's.
    expect(nodeOf(events, 'keep')).toMatchObject({ bytes_in_per_s: 2600, bytes_out_per_s: 0, bytes_estimated: true });
    expect(nodeOf(events, 'gen')).toMatchObject({ bytes_out_per_s: 2600, bytes_estimated: true });
    // Bigger records, 200 of them, the next second: the new sample says so.
    for (let i = 0; i < 20; i++) channel.push(batchOf(Array.from({ length: 10 }, () => record(2000))));
    events = second();
    expect(edgeOf(events, 'gen.out->keep')).toMatchObject({ records_in_per_s: 200, bytes_in_per_s: 200 * 28 });
  });

  it('counts from zero when an edge\'s counters start again (a new channel under its id), never a negative rate', () => {
    const first = new Channel('gen.out', 'keep', defaultChannel);
    first.attach(() => undefined);
    const channels = [first];
    const { second } = feedOver(channels, { gen: new NodeStats(), keep: new NodeStats() });
    second();
    for (let i = 0; i < 50; i++) first.push(batchOf([{ n: i }, { n: i }]));
    expect(edgeOf(second(), 'gen.out->keep')).toMatchObject({ records_in_per_s: 100, records: 100 });
    const next = new Channel('gen.out', 'keep', defaultChannel);
    next.attach(() => undefined);
    channels[0] = next;
    for (let i = 0; i < 15; i++) next.push(batchOf([{ n: i }, { n: i }]));
    expect(edgeOf(second(), 'gen.out->keep')).toMatchObject({ records_in_per_s: 30, records_out_per_s: 30, records: 30 });
  });

  it('counts from zero when a node\'s counters start again (a worker\'s next engine), never a negative rate', () => {
    const nodes = { gen: new NodeStats(), keep: new NodeStats() };
    const { second } = feedOver([], nodes);
    second();
    nodes.keep.recordsIn += 500;
    nodes.keep.recordsOut += 400;
    nodes.keep.bytesWritten += 9000;
    expect(nodeOf(second(), 'keep')).toMatchObject({ records_in_per_s: 500, records_out_per_s: 400, bytes_out_per_s: 9000 });
    // The next version runs in a new engine: the node's counters are new, and lower.
    nodes.keep = new NodeStats();
    nodes.keep.recordsIn += 30;
    nodes.keep.recordsOut += 20;
    nodes.keep.bytesWritten += 600;
    expect(nodeOf(second(), 'keep')).toMatchObject({ records_in_per_s: 30, records_out_per_s: 20, bytes_out_per_s: 600, records_in: 30 });
    // And from there on, rates over the new counters.
    nodes.keep.recordsIn += 70;
    expect(nodeOf(second(), 'keep')).toMatchObject({ records_in_per_s: 70, records_out_per_s: 0 });
  });

  it('lets its sampled batch go when stopped, and the channel keeps none after', () => {
    const channel = new Channel('gen.out', 'keep', defaultChannel);
    channel.attach(() => undefined);
    const { feed, second } = feedOver([channel], { gen: new NodeStats(), keep: new NodeStats() });
    second();
    channel.push(batchOf([{ n: 1 }]));
    expect(channel.stats.sampled).toBeDefined();
    second();
    feed.stop();
    expect(channel.stats.sampled).toBeUndefined();
    channel.push(batchOf([{ n: 2 }]));
    expect(channel.stats.sampled).toBeUndefined();
  });

  it('reports counted bytes on an edge of Bytes items, not estimated, and a node\'s own I/O bytes before its edges\'', () => {
    const channel = new Channel('gen.out', 'keep', defaultChannel);
    const nodes = { gen: new NodeStats(), keep: new NodeStats() };
    const { second } = feedOver([channel], nodes);
    second();
    // A source that reads from outside counts what it read.
    nodes.gen.bytesRead += 5000;
    channel.push(batchOf([{ data: Buffer.alloc(3000) }]));
    let events = second();
    // Nothing attached: in, not yet out.
    expect(edgeOf(events, 'gen.out->keep')).toMatchObject({ bytes_in_per_s: 3000, bytes_out_per_s: 0, bytes_estimated: false });
    expect(nodeOf(events, 'gen')).toMatchObject({ bytes_in_per_s: 5000, bytes_out_per_s: 3000, bytes_estimated: false });
    channel.attach(() => undefined);
    channel.resume();
    events = second();
    expect(edgeOf(events, 'gen.out->keep')).toMatchObject({ bytes_in_per_s: 0, bytes_out_per_s: 3000, bytes_estimated: false });
    expect(nodeOf(events, 'keep')).toMatchObject({ bytes_in_per_s: 3000, bytes_estimated: false });
  });
});
