/**
 * The HLS and DASH renderers over a stream window, line by line and
 * attribute by attribute (no snapshots): master variants and bandwidths,
 * media playlists with and without parts, discontinuities, init versions,
 * the end; the MPD's timing, representations, timeline and periods.
 */
import { describe, expect, it } from 'vitest';
import type { StreamWindow } from '../../media/cmaf-window.ts';
import { initTimescale, isoDuration, renderMpd } from '../../media/dash/mpd.ts';
import { renderMaster, renderMedia } from '../../media/hls/playlist.ts';
import type { CmafItem, CmafSegment, PlaylistSettings } from '../../media/segment.ts';
import { audioInfo, fakeInit, init, llSettings, lowVideoInfo, part, segmentWithParts, videoInfo, windowOf } from '../helpers/cmaf-items.ts';


/** A stream with video rungs `720p` and `360p` and an audio track, `segments` segments each, then `open` parts of the next. */
function ladder(segments: number, open = 0, settings: PlaylistSettings = llSettings): StreamWindow {
  const items: CmafItem[] = [init('k', '720p', videoInfo, settings), init('k', '360p', lowVideoInfo, settings), init('k', 'audio', audioInfo, settings)];
  for (let msn = 0; msn < segments; msn++) {
    for (const track of ['720p', '360p']) items.push(...segmentWithParts('k', track, msn));
    items.push(...segmentWithParts('k', 'audio', msn, { timescale: 48000 }));
  }
  for (const track of ['720p', '360p', 'audio']) items.push(...segmentWithParts('k', track, segments).slice(0, open));
  return windowOf(items);
}

function attributes(line: string): Record<string, string> {
  const list = line.slice(line.indexOf(':') + 1);
  const result: Record<string, string> = {};
  for (const match of list.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) result[match[1]] = match[2].replace(/^"|"$/g, '');
  return result;
}

describe('HLS master playlist', () => {
  it('lists a variant per video track with measured bandwidths, and the audio group', () => {
    const lines = renderMaster(ladder(2))!.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual(['#EXTM3U', '#EXT-X-VERSION:9', '#EXT-X-INDEPENDENT-SEGMENTS']);
    const media = lines.filter((line) => line.startsWith('#EXT-X-MEDIA:'));
    expect(media).toHaveLength(1);
    expect(attributes(media[0])).toMatchObject({ TYPE: 'AUDIO', 'GROUP-ID': 'aud', NAME: 'audio', DEFAULT: 'YES', CHANNELS: '2', URI: 'audio/index.m3u8' });
    const variants = lines.flatMap((line, index) => (line.startsWith('#EXT-X-STREAM-INF:') ? [{ attrs: attributes(line), uri: lines[index + 1] }] : []));
    expect(variants.map((v) => v.uri)).toEqual(['720p/index.m3u8', '360p/index.m3u8']);
    // 400 bytes per 2 s segment: 1600 bit/s per track, video plus audio.
    expect(variants[0].attrs).toMatchObject({ BANDWIDTH: '3200', 'AVERAGE-BANDWIDTH': '3200', RESOLUTION: '1280x720', CODECS: 'avc1.64001f,mp4a.40.2', 'FRAME-RATE': '30.000', AUDIO: 'aud' });
    expect(variants[1].attrs).toMatchObject({ RESOLUTION: '640x360', CODECS: 'avc1.4d401e,mp4a.40.2' });
  });

  it('has nothing to offer before a segment, and version 7 without parts', () => {
    expect(renderMaster(ladder(0, 2))).toBeUndefined();
    expect(renderMaster(ladder(1, 0, { segment: 2, window: 4 }))).toContain('#EXT-X-VERSION:7\n');
  });

  it('lists audio tracks as variants when there is no video', () => {
    const stream = windowOf([init('k', 'audio', audioInfo), ...segmentWithParts('k', 'audio', 0)]);
    const lines = renderMaster(stream)!.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('#EXT-X-MEDIA:'))).toEqual([]);
    expect(attributes(lines.find((line) => line.startsWith('#EXT-X-STREAM-INF:'))!)).toMatchObject({ CODECS: 'mp4a.40.2', BANDWIDTH: '1600' });
  });
});

