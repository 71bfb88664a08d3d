/**
 * Synthetic `Segment<cmaf>` items for the origin's tests: a stream of
 * inits, parts and segments with made-up bytes (the origin never parses
 * media, except an init's `mdhd` timescale, which `fakeInit` writes).
 */
import { applyEnd, applyInit, applyPart, applySegment, newStreamWindow, type StreamWindow } from '../../media/cmaf-window.ts';
import type { TrackInfo } from '../../media/packet.ts';
import type { CmafEnd, CmafInit, CmafItem, CmafPart, CmafSegment, PlaylistSettings } from '../../media/segment.ts';

export const videoInfo: TrackInfo = { kind: 'video', codec: 'h264', codecString: 'avc1.64001f', timescale: 90000, config: Buffer.from([1, 0x64, 0, 0x1f]), width: 1280, height: 720, fps: 30 };
export const lowVideoInfo: TrackInfo = { ...videoInfo, codecString: 'avc1.4d401e', width: 640, height: 360 };
export const audioInfo: TrackInfo = { kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 48000, config: Buffer.from([0x11, 0x90]), sampleRate: 48000, channels: 2 };

export const llSettings: PlaylistSettings = { segment: 2, part: 0.5, window: 4, dash: { minBufferTime: 1 } };

/** Bytes holding an `mdhd` box (version 0) with `timescale`, as an init would. */
export function fakeInit(timescale: number, tag = 0): Buffer {
  const mdhd = Buffer.alloc(32);
  mdhd.writeUInt32BE(32, 0);
  mdhd.write('mdhd', 4, 'latin1');
  mdhd.writeUInt32BE(timescale, 20);
  return Buffer.concat([Buffer.from([0, 0, 0, 8, 0x66, 0x74, 0x79, tag]), mdhd]);
}

export function init(stream: string, track: string, info: TrackInfo, playlist: PlaylistSettings = llSettings, data = fakeInit(info.timescale)): CmafInit {
  return { type: 'init', stream, track, rendition: track, info, data, playlist, epoch: 'e' };
}

/** A part of `bytes` bytes, each byte the part's index (so a test can tell parts apart). */
export function part(stream: string, track: string, msn: number, index: number, duration = 0.5, bytes = 100): CmafPart {
  return { type: 'part', stream, track, rendition: track, msn, part: index, duration, independent: index === 0, data: Buffer.alloc(bytes, (msn * 10 + index) % 256) };
}

/** A segment of `parts` parts of 0.5 s of 100 bytes, given with its parts first. */
export function segmentWithParts(stream: string, track: string, msn: number, options: { parts?: number; timescale?: number; start?: number; discontinuity?: boolean } = {}): (CmafPart | CmafSegment)[] {
  const count = options.parts ?? 4;
  const parts = Array.from({ length: count }, (_, index) => part(stream, track, msn, index));
  const timescale = options.timescale ?? 90000;
  const duration = count * 0.5;
  const segment: CmafSegment = {
    type: 'segment',
    stream,
    track,
    rendition: track,
    msn,
    duration,
    programDateTime: (options.start ?? Date.UTC(2026, 0, 1)) + msn * duration * 1000,
    startTime: msn * duration * timescale,
    discontinuity: options.discontinuity ?? false,
    data: Buffer.concat(parts.map((p) => p.data)),
  };
  return [...parts, segment];
}

export function end(stream: string, track?: string): CmafEnd {
  return { type: 'end', stream, track };
}

/** A stream window with `items` applied in order, as the origin applies them; ends are stamped at `endedAt`. */
export function windowOf(items: CmafItem[], endedAt = 0): StreamWindow {
  const first = items.find((item) => item.type === 'init');
  const stream = newStreamWindow('k', first?.playlist ?? llSettings, first?.epoch ?? 'e');
  for (const item of items) {
    if (item.type === 'init') applyInit(stream, item);
    else if (item.type === 'end') applyEnd(stream, item.track, endedAt);
    else if (item.type === 'part') applyPart(stream.tracks.get(item.track)!, item);
    else applySegment(stream, stream.tracks.get(item.track)!, item);
  }
  return stream;
}
