/**
 * The RTMP server hands each audio and video message downstream in a buffer
 * of its own, without copying it: an ffmpeg publish of a file (`-c copy`)
 * arrives with every packet's bytes intact, even when the test holds them
 * all until the publish ends (a buffer reused for a later message would
 * show here).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlvReader, FlvTagDecoder, type FlvTag } from '../../media/flv.ts';
import { RtmpServer } from '../../native/rtmp/server.ts';

const run = promisify(execFile);
const port = 19485;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rtmp-server-'));
  await run('nice', ['-n', '10', 'ffmpeg', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30:duration=2', '-f', 'lavfi', '-i', 'sine=duration=2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'aac', '-f', 'flv', join(dir, 'in.flv')], { timeout: 60_000 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The packets' bytes, video and audio, in order. */
function payloads(packets: { track: { kind: string }; data: Buffer }[]): string[] {
  return packets.map((p) => `${p.track.kind}:${p.data.toString('base64')}`);
}

describe('RtmpServer, with ffmpeg publishing', () => {
  it('delivers every audio and video message intact, each in its own buffer', async () => {
    const tags: FlvTag[] = [];
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    const server = await RtmpServer.listen({ host: '127.0.0.1', port }, {
      owner: { node: 't', label: 'node `t`', log: quiet },
      handlers: { publish: () => undefined, tag: (_publish, tag) => void tags.push(tag), end: () => ended(), rejected: () => {} },
      publishTimeoutMs: 10_000,
    });
    try {
      await run('ffmpeg', ['-v', 'error', '-i', join(dir, 'in.flv'), '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/k`], { timeout: 30_000 });
      await done;
    } finally {
      await server.close();
    }
    const decoder = new FlvTagDecoder('k');
    const received = tags.flatMap((tag) => {
      const result = decoder.decode(tag);
      return result.kind === 'packet' ? [result.packet] : [];
    });
    const expected = new FlvReader({ stream: 'k' }).push(await readFile(join(dir, 'in.flv'))).packets;
    expect(expected.length).toBeGreaterThan(100);
    expect(payloads(received)).toEqual(payloads(expected));
  });
});
