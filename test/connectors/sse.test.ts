/**
 * `sse.server` through the engine with real HTTP clients on loopback:
 * broadcast with ids, `Last-Event-ID` resume from the bounded replay
 * buffer, heartbeats, the token, and slow clients.
 */
import { get, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import sseServer from '../../nodes/io/sse-server.ts';
import type { Engine } from '../../runtime/engine.ts';
import { VirtualClock } from '../helpers/fake-context.ts';
import { checkWith, dropsOf, feed, freePort, recordingLogger, retainedMemory, startPipeline, until } from './http-harness.ts';

interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

interface SseClient {
  status: number;
  response: IncomingMessage;
  events: SseEvent[];
  comments: number;
  close(): void;
}

const engines: Engine[] = [];
const clients: SseClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(engines.splice(0).map((engine) => engine.drain({ deadlineMs: 5_000 })));
});

function ssePipeline(port: number, settings: string): string {
  return `streams: 1
name: sse
nodes:
  feed:
    op: test.feed
  events:
    op: sse.server
    in: feed
    with: { listen: "127.0.0.1:${port}", path: /events, ${settings} }
`;
}

function run(port: number, settings: string, clock?: VirtualClock): { engine: Engine; source: ReturnType<typeof feed> } {
  const source = feed();
  const engine = startPipeline(ssePipeline(port, settings), [sseServer, source.op], { log: recordingLogger(), clock });
  engines.push(engine);
  return { engine, source };
}

/** An EventSource-like client: parses the stream as it arrives. */
function open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const request = get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (response) => {
      const client: SseClient = { status: response.statusCode ?? 0, response, events: [], comments: 0, close: () => request.destroy() };
      clients.push(client);
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = { data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) client.comments++;
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) client.events.push({ ...event, data: data.join('\n') });
        }
      });
      resolve(client);
    });
    request.on('error', reject);
  });
}

