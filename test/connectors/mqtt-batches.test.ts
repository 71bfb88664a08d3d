/**
 * How MQTT messages are cut into batches and written, for latency: a large
 * socket read of mqtt.js leaves in batches of at most 128, each handed
 * downstream before the rest of the read is parsed (aedes's, in batches of
 * up to 1024 with no wait); and `mqtt.publish` writes a batch
 * larger than the socket's buffer at QoS 0 without a `drain` listener per
 * message, and goes on (never hangs) when that socket closes meanwhile.
 */
import { createServer, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import mqttPacket from 'mqtt-packet';
import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Batch } from '../../runtime/api.ts';
import mqttPublish from '../../nodes/messaging/mqtt-publish.ts';
import { brokerBatching, clientBatching, MessageBatcher, type ReceivedMessage } from '../../nodes/messaging/mqtt/messages.ts';
import { batchOf, contextWithSettings, drive, fakeContext, probeAck } from '../helpers/fake-context.ts';
import { closeClients, testClient, until } from './mqtt-harness.ts';

function message(i: number): ReceivedMessage {
  return { topic: 'sensors/a', payload: Buffer.from(JSON.stringify({ i })), qos: 0, retain: false };
}

/**
 * Feeds `count` messages read together the way mqtt.js does: each in a
 * process tick of its own, the next once the batcher calls back. Each batch
 * emitted is "written" as `mqtt.publish` writes: from a promise job, the
 * socket then uncorked in a process tick. Resolves with what happened, in order.
 */
function readTogether(count: number): Promise<string[]> {
  const events: string[] = [];
  let batches = 0;
  const ctx = contextWithSettings({ format: 'json' as const });
  const batcher = new MessageBatcher<never>(ctx, { format: 'json' }, clientBatching, () => undefined, (batch: Batch) => {
    const n = ++batches;
    events.push(`emit ${n}: ${batch.items.length}`);
    queueMicrotask(() => process.nextTick(() => events.push(`written ${n}`)));
  });
  return new Promise((resolve) => {
    const read = (i: number): void => {
      if (i === count) {
        // Every read handled: the last batch goes out from a promise job, written in a tick after it.
        setImmediate(() => resolve(events));
        return;
      }
      events.push(`read ${i}`);
      batcher.add(message(i), undefined, () => process.nextTick(read, i + 1));
    };
    process.nextTick(read, 0);
  });
}

describe('MessageBatcher', () => {
  it('hands a large read on in batches of 128, each written before the next message is read', async () => {
    const events = await readTogether(300);
    expect(events.filter((e) => e.startsWith('emit'))).toEqual(['emit 1: 128', 'emit 2: 128', 'emit 3: 44']);
    // The first batch is on the socket before message 128 is read, the second before message 256.
    expect(events.indexOf('written 1')).toBeGreaterThan(events.indexOf('read 127'));
    expect(events.indexOf('written 1')).toBeLessThan(events.indexOf('read 128'));
    expect(events.indexOf('written 2')).toBeLessThan(events.indexOf('read 256'));
    expect(events.indexOf('written 3')).toBeGreaterThan(events.indexOf('read 299'));
  });

  it('keeps a small read together, in one batch after its last message', async () => {
    const events = await readTogether(20);
    expect(events.filter((e) => !e.startsWith('read'))).toEqual(['emit 1: 20', 'written 1']);
    expect(events.indexOf('emit 1: 20')).toBeGreaterThan(events.indexOf('read 19'));
  });

  it('reads on only once downstream has room, after a full batch too', async () => {
    let open!: () => void;
    const room = new Promise<void>((resolve) => (open = resolve));
    const ctx = { ...contextWithSettings({ format: 'json' as const }), ready: () => room };
    const batcher = new MessageBatcher<never>(ctx, { format: 'json' }, clientBatching, () => undefined, () => undefined);
    let called = 0;
    for (let i = 0; i < 128; i++) batcher.add(message(i), undefined, () => called++);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(called).toBe(0);
    open();
    await until(() => called === 128, () => `${called} of 128 called back`);
  });

  it('leaves no turn waiting once stopped, and hands its reader on', () => {
    const immediates = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Immediate').length;
    const before = immediates();
    const batcher = new MessageBatcher<never>(contextWithSettings({ format: 'json' as const }), { format: 'json' }, clientBatching, () => undefined, () => undefined);
    let called = 0;
    for (let i = 0; i < 128; i++) batcher.add(message(i), undefined, () => called++);
    // The message that filled the batch waits for a turn.
    expect(called).toBe(127);
    expect(immediates()).toBe(before + 1);
    batcher.stop();
    expect(immediates()).toBe(before);
    expect(called).toBe(128);
  });

  it('cuts what aedes hands over in parallel into batches of up to 1024, with no turn between them', async () => {
    const sizes: number[] = [];
    const batcher = new MessageBatcher<never>(contextWithSettings({ format: 'json' as const }), { format: 'json' }, brokerBatching, () => undefined, (batch) => sizes.push(batch.items.length));
    let called = 0;
    for (let i = 0; i < 1500; i++) batcher.add(message(i), undefined, () => called++);
    expect(called).toBe(1500);
    expect(sizes).toEqual([1024]);
    await Promise.resolve();
    expect(sizes).toEqual([1024, 476]);
  });
});

