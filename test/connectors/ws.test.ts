/**
 * `ws.server` and `ws.client` through the engine, against real sockets on
 * loopback: round trips both ways, the connection limit, slow and dead
 * clients, the bearer token, reconnection, and a port already taken.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import wsServer from '../../nodes/io/ws-server.ts';
import wsClient from '../../nodes/io/ws-client.ts';
import type { Engine } from '../../runtime/engine.ts';
import { VirtualClock } from '../helpers/fake-context.ts';
import { checkWith, collector, dropsOf, feed, freePort, recordingLogger, retainedMemory, startPipeline, until } from './http-harness.ts';

const engines: Engine[] = [];

const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(engines.splice(0).map((engine) => engine.drain({ deadlineMs: 5_000 })));
});

function run(yaml: string, ops: Parameters<typeof startPipeline>[1], log = recordingLogger(), clock?: VirtualClock): Engine {
  const engine = startPipeline(yaml, [wsServer, wsClient, ...ops], { log, clock });
  engines.push(engine);
  return engine;
}

/** Connects once the server listens (it binds asynchronously after the engine starts). */
async function connect(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const socket = new WebSocket(url, options);
    const outcome = await new Promise<Error | undefined>((resolve) => {
      socket.once('open', () => resolve(undefined));
      socket.once('error', (error) => resolve(error));
    });
    if (!outcome) {
      sockets.push(socket);
      return socket;
    }
    if (!/ECONNREFUSED/.test(outcome.message) || Date.now() > deadline) throw outcome;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The HTTP status with which a handshake is refused, or 101 when it is not. */
function handshakeStatus(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options);
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', (error) => {
      if (!/Unexpected server response|closed before/.test(error.message)) reject(error);
    });
  });
}

function messages(socket: WebSocket): string[] {
  const seen: string[] = [];
  socket.on('message', (data) => seen.push(data.toString()));
  return seen;
}

function serverPipeline(port: number, settings: string): string {
  return `streams: 1
name: ws-server
nodes:
  feed:
    op: test.feed
  server:
    op: ws.server
    in: feed
    with: { listen: "127.0.0.1:${port}", ${settings} }
  received:
    op: test.collect
    in: server
`;
}

/** A pipeline whose `test.to-server` records a `ws.client` node (at line 6) sends, with these settings. */
function clientPipeline(settings: string): string {
  return `streams: 1
name: ws-client
nodes:
  inbound:
    op: test.to-server
  client:
    op: ws.client
    in: inbound
    with: { ${settings} }
`;
}

