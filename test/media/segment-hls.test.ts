import { describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import segmentHls from '../../nodes/media/segment-hls.ts';
import segmentDash from '../../nodes/media/segment-dash.ts';
import type { MediaItem, MediaPacket } from '../../media/packet.ts';
import type { CmafInit, CmafItem, CmafPart, CmafSegment } from '../../media/segment.ts';
import type { Batch } from '../../runtime/api.ts';
import { batchOf, drive, fakeContext, VirtualClock, type FakeContext } from '../helpers/fake-context.ts';
import { audioTrack, syntheticStream, videoTrack } from './synthetic-media.ts';
import { readBoxes } from '../../media/fmp4/box-writer.ts';
import { renderMedia } from '../../media/hls/playlist.ts';
import { windowOf } from '../helpers/cmaf-items.ts';

function packageItems(input: MediaItem[], settings: Record<string, unknown> = {}, ctx: FakeContext<any> = fakeContext(segmentHls, settings)): CmafItem[] {
  const run = drive(segmentHls.create(ctx), [batchOf(input)]);
  expect(run.error).toBeUndefined();
  return run.items() as CmafItem[];
}

const segmentsOf = (items: CmafItem[], track?: string) => items.filter((i): i is CmafSegment => i.type === 'segment' && (track === undefined || i.track === track));
const partsOf = (items: CmafItem[], track?: string) => items.filter((i): i is CmafPart => i.type === 'part' && (track === undefined || i.track === track));
const initsOf = (items: CmafItem[]) => items.filter((i): i is CmafInit => i.type === 'init');
const end = (stream = 's'): MediaItem => ({ stream, end: true });

describe('segment.hls cutting segments', () => {
  it('emits nothing for an empty input and completes', () => {
    const run = drive(segmentHls.create(fakeContext(segmentHls, {})), []);
    expect(run.completed).toBe(true);
    expect(run.items()).toEqual([]);
  });

  it('starts a track with its init segment and cuts at the first keyframe at or after the target', () => {
    // Keyframes every 1.2 s: a 2 s target cuts at 2.4 s, 4.8 s.
    const items = packageItems([...syntheticStream({ duration: 6000, gop: 30 }), end()], { segment: '2s' });
    expect(items[0].type).toBe('init');
    const segments = segmentsOf(items);
    expect(segments.map((s) => s.startTime)).toEqual([0, 2400, 4800]);
    expect(segments.map((s) => s.msn)).toEqual([0, 1, 2]);
    expect(segments.map((s) => s.duration)).toEqual([2.4, 2.4, 1.2]);
    expect(partsOf(items)).toEqual([]);
  });

  it('passes the renditions an encoder announced on a track\'s first packet on with its init, and says nothing when none were', () => {
    const renditions = ['source', '360p'];
    const packets = syntheticStream({ duration: 2000, gop: 30, audio: true }).map((p) => ({ ...p, ...((p as MediaPacket).track?.kind === 'video' && { rendition: '360p', renditions }) }));
    const inits = initsOf(packageItems([...packets, end()], { segment: '1s' }));
    expect(inits.map((i) => [i.track, i.renditions])).toEqual(expect.arrayContaining([['360p', renditions]]));
    // The audio track's init announces nothing: only video carries the announcement.
    expect(inits.some((i) => i.track !== '360p')).toBe(true);
    expect(inits.filter((i) => i.track !== '360p').every((i) => i.renditions === undefined)).toBe(true);
  });

  it('cuts a segment without a keyframe after 30 s (or five targets), so a stream without keyframes cannot grow it without bound', () => {
    const packets = syntheticStream({ duration: 70_000, gop: 1_000_000, size: 10 });
    const segments = segmentsOf(packageItems([...packets, end()], { segment: '2s' }));
    expect(segments.map((s) => s.startTime)).toEqual([0, 30_000, 60_000]);
  });

  it('drops video before the first keyframe, which nothing could decode', () => {
    const packets = syntheticStream({ duration: 3000, gop: 25 }).map((p) => ({ ...p, dts: p.dts + 400, pts: p.pts + 400, keyframe: p.dts === 600 || p.dts === 2600 }));
    const segments = segmentsOf(packageItems([...packets, end()], { segment: '2s' }));
    expect(segments[0].startTime).toBe(1000);
  });

  it('flushes the open part and segment at the end of the stream, then ends each track and the stream', () => {
    const items = packageItems([...syntheticStream({ duration: 1000, audio: true }), end()], { segment: '2s', part: '200ms', reconnect: '0s' });
    const tail = items
      .filter((i) => i.type !== 'part')
      .slice(-5)
      .map((i) => `${i.type}:${'track' in i ? (i.track ?? '') : ''}`);
    expect(tail).toEqual(['segment:source', 'end:source', 'segment:audio', 'end:audio', 'end:']);
    // The last sample's duration is the mean of the others.
    expect(segmentsOf(items, 'source')[0].duration).toBeCloseTo(1.0, 5);
  });

  it('ends one rendition without ending the stream', () => {
    const input = [...syntheticStream({ duration: 500, rendition: 'a' }), ...syntheticStream({ duration: 500, rendition: 'b' }), { stream: 's', rendition: 'a', end: true } as MediaItem];
    const source = new Subject<Batch>();
    const run = drive(segmentHls.create(fakeContext(segmentHls, {})), source);
    source.next(batchOf(input));
    expect(run.items().filter((i) => (i as CmafItem).type === 'end')).toEqual([{ type: 'end', stream: 's', track: 'a' }]);
    // The input ending ends the rest: a shutdown closes the playlists.
    source.complete();
    expect(run.items().filter((i) => (i as CmafItem).type === 'end').slice(1)).toEqual([
      { type: 'end', stream: 's', track: 'b' },
      { type: 'end', stream: 's' },
    ]);
  });
});

describe('segment.hls parts', () => {
  it('cuts parts of at most the target, independent only when they start with a keyframe', () => {
    const items = packageItems([...syntheticStream({ duration: 4000, gop: 30 }), end()], { segment: '2s', part: '200ms' });
    const parts = partsOf(items);
    expect(parts.every((p) => p.duration <= 0.2)).toBe(true);
    expect(parts.filter((p) => p.msn === 0).map((p) => p.duration)).toEqual([0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]);
    // 1.2 s keyframes: part 6 of segment 0 starts on one.
    expect(parts.filter((p) => p.msn === 0).map((p) => p.independent)).toEqual([true, false, false, false, false, false, true, false, false, false, false, false]);
    // Every part of a segment comes before it, and the segment is their bytes.
    const first = segmentsOf(items)[0];
    const index = items.indexOf(first);
    expect(items.slice(0, index).filter((i) => i.type === 'part' && i.msn === 0)).toHaveLength(12);
    expect(Buffer.concat(parts.filter((p) => p.msn === 0).map((p) => p.data)).equals(first.data)).toBe(true);
  });

  it('emits a part with the batch of the first packet past its end, and a segment with its closing keyframe', () => {
    const input = new Subject<Batch>();
    const run = drive(segmentHls.create(fakeContext(segmentHls, { segment: '1s', part: '200ms' })), input);
    const arrivals: [number, string[]][] = [];
    for (const packet of syntheticStream({ duration: 1200, gop: 25 })) {
      const before = run.items().length;
      input.next(batchOf([packet]));
      const emitted = run.items().slice(before) as CmafItem[];
      if (emitted.length > 0) arrivals.push([packet.dts, emitted.map((i) => (i.type === 'part' ? `part ${i.msn}.${i.part}` : i.type))]);
    }
    expect(arrivals).toEqual([
      [0, ['init']],
      [200, ['part 0.0']],
      [400, ['part 0.1']],
      [600, ['part 0.2']],
      [800, ['part 0.3']],
      [1000, ['part 0.4', 'segment']],
    ]);
  });

  it('writes a segment as its parts\' bytes without copying them, even when it outgrows its first buffer', () => {
    // 2 s of 30 KB frames: 1.5 MB, past the 512 KB first guess.
    const items = packageItems([...syntheticStream({ duration: 4000, gop: 50, size: 30_000 }), end()], { segment: '2s', part: '200ms' });
    for (const segment of segmentsOf(items)) {
      const own = partsOf(items).filter((p) => p.msn === segment.msn);
      expect(Buffer.concat(own.map((p) => p.data)).equals(segment.data)).toBe(true);
      expect(own.at(-1)!.data.buffer).toBe(segment.data.buffer);
    }
  });

  it('without parts still writes a segment as half-second chunks, so closing it writes only the last', () => {
    const [segment] = segmentsOf(packageItems([...syntheticStream({ duration: 2000, gop: 50 }), end()], { segment: '2s' }));
    // 50 frames of 40 ms: chunks of 12 frames (480 ms; 13 would pass 500 ms), the last of 2.
    expect(readBoxes(segment.data).filter((box) => box.type === 'moof')).toHaveLength(5);
  });

  it('rejects a part target that is not shorter than the segment', () => {
    expect(segmentHls.settings.safeParse({ segment: '1s', part: '1s' }).success).toBe(false);
  });
});

describe('segment.hls audio', () => {
  it('cuts audio at the times the video cuts, so segments line up', () => {
    const items = packageItems([...syntheticStream({ duration: 6000, gop: 30, audio: true }), end()], { segment: '2s', part: '500ms' });
    const video = segmentsOf(items, 'source');
    const audio = segmentsOf(items, 'audio');
    expect(audio.map((s) => s.msn)).toEqual(video.map((s) => s.msn));
    for (let i = 1; i < video.length; i++) expect(Math.abs(audio[i].startTime - video[i].startTime)).toBeLessThanOrEqual(11);
  });

  it('numbers the first segment of audio that starts after the video as the video\'s open segment', () => {
    const packets = syntheticStream({ duration: 4000, gop: 25, audio: true }).filter((p) => p.track.kind === 'video' || p.dts >= 1005);
    const items = packageItems([...packets, end()], { segment: '1s' });
    const video = segmentsOf(items, 'source');
    const audio = segmentsOf(items, 'audio');
    expect(audio.map((s) => s.msn)).toEqual([1, 2, 3]);
    for (const segment of audio.slice(1)) expect(Math.abs(segment.startTime - video[segment.msn].startTime)).toBeLessThanOrEqual(11);
  });

  it('gives audio that arrives just before the video\'s keyframe the number of the segment that keyframe opens', () => {
    const packets = syntheticStream({ duration: 3000, gop: 25, audio: true }).filter((p) => p.track.kind === 'video' || p.dts >= 990);
    // The first audio frame (1003 ms) reaches the engine before the keyframe at 1000 ms.
    const first = packets.findIndex((p) => p.track.kind === 'audio');
    const [audio] = packets.splice(first, 1);
    packets.splice(packets.findIndex((p) => p.dts === 1000), 0, audio);
    const items = packageItems([...packets, end()], { segment: '1s' });
    expect(segmentsOf(items, 'audio').map((s) => s.msn)).toEqual([1, 2]);
  });

  it('cuts an audio-only stream by time', () => {
    const items = packageItems([...syntheticStream({ duration: 5000, frame: 0, audio: true }), end()], { segment: '2s' });
    const segments = segmentsOf(items, 'audio');
    expect(segments).toHaveLength(3);
    expect(segments[1].startTime).toBeGreaterThanOrEqual(1990);
    expect(segments[1].startTime).toBeLessThan(2022);
  });

  it('names tracks: video after its rendition, the first audio `audio`, the next `<rendition>-audio`', () => {
    const input = [...syntheticStream({ duration: 300, rendition: '720p', audio: true }), ...syntheticStream({ duration: 300, rendition: '480p', audio: true })];
    expect(initsOf(packageItems(input)).map((i) => `${i.rendition}:${i.info.kind}:${i.track}`)).toEqual(['720p:video:720p', '720p:audio:audio', '480p:video:480p', '480p:audio:480p-audio']);
  });
});

describe('segment.hls discontinuities and configuration changes', () => {
  it('closes the segment at a packet marked as a discontinuity and marks the next one', () => {
    const first = syntheticStream({ duration: 1000 });
    const second = syntheticStream({ duration: 1000 }).map((p, i) => ({ ...p, dts: p.dts + 50_000, pts: p.pts + 50_000, discontinuity: i === 0 }));
    const segments = segmentsOf(packageItems([...first, ...second, end()], { segment: '2s' }));
    expect(segments.map((s) => [s.msn, s.startTime, s.discontinuity])).toEqual([
      [0, 0, false],
      [1, 50_000, true],
    ]);
  });

  it('marks the audio segment discontinuous where its video restarted alone (an encoder restart with copied audio)', () => {
    const packets = syntheticStream({ duration: 4000, audio: true }).map((p) => (p.track.kind === 'video' && p.dts >= 2000 ? { ...p, dts: p.dts - 2000 + 10, pts: p.pts - 2000 + 10, discontinuity: p.dts === 2000 } : p));
    const items = packageItems([...packets, end()], { segment: '1s', reconnect: '0s' });
    const video = segmentsOf(items, 'source');
    const audio = segmentsOf(items, 'audio');
    const videoBreak = video.find((s) => s.discontinuity)!;
    expect(videoBreak).toBeDefined();
    expect(audio.filter((s) => s.discontinuity).map((s) => s.msn)).toEqual([videoBreak.msn]);
  });

  it('marks the first part after a discontinuity, and only it', () => {
    const first = syntheticStream({ duration: 1000 });
    const second = syntheticStream({ duration: 1000 }).map((p, i) => ({ ...p, dts: p.dts + 50_000, pts: p.pts + 50_000, discontinuity: i === 0 }));
    const parts = partsOf(packageItems([...first, ...second, end()], { segment: '2s', part: '200ms' }));
    expect(parts.filter((p) => p.discontinuity === true).map((p) => [p.msn, p.part])).toEqual([[1, 0]]);
  });

  it('treats timestamps going backwards as a discontinuity', () => {
    const restart = syntheticStream({ duration: 1000 });
    const segments = segmentsOf(packageItems([...syntheticStream({ duration: 1000 }), ...restart, end()], { segment: '2s' }));
    expect(segments.map((s) => s.discontinuity)).toEqual([false, true]);
  });

  it('writes a new init segment when the decoder configuration changes', () => {
    const big = videoTrack({ width: 640, height: 480, config: Buffer.from('0164001effe1000467640 01e'.replace(/ /g, ''), 'hex') });
    const later = syntheticStream({ duration: 1000, video: big }).map((p) => ({ ...p, dts: p.dts + 1000, pts: p.pts + 1000 }));
    const items = packageItems([...syntheticStream({ duration: 1000 }), ...later, end()], { segment: '2s' });
    expect(initsOf(items).map((i) => i.info.width)).toEqual([320, 640]);
    expect(segmentsOf(items).map((s) => s.discontinuity)).toEqual([false, true]);
    expect(items.map((i) => i.type).indexOf('init', 1)).toBe(items.indexOf(segmentsOf(items)[0]) + 1);
  });
});

describe('segment.hls timing metadata', () => {
  it('stamps programDateTime from the first packet\'s arrival and closedAt from the closing packet\'s', () => {
    const segments = segmentsOf(packageItems([...syntheticStream({ duration: 4100, gop: 25, start: 1_700_000_000_000 }), end()], { segment: '2s' }));
    expect(segments[0].programDateTime).toBe(1_700_000_000_000);
    expect(segments[1].programDateTime).toBe(1_700_000_002_000);
    expect(segments[0].closedAt).toBe(1_700_000_002_000);
  });

  it('stamps each part with closedAt, the arrival of the packet that closed it', () => {
    const start = 1_700_000_000_000;
    const parts = partsOf(packageItems([...syntheticStream({ duration: 4100, gop: 25, start }), end()], { segment: '2s', part: '200ms' }));
    // 40 ms frames, 200 ms parts: each part holds five frames and is closed by the sixth, the next part's first.
    expect(parts.slice(0, 3).map((p) => p.closedAt)).toEqual([start + 200, start + 400, start + 600]);
    // The segment's last part is closed by the keyframe that closes the segment.
    expect(parts.find((p) => p.msn === 0 && p.part === 9)?.closedAt).toBe(start + 2000);
  });

  it('gives the playlist settings on init items, with `dvr` as a window of segments', () => {
    const [init] = initsOf(packageItems(syntheticStream({ duration: 100 }), { segment: '4s', part: '500ms', dvr: '1h' }));
    expect(init.playlist).toEqual({ segment: 4, part: 0.5, window: 900 });
  });
});

describe('segment.hls bad input', () => {
  it('sends malformed items to the dead-letter port and goes on', () => {
    const ctx = fakeContext(segmentHls, {});
    const good = syntheticStream({ duration: 100 });
    const items = packageItems([{ stream: 's' } as MediaPacket, { ...good[0], dts: -5 }, { ...good[0], data: 'x' as never }, ...good], {}, ctx);
    expect(ctx.failures.map((f) => f.reason)).toEqual([expect.stringContaining('`rendition`'), expect.stringContaining('`dts`'), expect.stringContaining('`data`')]);
    expect(initsOf(items)).toHaveLength(1);
  });

  it('reports a codec it cannot package once, then drops that track\'s packets', () => {
    const ctx = fakeContext(segmentHls, {});
    const opus = syntheticStream({ duration: 200, frame: 0, audio: true }).map((p) => ({ ...p, track: audioTrack({ codec: 'opus' }) }));
    packageItems([...opus, ...syntheticStream({ duration: 200 })], {}, ctx);
    expect(ctx.failures).toHaveLength(1);
    expect(ctx.failures[0].reason).toContain('`opus`');
    expect(ctx.drops.unsupported_codec).toBe(opus.length - 1);
  });
});

describe('segment.hls reload', () => {
  it('hands its numbering to a successor instead of ending the playlists, which continues after a discontinuity', () => {
    const ctx = fakeContext(segmentHls, { segment: '1s' }, { stopReason: 'replaced' });
    const items = packageItems(syntheticStream({ duration: 2500 }), {}, ctx);
    expect(items.some((i) => i.type === 'end')).toBe(false);
    expect(segmentsOf(items).map((s) => s.msn)).toEqual([0, 1, 2]);
    const next = fakeContext(segmentHls, { segment: '1s' }, { restored: ctx.takeSnapshot() });
    const later = syntheticStream({ duration: 1000 }).map((p) => ({ ...p, dts: p.dts + 3000, pts: p.pts + 3000 }));
    const resumed = segmentsOf(packageItems([...later, end()], {}, next));
    expect(resumed.map((s) => [s.msn, s.discontinuity])).toEqual([[3, true]]);
  });
});

describe('segment.hls stats', () => {
  it('reports each stream\'s bitrate, fps, keyframe interval and counts once a second', () => {
    const clock = new VirtualClock(0);
    const ctx = fakeContext(segmentHls, { segment: '1s' }, { clock });
    const input = new Subject<Batch>();
    const run = drive(segmentHls.create(ctx), input);
    input.next(batchOf(syntheticStream({ duration: 2000, gop: 25, size: 1000 })));
    clock.advance(1000);
    // Two seconds of media arrived within one: the rates are per second of media, as the ingests report them.
    expect(ctx.portItems('stats')).toEqual([{ stream: 's', bitrate: 204_082, fps: 25, keyframe_interval: 1, dropped: 0, segments: 1, parts: 0, interval: 1000 }]);
    input.next(batchOf([{ stream: 's', rendition: 'source', track: videoTrack() } as never]));
    clock.advance(1000);
    expect(ctx.portItems('stats').at(-1)).toMatchObject({ stream: 's', keyframe_interval: 1, dropped: 1 });
    input.complete();
    expect(run.completed).toBe(true);
    expect(clock.pending).toBe(0);
  });
});

describe('segment.dash', () => {
  it('adds the DASH settings to init items and passes the rest unchanged', () => {
    const items = packageItems([...syntheticStream({ duration: 2500 }), end()], { segment: '1s' });
    const run = drive(segmentDash.create(fakeContext(segmentDash, { min_buffer_time: '1s', suggested_presentation_delay: '3s' })), [batchOf(items)]);
    const out = run.items() as CmafItem[];
    expect(out).toHaveLength(items.length);
    expect((out[0] as CmafInit).playlist.dash).toEqual({ minBufferTime: 1, suggestedPresentationDelay: 3 });
    expect((items[0] as CmafInit).playlist.dash).toBeUndefined();
    expect(out.slice(1)).toEqual(items.slice(1));
  });
});

describe('segment.hls reconnects', () => {
  it('continues a stream whose publisher reconnects within `reconnect`: numbering goes on after a discontinuity, one playlist, no end in between', () => {
    const clock = new VirtualClock(1_700_000_000_000);
    const input = new Subject<Batch>();
    const run = drive(segmentHls.create(fakeContext(segmentHls, { segment: '1s', reconnect: '5s' }, { clock })), input);
    input.next(batchOf([...syntheticStream({ duration: 2000, audio: true }), end()]));
    clock.advance(2000);
    // The same key publishes again, its timestamps from zero.
    input.next(batchOf([...syntheticStream({ duration: 2000, audio: true }), end()]));
    const items = run.items() as CmafItem[];
    expect(items.filter((i) => i.type === 'end')).toEqual([]);
    const video = segmentsOf(items, 'source');
    expect(video.map((s) => s.msn)).toEqual([0, 1, 2, 3]);
    expect(video.map((s) => s.discontinuity)).toEqual([false, false, true, false]);
    expect(segmentsOf(items, 'audio').map((s) => [s.msn, s.discontinuity])).toEqual([
      [0, false],
      [1, false],
      [2, true],
      [3, false],
    ]);
    // One publish: every init carries the same epoch, so the URLs go on.
    expect(new Set(initsOf(items).map((i) => i.epoch))).toEqual(new Set([(1_700_000_000_000).toString(36)]));
    const playlist = renderMedia(windowOf(items), windowOf(items).tracks.get('source')!);
    expect(playlist).not.toContain('#EXT-X-ENDLIST');
    expect(playlist.match(/#EXT-X-DISCONTINUITY\n/g)).toHaveLength(1);
    // Past the window the tracks and the stream end.
    clock.advance(5000);
    expect((run.items() as CmafItem[]).filter((i) => i.type === 'end')).toEqual([
      { type: 'end', stream: 's', track: 'source' },
      { type: 'end', stream: 's', track: 'audio' },
      { type: 'end', stream: 's' },
    ]);
    input.complete();
  });

  it('ends at once with `reconnect: 0s`, and a later publish gets a later epoch', () => {
    const clock = new VirtualClock(1_700_000_000_000);
    const items = packageItems([...syntheticStream({ duration: 1000 }), end(), ...syntheticStream({ duration: 1000 }), end()], { segment: '1s', reconnect: '0s' }, fakeContext(segmentHls, { segment: '1s', reconnect: '0s' }, { clock }));
    expect(items.filter((i) => i.type === 'end' && i.track === undefined)).toHaveLength(2);
    const epochs = initsOf(items).map((i) => i.epoch!);
    expect(epochs).toHaveLength(2);
    expect(parseInt(epochs[1], 36)).toBeGreaterThan(parseInt(epochs[0], 36));
  });

  it('hands its epoch to a successor on a reload, which goes on under it', () => {
    const ctx = fakeContext(segmentHls, { segment: '1s' }, { stopReason: 'replaced' });
    const first = packageItems(syntheticStream({ duration: 1000 }), {}, ctx);
    const successor = fakeContext(segmentHls, { segment: '1s' }, { restored: ctx.takeSnapshot() });
    const second = packageItems(syntheticStream({ duration: 1000 }), {}, successor);
    expect(initsOf(second)[0].epoch).toBe(initsOf(first)[0].epoch);
  });
});