describe('HLS media playlist', () => {
  it('LL-HLS: server control, part target, parts of the last three target durations and of the open one, a preload hint, rendition reports', () => {
    const text = renderMedia(ladder(6, 2), ladder(6, 2).tracks.get('720p')!);
    const lines = text.trim().split('\n');
    expect(lines).toContain('#EXT-X-TARGETDURATION:2');
    expect(attributes(lines.find((l) => l.startsWith('#EXT-X-SERVER-CONTROL:'))!)).toEqual({ 'CAN-BLOCK-RELOAD': 'YES', 'PART-HOLD-BACK': '1.5' });
    expect(lines).toContain('#EXT-X-PART-INF:PART-TARGET=0.5');
    expect(lines).toContain('#EXT-X-MEDIA-SEQUENCE:2');
    expect(lines).toContain('#EXT-X-DISCONTINUITY-SEQUENCE:0');
    expect(lines.filter((l) => l.startsWith('#EXT-X-MAP:'))).toEqual(['#EXT-X-MAP:URI="init-e-1.mp4"']);
    expect(lines.filter((l) => l.endsWith('.m4s') && !l.startsWith('#'))).toEqual(['e-2.m4s', 'e-3.m4s', 'e-4.m4s', 'e-5.m4s']);
    expect(lines.filter((l) => l.startsWith('#EXTINF:'))).toEqual(Array(4).fill('#EXTINF:2,'));
    expect(lines.filter((l) => l.startsWith('#EXT-X-PROGRAM-DATE-TIME:'))[0]).toBe('#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.000Z');
    const parts = lines.filter((l) => l.startsWith('#EXT-X-PART:')).map(attributes);
    expect(parts.map((p) => p.URI)).toEqual(['e-3.0.m4s', 'e-3.1.m4s', 'e-3.2.m4s', 'e-3.3.m4s', 'e-4.0.m4s', 'e-4.1.m4s', 'e-4.2.m4s', 'e-4.3.m4s', 'e-5.0.m4s', 'e-5.1.m4s', 'e-5.2.m4s', 'e-5.3.m4s', 'e-6.0.m4s', 'e-6.1.m4s']);
    expect(parts[0]).toEqual({ DURATION: '0.5', URI: 'e-3.0.m4s', INDEPENDENT: 'YES' });
    expect(lines.indexOf('#EXT-X-PART:DURATION=0.5,URI="e-3.0.m4s",INDEPENDENT=YES')).toBeGreaterThan(lines.indexOf('e-2.m4s'));
    expect(parts[1].INDEPENDENT).toBeUndefined();
    // Parts of a segment come before its EXTINF; the open segment's after the last one.
    expect(lines.indexOf('#EXT-X-PART:DURATION=0.5,URI="e-4.3.m4s"')).toBeLessThan(lines.indexOf('e-4.m4s'));
    expect(lines.indexOf('#EXT-X-PART:DURATION=0.5,URI="e-6.0.m4s",INDEPENDENT=YES')).toBeGreaterThan(lines.indexOf('e-5.m4s'));
    expect(lines).toContain('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="e-6.2.m4s"');
    expect(lines).toContain('#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=6,LAST-PART=1');
    expect(lines).not.toContain('#EXT-X-ENDLIST');
  });

  it('hints the first part of the next segment when none of it exists yet', () => {
    const stream = ladder(2, 0);
    expect(renderMedia(stream, stream.tracks.get('audio')!)).toContain('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="e-2.0.m4s"\n');
  });

  it('without parts: no LL tags, version 7', () => {
    const stream = ladder(3, 0, { segment: 2, window: 5 });
    const text = renderMedia(stream, stream.tracks.get('720p')!);
    expect(text).toContain('#EXT-X-VERSION:7\n');
    for (const tag of ['#EXT-X-PART', '#EXT-X-SERVER-CONTROL', '#EXT-X-PRELOAD-HINT', '#EXT-X-RENDITION-REPORT']) expect(text).not.toContain(tag);
  });

  it('marks discontinuities, switches EXT-X-MAP on a new init, and ends', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo), ...segmentWithParts('k', 'v', 0)];
    items.push(init('k', 'v', { ...videoInfo, width: 1920, height: 1080 }, llSettings, fakeInit(90000, 1)), ...segmentWithParts('k', 'v', 1, { discontinuity: true, parts: 6 }), { type: 'end', stream: 'k' });
    const stream = windowOf(items);
    const lines = renderMedia(stream, stream.tracks.get('v')!).trim().split('\n');
    const at = (line: string) => lines.indexOf(line);
    expect(at('#EXT-X-DISCONTINUITY')).toBeGreaterThan(at('e-0.m4s'));
    expect(at('#EXT-X-MAP:URI="init-e-2.mp4"')).toBeGreaterThan(at('#EXT-X-DISCONTINUITY'));
    expect(at('#EXT-X-MAP:URI="init-e-2.mp4"')).toBeLessThan(at('e-1.m4s'));
    expect(lines.at(-1)).toBe('#EXT-X-ENDLIST');
    expect(lines.some((l) => l.startsWith('#EXT-X-PRELOAD-HINT'))).toBe(false);
  });

  it('keeps EXT-X-TARGETDURATION for the life of a track: fixed by the first segment, not raised by a longer one later', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo), init('k', 'a', audioInfo), ...segmentWithParts('k', 'v', 0, { parts: 6 }), ...segmentWithParts('k', 'a', 0)];
    const before = windowOf(items);
    expect(renderMedia(before, before.tracks.get('v')!)).toContain('#EXT-X-TARGETDURATION:3\n');
    expect(renderMedia(before, before.tracks.get('a')!)).toContain('#EXT-X-TARGETDURATION:2\n');
    items.push(...segmentWithParts('k', 'v', 1, { parts: 10 }), ...segmentWithParts('k', 'a', 1, { parts: 8 }));
    const after = windowOf(items);
    expect(renderMedia(after, after.tracks.get('v')!)).toContain('#EXT-X-TARGETDURATION:3\n');
    expect(renderMedia(after, after.tracks.get('a')!)).toContain('#EXT-X-TARGETDURATION:2\n');
  });

  it('lists EXT-X-DISCONTINUITY (then the new EXT-X-MAP) before the open parts of a segment after a discontinuity', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo), ...segmentWithParts('k', 'v', 0)];
    items.push(init('k', 'v', { ...videoInfo, width: 1920, height: 1080 }, llSettings, fakeInit(90000, 1)), { ...part('k', 'v', 1, 0), discontinuity: true }, part('k', 'v', 1, 1));
    const stream = windowOf(items);
    const lines = renderMedia(stream, stream.tracks.get('v')!).trim().split('\n');
    const at = (line: string) => lines.indexOf(line);
    expect(lines.filter((l) => l === '#EXT-X-DISCONTINUITY')).toHaveLength(1);
    expect(at('#EXT-X-DISCONTINUITY')).toBeGreaterThan(at('e-0.m4s'));
    expect(at('#EXT-X-MAP:URI="init-e-2.mp4"')).toBe(at('#EXT-X-DISCONTINUITY') + 1);
    expect(at('#EXT-X-PART:DURATION=0.5,URI="e-1.0.m4s",INDEPENDENT=YES')).toBe(at('#EXT-X-DISCONTINUITY') + 2);
    // Once the segment is finished the tag stays before it, once.
    const finished = windowOf([...items, segmentWithParts('k', 'v', 1, { discontinuity: true }).at(-1)!]);
    expect(renderMedia(finished, finished.tracks.get('v')!).match(/#EXT-X-DISCONTINUITY\n/g)).toHaveLength(1);
  });
});