describe('ws.server', () => {
  it('sends input records to every client, one client when addressed, and emits what clients send', async () => {
    const port = await freePort();
    const source = feed();
    const sink = collector();
    run(serverPipeline(port, 'path: /feed, format: json, client_field: client'), [source.op, sink.op]);
    const alice = await connect(`ws://127.0.0.1:${port}/feed`);
    const bob = await connect(`ws://127.0.0.1:${port}/feed`);
    const toAlice = messages(alice);
    const toBob = messages(bob);

    source.push({ n: 1 }, { n: 2 });
    await until(() => toAlice.length === 2 && toBob.length === 2, 'the broadcast');
    expect(toAlice).toEqual(['{"n":1}', '{"n":2}']);

    alice.send(JSON.stringify({ hello: 'from alice' }));
    bob.send('not json');
    await sink.waitFor(1);
    const [received] = sink.records as { hello: string; client: string }[];
    expect(received.hello).toBe('from alice');
    expect(received.client).toMatch(/^[0-9a-f-]{36}$/);

    // A reply addressed by the client field reaches only that client, without the field.
    source.push({ client: received.client, reply: 'only for alice' });
    await until(() => toAlice.length === 3, 'the addressed reply');
    expect(toAlice[2]).toBe('{"reply":"only for alice"}');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(toBob).toHaveLength(2);
  });

  it('emits Bytes with the client id and path, and refuses paths it does not serve', async () => {
    const port = await freePort();
    const source = feed();
    const sink = collector();
    run(serverPipeline(port, 'path: [/a, /b]'), [source.op, sink.op]);
    const socket = await connect(`ws://127.0.0.1:${port}/b`);
    socket.send('plain text');
    socket.send(Buffer.from([1, 2, 3]));
    await sink.waitFor(2);
    const [text, binary] = sink.records as { text?: string; data?: Buffer; meta: { client: string; path: string } }[];
    expect(text.text).toBe('plain text');
    expect(text.meta.path).toBe('/b');
    expect(text.meta.client).toEqual(binary.meta.client);
    expect([...binary.data!]).toEqual([1, 2, 3]);
    expect(await handshakeStatus(`ws://127.0.0.1:${port}/c`)).toBe(404);
  });

  it('hands a large batch whole to a client that keeps up', async () => {
    const port = await freePort();
    const source = feed();
    const engine = run(serverPipeline(port, 'client_queue: { messages: 16, bytes: 64KiB }'), [source.op, collector().op]);
    const socket = await connect(`ws://127.0.0.1:${port}/`);
    const seen = messages(socket);
    source.push(...Array.from({ length: 5000 }, (_, i) => ({ i })));
    await until(() => seen.length === 5000, 'all 5000 messages');
    expect(dropsOf(engine, 'server').get('slow_client')).toBeUndefined();
  });

  it('closes connections past max_connections with code 1013', async () => {
    const port = await freePort();
    run(serverPipeline(port, 'max_connections: 2'), [feed().op, collector().op]);
    await connect(`ws://127.0.0.1:${port}/`);
    await connect(`ws://127.0.0.1:${port}/`);
    const third = await connect(`ws://127.0.0.1:${port}/`);
    const code = await new Promise<number>((resolve) => third.once('close', (closeCode) => resolve(closeCode)));
    expect(code).toBe(1013);
  });

  it('requires the bearer token when one is set, as a header or a query parameter', async () => {
    const port = await freePort();
    run(serverPipeline(port, 'token: s3cret-token'), [feed().op, collector().op]);
    const url = `ws://127.0.0.1:${port}/`;
    await connect(url, { headers: { Authorization: 'Bearer s3cret-token' } });
    expect(await handshakeStatus(url)).toBe(401);
    expect(await handshakeStatus(url, { headers: { Authorization: 'Bearer wrong' } })).toBe(401);
    expect(await handshakeStatus(`${url}?token=s3cret-tokem`)).toBe(401);
    expect(await handshakeStatus(`${url}?token=s3cret-token`)).toBe(101);
  });

  it('terminates a client that stops answering pings', async () => {
    const port = await freePort();
    const log = recordingLogger();
    run(serverPipeline(port, 'ping_interval: 200ms'), [feed().op, collector().op], log);
    const healthy = await connect(`ws://127.0.0.1:${port}/`);
    const dead = await connect(`ws://127.0.0.1:${port}/`, { autoPong: false });
    const closed = new Promise<number>((resolve) => dead.once('close', (code) => resolve(code)));
    // Terminated without a close frame: the client sees an abnormal closure.
    expect(await closed).toBe(1006);
    expect(healthy.readyState).toBe(WebSocket.OPEN);
    expect(log.entries.some((e) => e.message.includes('did not answer a ping'))).toBe(true);
  });

  it('pings on the runtime\'s clock: a silent client is terminated at the second `ping_interval`, not before', async () => {
    const port = await freePort();
    const clock = new VirtualClock(Date.now());
    run(serverPipeline(port, 'ping_interval: 15s'), [feed().op, collector().op], recordingLogger(), clock);
    const healthy = await connect(`ws://127.0.0.1:${port}/`);
    const dead = await connect(`ws://127.0.0.1:${port}/`, { autoPong: false });
    let closedWith: number | undefined;
    dead.once('close', (code) => (closedWith = code));
    const pinged = new Promise((resolve) => dead.once('ping', resolve));
    clock.advance(15_000);
    await pinged;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closedWith).toBeUndefined();
    clock.advance(15_000);
    await until(() => closedWith !== undefined, 'the silent client to be terminated');
    expect(closedWith).toBe(1006);
    expect(healthy.readyState).toBe(WebSocket.OPEN);
  });

  it('disconnects a client that does not read, counts the drop, and keeps memory bounded', async () => {
    const port = await freePort();
    const source = feed();
    const engine = run(serverPipeline(port, 'client_queue: { messages: 64, bytes: 1MiB }'), [source.op, collector().op]);
    const reader = await connect(`ws://127.0.0.1:${port}/`);
    const stalled = await connect(`ws://127.0.0.1:${port}/`);
    stalled.pause(); // never reads: the kernel's buffers fill, then the server's
    let received = 0;
    reader.on('message', () => received++);

    const message = 'x'.repeat(256 * 1024);
    const total = 400; // 100 MiB in all
    const baseline = await retainedMemory();
    for (let sent = 0; sent < total; sent += 8) {
      source.push(...Array.from({ length: 8 }, (_, i) => ({ i: sent + i, message })));
      await until(() => received >= sent + 8, 'the reader to keep up');
    }
    expect(received).toBe(total);
    expect(dropsOf(engine, 'server').get('slow_client')).toBeGreaterThan(0);
    // Unbounded, the stalled client's backlog (about 100 MiB less the kernel's buffers) would still be held here.
    // Bounded, what stays is the server's 1 MiB queue plus what the paused test client itself buffered
    // (it lives in this process too): measured 1 to 29 MiB depending on socket timing.
    expect((await retainedMemory()) - baseline).toBeLessThan(48 * 1024 * 1024);
  });

  it('rebinds the same port when a reload replaces it with new settings', async () => {
    const port = await freePort();
    const source = feed();
    const sink = collector();
    const engine = run(serverPipeline(port, 'max_connections: 5'), [source.op, sink.op]);
    const before = await connect(`ws://127.0.0.1:${port}/`);
    const closed = new Promise<number>((resolve) => before.once('close', (code) => resolve(code)));
    const { graph } = checkWith(serverPipeline(port, 'max_connections: 6'), [wsServer, wsClient, source.op, sink.op]);
    const result = await engine.reload(graph);
    expect(result.status).toBe('applied');
    expect(await closed).toBe(1001);
    const after = await connect(`ws://127.0.0.1:${port}/`);
    const seen = messages(after);
    source.push({ after: 'reload' });
    await until(() => seen.length === 1, 'a record through the new server');
  });

  it('refuses, when checked, a `listen` that is not an address, at its line and column', () => {
    expect(() => checkWith(serverPipeline(1, 'path: /').replace('"127.0.0.1:1"', '"localhost:http"'), [wsServer, feed().op, collector().op])).toThrow(
      'test.yaml:9:21: error: setting `listen` of `ws.server`: `localhost:http` is not an address: use `host:port` (`127.0.0.1:8080`) or a port',
    );
    expect(() => checkWith(serverPipeline(1, 'path: /').replace('"127.0.0.1:1"', '70000'), [wsServer, feed().op, collector().op])).toThrow('port 70000 is out of range');
  });

  it('reports a port already in use with the node and the address, and binds once it is free', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    const log = recordingLogger();
    const source = feed();
    run(serverPipeline(port, 'path: /'), [source.op, collector().op], log);
    await until(() => log.entries.some((e) => e.level === 'error'), 'the listen error');
    const error = log.entries.find((e) => e.level === 'error')!;
    expect(String(error.fields.error)).toBe(`node \`server\` (test.yaml:6): cannot listen on 127.0.0.1:${port}: the address is already in use (another process or node listens there; change \`listen\`)`);
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const socket = await connect(`ws://127.0.0.1:${port}/`);
    const seen = messages(socket);
    source.push({ ok: true });
    await until(() => seen.length === 1, 'a record after the restart');
  });
});

