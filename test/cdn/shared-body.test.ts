/**
 * SharedBody.compact: a complete body kept in several chunks is joined
 * into one buffer for the hits that follow, never under a reader still
 * streaming from its chunks, never for a body passing through.
 */
import { PassThrough } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { SharedBody } from '../../nodes/cdn/edge/shared-body.ts';

const parts = [Buffer.from('#EXTM3U\n'), Buffer.from('#EXT-X-VERSION:7\n'), Buffer.from('seg-1.m4s\n')];
const whole = Buffer.concat(parts);

/** A writable standing in for a client's response: collects what the body writes. */
function client(): { response: ServerResponse; received: () => Buffer } {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { response: sink as unknown as ServerResponse, received: () => Buffer.concat(chunks) };
}

describe('SharedBody.compact', () => {
  it('joins a complete body into one buffer with the same bytes, so a hit writes one piece', () => {
    const body = SharedBody.of(parts.map((part) => Buffer.from(part)));
    expect(body.slice(0, body.length)).toHaveLength(3);
    body.compact();
    const pieces = body.slice(0, body.length);
    expect(pieces).toHaveLength(1);
    expect(pieces[0].equals(whole)).toBe(true);
    // Ranges still read the right bytes.
    expect(Buffer.concat(body.slice(8, 20)).toString()).toBe(whole.subarray(8, 20).toString());
  });

  it('leaves a body alone while it is still arriving', () => {
    const body = new SharedBody();
    for (const part of parts) body.push(Buffer.from(part));
    body.compact();
    expect(body.slice(0, body.length)).toHaveLength(3);
  });

  it('leaves the chunks alone while a reader streams from them, and that reader gets every byte', async () => {
    const body = new SharedBody();
    body.push(Buffer.from(parts[0]));
    const { response, received } = client();
    const streaming = body.pipeTo(response);
    body.push(Buffer.from(parts[1]));
    body.push(Buffer.from(parts[2]));
    body.end();
    body.compact();
    expect(body.slice(0, body.length)).toHaveLength(3);
    expect((await streaming).outcome).toBe('complete');
    expect(received().equals(whole)).toBe(true);
    // Once the reader is done, the next hit compacts it.
    body.compact();
    expect(body.slice(0, body.length)).toHaveLength(1);
  });

  it('does not join a body passing through (not kept)', () => {
    const body = new SharedBody();
    body.passThrough(() => undefined);
    for (const part of parts) body.push(Buffer.from(part));
    body.end();
    body.compact();
    expect(body.chunks.length).toBe(3);
  });

  it('does not join a body larger than 8 MiB (the copy would double its memory)', () => {
    const big = Array.from({ length: 9 }, () => Buffer.alloc(1024 * 1024, 1));
    const body = SharedBody.of(big);
    body.compact();
    expect(body.chunks.length).toBe(9);
  });
});
