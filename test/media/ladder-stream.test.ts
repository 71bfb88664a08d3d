import { describe, expect, it } from 'vitest';
import type { EncoderChoice } from '../../native/ffmpeg/encoders.ts';
import type { MediaPacket } from '../../media/packet.ts';
import { LadderStream } from '../../nodes/media/ladder-stream.ts';

function logger(lines: { fields: object; message: string }[]) {
  const keep = (fields: object, message: string) => void lines.push({ fields, message });
  return { debug: keep, info: keep, warn: keep, error: keep };
}

describe('LadderStream', () => {
  it('logs a stream named by its key with only the first four characters', () => {
    const lines: { fields: object; message: string }[] = [];
    const ladder = new LadderStream({
      stream: 'sup3r-secret-key',
      label: 'node `encode`',
      log: logger(lines),
      rungs: [],
      preset: 'ultrafast',
      segmentSeconds: 2,
      passthrough: false,
      encoder: new Promise<EncoderChoice>(() => {}),
      emit: () => {},
      dropped: () => {},
      now: () => 0,
    });
    const opus: MediaPacket = {
      stream: 'sup3r-secret-key',
      rendition: 'source',
      track: { kind: 'audio', codec: 'opus', codecString: 'opus', timescale: 1000, config: Buffer.alloc(0) },
      pts: 0,
      dts: 0,
      keyframe: true,
      data: Buffer.alloc(4),
    };
    ladder.push(opus);
    expect(lines.map((line) => line.message)).toEqual(['node `encode`: stream sup3…: opus audio is dropped (only AAC is carried)']);
    expect(JSON.stringify(lines)).not.toContain('secret');
  });
});