describe('DASH MPD', () => {
  it('is dynamic, with its timing attributes, a video and an audio AdaptationSet and a timeline per representation', () => {
    const stream = ladder(6, 2);
    const now = Date.UTC(2026, 0, 1, 0, 0, 13);
    const xml = renderMpd(stream, now)!;
    const mpd = /<MPD [^>]*>/.exec(xml)![0];
    expect(mpd).toContain('type="dynamic"');
    expect(mpd).toContain('availabilityStartTime="2026-01-01T00:00:00.000Z"');
    expect(mpd).toContain('publishTime="2026-01-01T00:00:13.000Z"');
    expect(mpd).toContain('minimumUpdatePeriod="PT2S"');
    expect(mpd).toContain('timeShiftBufferDepth="PT8S"');
    expect(mpd).toContain('minBufferTime="PT1S"');
    expect(xml.match(/<Period /g)).toHaveLength(1);
    expect(xml).toContain('<Period id="p0" start="PT0S">');
    expect(xml).toMatch(/<AdaptationSet id="0" contentType="video" mimeType="video\/mp4"/);
    expect(xml).toMatch(/<AdaptationSet id="1" contentType="audio" mimeType="audio\/mp4"/);
    expect(xml).toContain('<Representation id="720p" bandwidth="1600" codecs="avc1.64001f" width="1280" height="720" frameRate="30">');
    expect(xml).toContain('<Representation id="audio" bandwidth="1600" codecs="mp4a.40.2" audioSamplingRate="48000">');
    const templates = [...xml.matchAll(/<SegmentTemplate [^>]*>/g)].map((m) => m[0]);
    expect(templates).toHaveLength(3);
    expect(templates[0]).toContain('timescale="90000"');
    expect(templates[0]).toContain('startNumber="2"');
    expect(templates[0]).toContain('presentationTimeOffset="0"');
    expect(templates[0]).toContain('initialization="$RepresentationID$/init-e-1.mp4"');
    expect(templates[0]).toContain('media="$RepresentationID$/e-$Number$.m4s"');
    expect(templates[0]).toContain('availabilityTimeOffset="1.5"');
    expect(templates[2]).toContain('timescale="48000"');
    expect(xml).toContain('<S t="360000" d="180000" r="3"/>');
    expect(xml).toContain('<S t="192000" d="96000" r="3"/>');
  });

  it('starts a period for every track when the video restarts alone, audio included, with each offset from the period start', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo), init('k', 'a', audioInfo)];
    for (let msn = 0; msn < 4; msn++) {
      const [video, audio] = [segmentWithParts('k', 'v', msn, { discontinuity: msn === 2 }), segmentWithParts('k', 'a', msn, { timescale: 48000 })];
      // The encoder restarted: the video's timeline starts again at 0, the copied audio's goes on.
      const segment = video.at(-1) as CmafSegment;
      if (msn >= 2) segment.startTime = (msn - 2) * 2 * 90000;
      items.push(...video, ...audio);
    }
    const xml = renderMpd(windowOf(items), Date.UTC(2026, 0, 1, 0, 0, 9))!;
    const periods = xml.split('<Period ').slice(1);
    expect(periods).toHaveLength(2);
    expect(periods[0]).toContain('id="p0" start="PT0S"');
    expect(periods[1]).toContain('id="p2" start="PT4S"');
    expect(periods[0].match(/presentationTimeOffset="0" startNumber="0"/g)).toHaveLength(2);
    expect(periods[1]).toContain('timescale="90000" presentationTimeOffset="0" startNumber="2"');
    expect(periods[1]).toContain('timescale="48000" presentationTimeOffset="192000" startNumber="2"');
  });

  it('opens a period at a discontinuity, and closes the presentation once ended', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo)];
    for (let msn = 0; msn < 4; msn++) items.push(...segmentWithParts('k', 'v', msn, { discontinuity: msn === 2 }));
    items.push({ type: 'end', stream: 'k' });
    const xml = renderMpd(windowOf(items), Date.UTC(2026, 0, 1, 0, 0, 9))!;
    expect(xml).toContain('<Period id="p0" start="PT0S">');
    expect(xml).toContain('<Period id="p2" start="PT4S">');
    expect(xml).toContain('presentationTimeOffset="360000" startNumber="2"');
    expect(xml).not.toContain('minimumUpdatePeriod');
    expect(xml).toContain('mediaPresentationDuration="PT8S"');
    expect(xml).not.toContain('availabilityTimeOffset');
  });

  it('reads the timescale from the init, and writes durations', () => {
    expect(initTimescale(fakeInit(12800))).toBe(12800);
    expect(initTimescale(Buffer.from('no boxes here'))).toBeUndefined();
    expect(isoDuration(1.5)).toBe('PT1.5S');
    expect(renderMpd(ladder(0, 2), 0)).toBeUndefined();
  });
});
