/**
 * TsReader on what ffmpeg really writes for SRT (H.264 and AAC in MPEG-TS),
 * with one 1316-byte SRT packet (seven TS packets) lost at every position:
 * the reader never ends, every loss is counted, and what it reads of the
 * damaged stream is what it reads of the intact one, less the frames lost.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TsReader } from '../../media/mpegts.ts';
import { FfmpegProcess, runToEnd } from '../../native/ffmpeg/process.ts';

const SRT_PACKET = 1316;

function read(bytes: Buffer): { packets: string[]; drops: number; failed: boolean } {
  const reader = new TsReader({ stream: 'ts' });
  const packets: string[] = [];
  let drops = 0;
  let failed = false;
  const results = [];
  for (let i = 0; i < bytes.length; i += SRT_PACKET) results.push(reader.push(bytes.subarray(i, i + SRT_PACKET)));
  results.push(reader.end());
  for (const result of results) {
    if (result.error) failed = true;
    packets.push(...result.packets.map((p) => `${p.track.kind} ${p.dts} ${p.data.toString('hex')}`));
    for (const count of Object.values(result.drops ?? {})) drops += count;
  }
  return { packets, drops, failed };
}

describe('TsReader on an ffmpeg clip losing one SRT packet', () => {
  it('reads on past the loss at every position, counting it, with no damaged frame let through', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-loss-'));
    try {
      const clip = join(dir, 'clip.ts');
      await runToEnd(
        FfmpegProcess.spawn({
          inputs: [
            { from: { url: 'testsrc2=size=320x240:rate=30:duration=3' }, options: ['-f', 'lavfi'] },
            { from: { url: 'sine=frequency=440:duration=3' }, options: ['-f', 'lavfi'] },
          ],
          outputs: [{ to: { url: clip }, options: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'aac', '-f', 'mpegts', '-y'] }],
        }),
      );
      const bytes = readFileSync(clip);
      const intact = read(bytes);
      expect(intact).toMatchObject({ drops: 0, failed: false });
      const known = new Set(intact.packets);
      // Past the first second, so the loss cannot take the first keyframe (and the avcC with it), and before the
      // last two SRT packets: a loss in the last video PES shows nowhere (no later packet on its PID, no length).
      const from = Math.ceil(bytes.length / 3 / SRT_PACKET);
      for (let lost = from; lost < Math.floor(bytes.length / SRT_PACKET) - 2; lost++) {
        const damaged = read(Buffer.concat([bytes.subarray(0, lost * SRT_PACKET), bytes.subarray((lost + 1) * SRT_PACKET)]));
        expect(damaged.failed, `SRT packet ${lost}`).toBe(false);
        expect(damaged.drops, `SRT packet ${lost}`).toBeGreaterThan(0);
        for (const packet of damaged.packets) expect(known.has(packet), `SRT packet ${lost}: a frame read that the intact clip does not have`).toBe(true);
        // Seven TS packets touch at most a few PES: a video frame or two, and ffmpeg's audio PES of several AAC frames.
        expect(damaged.packets.length, `SRT packet ${lost}`).toBeGreaterThan(intact.packets.length - 30);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
