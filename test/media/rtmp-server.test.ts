import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { RtmpServer, type RtmpServerHandlers } from '../../native/rtmp/server.ts';

const port = 19530;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let server: RtmpServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(publishTimeoutMs = 10_000): Promise<{ rejected: { reason: string; detail: string }[] }> {
  const rejected: { reason: string; detail: string }[] = [];
  const handlers: RtmpServerHandlers = { publish: () => undefined, tag: () => {}, end: () => {}, rejected: (info) => void rejected.push(info) };
  server = await RtmpServer.listen({ host: '127.0.0.1', port }, { owner: { node: 't', label: 'node `t`', log: quiet }, handlers, publishTimeoutMs });
  return { rejected };
}

/** Sends `bytes` and resolves with how long the server took to close the connection. */
function closedAfter(bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1', () => {
      if (bytes.length) socket.write(bytes);
    });
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => resolve(Date.now() - started));
  });
}

describe('RtmpServer', () => {
  it('drops a connection whose first byte is not RTMP version 3', async () => {
    const { rejected } = await start();
    expect(await closedAfter(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeLessThan(500);
    expect(rejected).toEqual([{ remote: expect.any(String), reason: 'bad_handshake', detail: 'not an RTMP handshake (first byte 0x47)' }]);
  });

  it('drops a client whose chunk header declares a message larger than a command may be, before allocating it', async () => {
    const { rejected } = await start();
    // C0, C1, C2, then a type-0 chunk header on chunk stream 3 declaring a 16 MB message.
    const header = Buffer.from([0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0]);
    expect(await closedAfter(Buffer.concat([Buffer.from([3]), randomBytes(3072), header, randomBytes(100)]))).toBeLessThan(500);
    expect(rejected.map((r) => [r.reason, r.detail])).toEqual([['protocol_error', 'an RTMP message of 16777215 bytes is over the limit of 65536']]);
  });

  it('drops a connection that does not publish in time', async () => {
    const { rejected } = await start(300);
    const ms = await closedAfter(Buffer.alloc(0));
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1000);
    expect(rejected.map((r) => r.reason)).toEqual(['timeout']);
  });

  it('frees its port on close', async () => {
    await start();
    await server!.close();
    server = undefined;
    await start();
    expect(server!.address.port).toBe(port);
  });
});

describe('RtmpServer memory bounds', () => {
  /** C0, C1 and C2: the handshake node-media-server needs before it reads chunks. */
  const handshake = (): Buffer => Buffer.concat([Buffer.from([3]), randomBytes(3072)]);
  /** A type-0 chunk header on chunk stream `cid` (2..63) declaring a `length`-byte command message, and its first chunk (128 bytes, the default chunk size). */
  const opening = (cid: number, length: number): Buffer =>
    Buffer.concat([Buffer.from([cid, 0, 0, 0, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff, 0x14, 0, 0, 0, 0]), Buffer.alloc(128)]);

  it('drops a connection whose chunk streams together would hold more than 1 MB before it publishes', async () => {
    const { rejected } = await start();
    // Each message is under the 64 KB command limit; twenty of them in parallel are not.
    const chunks = Array.from({ length: 20 }, (_, index) => opening(3 + index, 60_000));
    expect(await closedAfter(Buffer.concat([handshake(), ...chunks]))).toBeLessThan(500);
    expect(rejected.map((r) => r.reason)).toEqual(['protocol_error']);
    expect(rejected[0]!.detail).toMatch(/^RTMP messages in progress would hold \d+ bytes, over the limit of 1048576 for a connection$/);
  });

  it('keeps a connection whose chunk streams stay under the bound', async () => {
    const { rejected } = await start(400);
    const chunks = Array.from({ length: 10 }, (_, index) => opening(3 + index, 60_000));
    // Closed by the publish timeout, not by the memory bound.
    expect(await closedAfter(Buffer.concat([handshake(), ...chunks]))).toBeGreaterThanOrEqual(350);
    expect(rejected.map((r) => r.reason)).toEqual(['timeout']);
  });

  it('closes connections past the number allowed to wait for a publish, at once', async () => {
    const rejected: { reason: string; detail: string }[] = [];
    const handlers: RtmpServerHandlers = { publish: () => undefined, tag: () => {}, end: () => {}, rejected: (info) => void rejected.push(info) };
    server = await RtmpServer.listen({ host: '127.0.0.1', port }, { owner: { node: 't', label: 'node `t`', log: quiet }, handlers, publishTimeoutMs: 2000, maxPendingConnections: 2 });
    const sockets = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    for (const socket of sockets) socket.on('error', () => {});
    await Promise.all(sockets.map((socket) => new Promise((resolve) => socket.once('connect', resolve))));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await closedAfter(Buffer.alloc(0))).toBeLessThan(500);
    expect(rejected).toEqual([{ remote: expect.any(String), reason: 'too_many_connections', detail: '2 connections have not published yet' }]);
    for (const socket of sockets) socket.destroy();
  });
});
