import { describe, expect, it } from 'vitest';
import type { MediaPacket, TrackInfo } from '../../media/packet.ts';
import { LiveStreams } from '../../nodes/media/live/live-streams.ts';

const video: TrackInfo = { kind: 'video', codec: 'h264', codecString: 'avc1.42c00d', timescale: 1000, config: Buffer.alloc(0) };
const audio: TrackInfo = { kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 1000, config: Buffer.alloc(0) };

function frame(dts: number, keyframe: boolean, track = video): MediaPacket {
  return { stream: 's', rendition: 'source', track, pts: dts, dts, keyframe, data: Buffer.alloc(100) };
}

describe('LiveStream', () => {
  it('drops whole GOPs while downstream is full: from the first full moment to the next keyframe that finds room', () => {
    const stream = new LiveStreams().begin('s');
    const admitted = [
      stream.admit(frame(0, true), false),
      stream.admit(frame(33, false), false),
      stream.admit(frame(66, false), true), // full: dropping starts
      stream.admit(frame(70, true, audio), false), // audio of the dropped GOP goes too
      stream.admit(frame(100, false), false), // room again, but not a keyframe
      stream.admit(frame(133, true), true), // a keyframe while still full
      stream.admit(frame(166, false), false),
      stream.admit(frame(200, true), false), // the next keyframe with room
      stream.admit(frame(210, true, audio), false),
    ];
    expect(admitted).toEqual([true, true, false, false, false, false, false, true, true]);
    // 7 video frames over 200 ms of media (233 ms with the last frame's duration): 30 per media second.
    expect(stream.takeStats(1)).toMatchObject({ stream: 's', dropped: 5, fps: 30, keyframe_interval: 0.067, publishes: 1 });
    expect(stream.takeStats(1)).toMatchObject({ dropped: 0, fps: 0, bitrate: 0 });
  });

  it('without video, drops audio only while full', () => {
    const stream = new LiveStreams().begin('s');
    expect([stream.admit(frame(0, true, audio), true), stream.admit(frame(23, true, audio), false)]).toEqual([false, true]);
  });

  it('marks the first packet after a reconnect as a discontinuity, once', () => {
    const streams = new LiveStreams();
    const first = streams.begin('s');
    const a = frame(0, true);
    first.admit(a, false);
    expect(a.discontinuity).toBeUndefined();
    streams.end(first, 1);
    const again = streams.begin('s');
    expect(again).toBe(first);
    const b = frame(0, true);
    const c = frame(33, false);
    again.admit(b, false);
    again.admit(c, false);
    expect([b.discontinuity, c.discontinuity]).toEqual([true, undefined]);
    expect(streams.live()).toEqual([first]);
  });

  it('forgets the oldest ended streams past its bound, never live ones', () => {
    const streams = new LiveStreams(2);
    const a = streams.begin('a');
    streams.end(a, 1);
    const b = streams.begin('b');
    streams.begin('c');
    expect(streams.get('a')).toBeUndefined();
    expect(streams.get('b')).toBe(b);
  });
});
