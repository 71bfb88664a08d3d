/**
 * Request coalescing with read-while-write through a real edge and origin:
 * one origin request for many concurrent misses, bytes reaching waiters
 * while the origin still sends, a client that gives up not cancelling the
 * fetch, broken bodies (Content-Length mismatch) not cached and breaking
 * the clients' connections, and a large object streamed through uncached
 * in bounded memory.
 */
import { request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { get, startEdge, startOrigin, stopAll, until } from './edge-harness.ts';

afterEach(stopAll);

const sha = (body: Buffer) => createHash('sha256').update(body).digest('hex');

describe('cache: coalescing', () => {
  it('makes one origin request for 100 concurrent misses, and every client gets the same bytes', async () => {
    const payload = Buffer.alloc(256 * 1024, 7);
    payload.write('distinct-start');
    const origin = await startOrigin((_request, response) => {
      // Answer late, so every request arrives while the fetch is in flight.
      setTimeout(() => {
        response.writeHead(200, { 'Content-Type': 'video/mp4', 'Content-Length': payload.length, 'Cache-Control': 'max-age=60' });
        response.end(payload);
      }, 500);
    });
    const edge = await startEdge(origin.url);
    const answers = await Promise.all(Array.from({ length: 100 }, () => get(`${edge.base}/seg/1.m4s`)));
    expect(origin.count('/seg/1.m4s')).toBe(1);
    expect(new Set(answers.map((a) => sha(a.body)))).toEqual(new Set([sha(payload)]));
    const labels = answers.map((a) => a.headers.get('x-cache'));
    expect(labels.filter((l) => l === 'MISS')).toHaveLength(1);
    // On a loaded machine a client may connect only after the body is complete: then it hits.
    expect(labels.filter((l) => l === 'COALESCED').length).toBeGreaterThan(50);
    expect(labels.filter((l) => l !== 'MISS' && l !== 'COALESCED' && l !== 'HIT')).toEqual([]);
    const again = await get(`${edge.base}/seg/1.m4s`);
    expect(again.headers.get('x-cache')).toBe('HIT');
    expect(origin.count('/seg/1.m4s')).toBe(1);
  });

  it('streams the first chunk of a slow origin to a waiter before the origin has finished', async () => {
    let finish: (() => void) | undefined;
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': 10, 'Cache-Control': 'max-age=60' });
      response.write('first');
      finish = () => response.end('-last');
    });
    const edge = await startEdge(origin.url);
    // Two waiters: the one that started the fetch and one that joined it.
    const readFirst = async (): Promise<{ first: string; rest: Promise<string> }> => {
      const response = await fetch(`${edge.base}/slow.bin`);
      const reader = response.body!.getReader();
      const chunk = await reader.read();
      const rest = (async () => {
        let text = '';
        for (;;) {
          const next = await reader.read();
          if (next.done) return text;
          text += Buffer.from(next.value).toString();
        }
      })();
      return { first: Buffer.from(chunk.value!).toString(), rest };
    };
    const [a, b] = await Promise.all([readFirst(), readFirst()]);
    expect(finish).toBeDefined();
    expect(a.first.startsWith('first')).toBe(true);
    expect(b.first.startsWith('first')).toBe(true);
    finish!();
    expect(a.first + (await a.rest)).toBe('first-last');
    expect(b.first + (await b.rest)).toBe('first-last');
    expect(origin.count('/slow.bin')).toBe(1);
  });

  it('keeps fetching for the others when a client gives up', async () => {
    let finish: (() => void) | undefined;
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Content-Length': 8, 'Cache-Control': 'max-age=60' });
      response.write('abcd');
      finish = () => response.end('efgh');
    });
    const edge = await startEdge(origin.url);
    const quitter = new AbortController();
    const gone = fetch(`${edge.base}/obj`, { signal: quitter.signal }).then((r) => r.arrayBuffer()).catch((error: unknown) => error);
    await until(() => finish !== undefined);
    const stayer = get(`${edge.base}/obj`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    quitter.abort();
    expect(await gone).toBeInstanceOf(Error);
    finish!();
    const kept = await stayer;
    expect(kept.body.toString()).toBe('abcdefgh');
    expect(kept.headers.get('x-cache')).toBe('COALESCED');
    await until(() => edge.log().length >= 2);
    expect((await get(`${edge.base}/obj`)).headers.get('x-cache')).toBe('HIT');
    expect(origin.count('/obj')).toBe(1);
  });

  for (const [what, sent] of [
    ['shorter', 'only-ten-b'],
    ['longer', 'twenty-bytes-of-body+extra'],
  ] as const) {
    it(`breaks the clients' connections and caches nothing when the body is ${what} than Content-Length`, async () => {
      const origin = await startOrigin((request, response) => {
        // Raw bytes on the socket: Node's server would refuse to send a mismatching body itself.
        const socket = response.socket!;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 20\r\nCache-Control: max-age=60\r\n\r\n${sent}`);
        if (what === 'shorter') setTimeout(() => socket.destroy(), 20);
        void request;
      });
      const edge = await startEdge(origin.url);
      const attempts = await Promise.all([1, 2].map(() => get(`${edge.base}/broken`).then(() => 'whole', () => 'broken')));
      expect(attempts).toEqual(['broken', 'broken']);
      const before = origin.count('/broken');
      await get(`${edge.base}/broken`).catch(() => undefined);
      expect(origin.count('/broken')).toBe(before + 1);
    });
  }

  it('streams an object larger than max_object through without keeping it, pausing the origin for a slow client', async () => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    const total = 64 * 1024 * 1024;
    let written = 0;
    const origin = await startOrigin((_request, response) => {
      response.writeHead(200, { 'Content-Length': total, 'Cache-Control': 'max-age=60' });
      written = 0;
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
        response.end();
      };
      pump();
    });
    const edge = await startEdge(origin.url, { max_object: '1MiB' });
    // A client that reads nothing for a while: the edge must not buffer the object for it.
    const received = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${edge.base}/big.bin`, (response) => {
        response.pause();
        setTimeout(() => {
          expect(written).toBeLessThan(16 * 1024 * 1024);
          let bytes = 0;
          response.on('data', (data: Buffer) => (bytes += data.length));
          response.on('end', () => resolve(bytes));
          response.resume();
        }, 500);
      });
      request.on('error', reject);
      request.end();
    });
    expect(received).toBe(total);
    const second = await fetch(`${edge.base}/big.bin`, { method: 'HEAD' });
    expect(second.headers.get('x-cache')).toBe('MISS');
    expect(origin.count('/big.bin')).toBe(2);
    expect(edge.ctx.logs.some((log) => log.level === 'error')).toBe(false);
  });
});