describe('ws.client', () => {
  it('sends its input to the server and emits what the server sends, both ways through the engine', async () => {
    const port = await freePort();
    const toServer = feed('test.to-server');
    const toClient = feed('test.to-client');
    const atServer = collector('test.at-server');
    const atClient = collector('test.at-client');
    const yaml = `streams: 1
name: ws-both-ways
nodes:
  outbound:
    op: test.to-client
  server:
    op: ws.server
    in: outbound
    with: { listen: "127.0.0.1:${port}", path: /chat, format: json }
  server-received:
    op: test.at-server
    in: server
  inbound:
    op: test.to-server
  client:
    op: ws.client
    in: inbound
    with: { url: "ws://127.0.0.1:${port}/chat", format: json, reconnect_delay: 50ms }
  client-received:
    op: test.at-client
    in: client
`;
    run(yaml, [toServer.op, toClient.op, atServer.op, atClient.op]);
    toServer.push({ from: 'client', n: 1 }, { from: 'client', n: 2 });
    await atServer.waitFor(2);
    expect(atServer.records).toEqual([{ from: 'client', n: 1 }, { from: 'client', n: 2 }]);
    toClient.push({ from: 'server', n: 3 });
    await atClient.waitFor(1);
    expect(atClient.records).toEqual([{ from: 'server', n: 3 }]);
    // Both nodes have inputs, so what they receive must be counted as read, not written.
    const length = (record: object): number => Buffer.byteLength(JSON.stringify(record));
    const sent = length({ from: 'client', n: 1 }) + length({ from: 'client', n: 2 });
    const replied = length({ from: 'server', n: 3 });
    const bytes = (node: string): { read: number; written: number } => {
      const stats = engines[0].runners.get(node)!.stats;
      return { read: stats.bytesRead, written: stats.bytesWritten };
    };
    expect(bytes('server')).toEqual({ read: sent, written: replied });
    expect(bytes('client')).toEqual({ read: replied, written: sent });
  });

  it('reconnects after the server goes away and comes back, and sends on', async () => {
    const port = await freePort();
    const toServer = feed('test.to-server');
    const log = recordingLogger();
    run(
      clientPipeline(`url: "ws://127.0.0.1:${port}/", format: json, reconnect_delay: 20ms, reconnect_max: 200ms`),
      [toServer.op],
      log,
    );
    const first = collector();
    const before = run(serverPipeline(port, 'format: json'), [feed().op, first.op]);
    toServer.push({ n: 1 });
    await first.waitFor(1);
    await before.drain({ deadlineMs: 5_000 });
    engines.splice(engines.indexOf(before), 1);
    await until(() => log.entries.some((e) => e.message.includes('lost the connection')), 'the client to notice');

    toServer.push({ n: 2 });
    const second = collector();
    run(serverPipeline(port, 'format: json'), [feed().op, second.op]);
    await second.waitFor(1);
    expect(second.records).toEqual([{ n: 2 }]);
  });

  it('keeps retrying a server that is not there yet, says so once with the URL, and sends what waited', async () => {
    const port = await freePort();
    const log = recordingLogger();
    const toServer = feed('test.to-server');
    run(
      clientPipeline(`url: "ws://127.0.0.1:${port}/?token=hidden", reconnect_delay: 20ms, reconnect_max: 100ms, token: hidden`),
      [toServer.op],
      log,
    );
    toServer.push({ n: 1 });
    await until(() => log.entries.some((e) => e.level === 'warn' && e.message.includes('cannot connect')), 'the connection warning');
    const warning = log.entries.find((e) => e.message.includes('cannot connect'))!;
    expect(warning.message).toContain('node `client` (test.yaml:6): cannot connect to ws://127.0.0.1:');
    expect(warning.message).toContain('token=***');
    expect(JSON.stringify(log.entries)).not.toContain('hidden');

    const sink = collector();
    run(serverPipeline(port, 'format: json, token: hidden'), [feed().op, sink.op]);
    await sink.waitFor(1);
    expect(sink.records).toEqual([{ n: 1 }]);
    expect(log.entries.filter((e) => e.message.includes('cannot connect')).length).toBeLessThan(5);
  });

  it('waits for its reconnection on the runtime\'s clock', async () => {
    const port = await freePort();
    const clock = new VirtualClock(Date.now());
    const log = recordingLogger();
    const toServer = feed('test.to-server');
    run(
      clientPipeline(`url: "ws://127.0.0.1:${port}/", format: json, reconnect_delay: 60s, reconnect_max: 60s`),
      [toServer.op],
      log,
      clock,
    );
    toServer.push({ n: 1 });
    await until(() => log.entries.some((e) => e.message.includes('cannot connect')), 'the first failed connection');
    const sink = collector();
    run(serverPipeline(port, 'format: json'), [feed().op, sink.op]);
    // The first retry waits between half of `reconnect_delay` and all of it (jitter), in the runtime's time only.
    clock.advance(29_999);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sink.records).toEqual([]);
    clock.advance(30_001);
    await until(() => sink.records.length > 0, 'the record sent on the new connection', 3_000);
    expect(sink.records).toEqual([{ n: 1 }]);
  });
});