/** Opens once the server listens (it binds asynchronously after the engine starts). */
async function connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await open(url, headers);
    } catch (error) {
      if (!/ECONNREFUSED/.test((error as Error).message) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe('sse.server', () => {
  it('streams every record to every client as an event with an increasing id', async () => {
    const port = await freePort();
    const { source } = run(port, 'event: reading');
    const first = await connect(`http://127.0.0.1:${port}/events`);
    const second = await connect(`http://127.0.0.1:${port}/events`);
    expect(first.status).toBe(200);
    expect(first.response.headers['content-type']).toMatch(/^text\/event-stream/);
    source.push({ device: 'a', value: 1 }, { device: 'b', value: 2 });
    source.push({ text: 'two\nlines' });
    await until(() => first.events.length === 3 && second.events.length === 3, 'three events at both clients');
    expect(first.events).toEqual([
      { id: '1', event: 'reading', data: '{"device":"a","value":1}' },
      { id: '2', event: 'reading', data: '{"device":"b","value":2}' },
      { id: '3', event: 'reading', data: 'two\nlines' },
    ]);
    expect(second.events).toEqual(first.events);
  });

  it('resumes a client from Last-Event-ID with what it missed, then goes on live', async () => {
    const port = await freePort();
    const { source } = run(port, 'replay: 100');
    const watcher = await connect(`http://127.0.0.1:${port}/events`);
    source.push(...[1, 2, 3, 4, 5].map((n) => ({ n })));
    await until(() => watcher.events.length === 5, 'five events');

    const resumed = await connect(`http://127.0.0.1:${port}/events`, { 'Last-Event-ID': '2' });
    await until(() => resumed.events.length === 3, 'the three missed events');
    expect(resumed.events.map((e) => e.id)).toEqual(['3', '4', '5']);
    source.push({ n: 6 });
    await until(() => resumed.events.length === 4, 'the next live event');
    expect(resumed.events[3]).toEqual({ id: '6', data: '{"n":6}' });

    // The query parameter does the same for clients that cannot set the header.
    const byQuery = await connect(`http://127.0.0.1:${port}/events?last_event_id=4`);
    await until(() => byQuery.events.length === 2, 'events after 4');
    expect(byQuery.events.map((e) => e.id)).toEqual(['5', '6']);
  });

  it('keeps its ids and kept events across a reload, so clients resume where they were', async () => {
    const port = await freePort();
    const { engine, source } = run(port, 'heartbeat: 10s');
    const watcher = await connect(`http://127.0.0.1:${port}/events`);
    source.push({ n: 1 }, { n: 2 }, { n: 3 });
    await until(() => watcher.events.length === 3, 'three events');
    const { graph } = checkWith(ssePipeline(port, 'heartbeat: 20s'), [sseServer, source.op]);
    expect((await engine.reload(graph)).status).toBe('applied');
    const resumed = await connect(`http://127.0.0.1:${port}/events`, { 'Last-Event-ID': '1' });
    source.push({ n: 4 });
    await until(() => resumed.events.length === 3, 'the missed events and the new one');
    expect(resumed.events.map((e) => `${e.id}:${e.data}`)).toEqual(['2:{"n":2}', '3:{"n":3}', '4:{"n":4}']);
  });

  it('keeps only the newest `replay` events', async () => {
    const port = await freePort();
    const { source } = run(port, 'replay: 3');
    const watcher = await connect(`http://127.0.0.1:${port}/events`);
    source.push(...Array.from({ length: 10 }, (_, n) => ({ n })));
    await until(() => watcher.events.length === 10, 'ten events');
    const resumed = await connect(`http://127.0.0.1:${port}/events`, { 'Last-Event-ID': '0' });
    await until(() => resumed.events.length === 3, 'the kept events');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(resumed.events.map((e) => e.id)).toEqual(['8', '9', '10']);
  });

  it('sends heartbeats to idle clients, each `heartbeat` of the runtime\'s clock', async () => {
    const port = await freePort();
    const clock = new VirtualClock(Date.now());
    run(port, 'heartbeat: 15s', clock);
    const client = await connect(`http://127.0.0.1:${port}/events`);
    await until(() => client.comments >= 1, 'the opening comment');
    clock.advance(14_999);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.comments).toBe(1);
    clock.advance(15_001);
    await until(() => client.comments >= 3, 'two heartbeats');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.comments).toBe(3);
  });

  it('answers 401 without the token and 404 off its path', async () => {
    // A token that spells a number is still a token.
    process.env.SSE_TEST_TOKEN = '12345';
    const port = await freePort();
    run(port, 'token: "${env:SSE_TEST_TOKEN}"');
    const url = `http://127.0.0.1:${port}/events`;
    expect((await connect(url)).status).toBe(401);
    expect((await connect(url, { Authorization: 'Bearer nope' })).status).toBe(401);
    expect((await connect(url, { Authorization: 'Bearer 12345' })).status).toBe(200);
    expect((await connect(`${url}?token=12345`)).status).toBe(200);
    expect((await connect(`http://127.0.0.1:${port}/other`, { Authorization: 'Bearer 12345' })).status).toBe(404);
  });

  it('disconnects a client that does not read and counts the drop, while others keep up', async () => {
    const port = await freePort();
    const { engine, source } = run(port, 'client_queue: { bytes: 256KiB }, replay: 0');
    const reader = await connect(`http://127.0.0.1:${port}/events`);
    const stalled = await connect(`http://127.0.0.1:${port}/events`);
    stalled.response.pause();
    const value = 'y'.repeat(64 * 1024);
    const baseline = await retainedMemory();
    for (let sent = 0; sent < 600; sent += 20) {
      source.push(...Array.from({ length: 20 }, (_, i) => ({ i: sent + i, value })));
      await until(() => reader.events.length >= sent + 20, 'the reader to keep up');
    }
    expect(reader.events).toHaveLength(600);
    expect(dropsOf(engine, 'events').get('slow_client')).toBeGreaterThan(0);
    reader.events.length = 0; // the test's own copy, not the server's
    // Unbounded, the stalled client's backlog (about 38 MiB less the kernel's buffers) would still be held.
    expect((await retainedMemory()) - baseline).toBeLessThan(16 * 1024 * 1024);
  });
});