describe('mqtt.publish at QoS 0', () => {
  afterEach(closeClients);

  it('writes a batch far larger than the socket buffer in order, acknowledged once, with no drain listener per message', async () => {
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const url = `mqtt://127.0.0.1:${port}`;
      const received: number[] = [];
      const reader = await testClient(url);
      reader.on('message', (_topic, payload) => received.push((JSON.parse(payload.toString()) as { i: number }).i));
      await reader.subscribeAsync('big/batch', { qos: 0 });
      // Some 3,000 messages of 120 bytes: 360 KB, the socket buffer 16 KB.
      const count = 3000;
      const probe = probeAck();
      const ctx = fakeContext(mqttPublish, { url, topic: 'big/batch', qos: 0 });
      const events = Array.from({ length: count }, (_, i) => ({ i, note: 'x'.repeat(100) }));
      // A first message to have the connection up: the large batch is written as it comes, not from mqtt.js's offline queue.
      const first = probeAck();
      const batches = new Subject<Batch>();
      const run = drive(mqttPublish.create(ctx), batches);
      batches.next(batchOf([{ i: -1 }], first.ack));
      await until(() => first.done === 1 && received.length === 1, () => 'the first message');
      received.length = 0;
      batches.next(batchOf(events, probe.ack));
      await until(() => probe.done === 1, () => `the batch to be acknowledged (${received.length} of ${count} received)`);
      await until(() => received.length === count, () => `${received.length} of ${count} received`);
      expect(received).toEqual(Array.from({ length: count }, (_, i) => i));
      expect(ctx.failures).toEqual([]);
      expect(ctx.bytes).toBe([{ i: -1 }, ...events].reduce((sum, event) => sum + JSON.stringify(event).length, 0));
      expect(warnings.map((w) => w.message)).toEqual([]);
      run.unsubscribe();
    } finally {
      process.off('warning', onWarning);
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      server.close();
    }
  });

  /**
   * A broker that stops reading its first connection (the client's buffers
   * fill) and reads the ones after it; and an `mqtt.publish` at QoS 0 to it
   * that has published a first message and been handed a batch of 26 MB (or one message of 30 MiB), far
   * more than the loopback socket buffers hold: it waits for a `drain` of
   * the first socket.
   */
  async function stuckPublisher(count: number, bytes = 64 * 1024) {
    const sockets: Socket[] = [];
    const closed: Socket[] = [];
    const laterReceived: number[] = [];
    const server = createServer((socket) => {
      const n = sockets.push(socket);
      socket.on('close', () => closed.push(socket));
      socket.once('data', () => {
        socket.write(Buffer.from([0x20, 2, 0, 0])); // CONNACK
        if (n === 1) {
          socket.pause();
          return;
        }
        const parser = mqttPacket.parser({ protocolVersion: 4 });
        parser.on('packet', (packet) => {
          if (packet.cmd === 'publish') laterReceived.push((JSON.parse(packet.payload.toString()) as { i: number }).i);
        });
        socket.on('data', (data: Buffer) => parser.parse(data));
      });
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    const ctx = fakeContext(mqttPublish, { url: `mqtt://127.0.0.1:${port}`, topic: 't', qos: 0 });
    const batches = new Subject<Batch>();
    const run = drive(mqttPublish.create(ctx), batches);
    const close = (): void => {
      run.unsubscribe();
      for (const socket of sockets) socket.destroy();
      server.close();
    };
    try {
      const first = probeAck();
      batches.next(batchOf([{ i: -1 }], first.ack));
      await until(() => first.done === 1, () => 'the first message');
      const probe = probeAck();
      batches.next(batchOf(Array.from({ length: count }, (_, i) => ({ i, pad: 'x'.repeat(bytes) })), probe.ack));
      await new Promise((resolve) => setImmediate(resolve));
      expect(probe.done).toBe(0);
      return { ctx, run, probe, sockets, closed, laterReceived, close };
    } catch (error) {
      close();
      throw error;
    }
  }

  it('goes on through the next connection when the socket closes while it waits for drain, counting the message lost in it', async () => {
    const count = 400;
    const { ctx, probe, sockets, laterReceived, close } = await stuckPublisher(count);
    try {
      sockets[0].destroy();
      await until(() => probe.done === 1, () => `the batch to be acknowledged (connections: ${sockets.length}, ${laterReceived.length} received on the second)`);
      await until(() => laterReceived.at(-1) === count - 1, () => `the last message on the second connection (${laterReceived.length} received)`);
      // In order, without a gap, from just after the lost message; exactly that one counted and logged once.
      const start = laterReceived[0];
      expect(laterReceived).toEqual(Array.from({ length: count - start }, (_, i) => start + i));
      expect(ctx.drops).toEqual({ 'connection lost': 1 });
      expect(ctx.logs.filter((log) => /lost with the connection/.test(log.message))).toHaveLength(1);
      expect(ctx.failures).toEqual([]);
      expect(sockets).toHaveLength(2);
    } finally {
      close();
    }
  });

  // Mid-batch: 400 messages of 64 KiB; last: the batch's one message, of 30 MiB, is the one waiting for drain.
  it.each([
    { where: 'mid-batch', count: 400, bytes: 64 * 1024 },
    { where: 'as the batch\'s last message', count: 1, bytes: 30 * 1024 * 1024 },
  ])('neither acknowledges the batch nor counts a loss when stopped while it waits for drain $where', async ({ count, bytes }) => {
    const { ctx, run, probe, sockets, closed, close } = await stuckPublisher(count, bytes);
    try {
      run.unsubscribe();
      // Read on, to see the client's end of the connection.
      sockets[0].resume();
      await until(() => closed.includes(sockets[0]), () => 'the connection to close');
      await new Promise((resolve) => setImmediate(resolve));
      expect(probe.done).toBe(0);
      expect(ctx.drops).toEqual({});
      expect(ctx.logs.filter((log) => /lost with the connection/.test(log.message))).toEqual([]);
      expect(sockets).toHaveLength(1);
    } finally {
      close();
    }
  });
});
