/**
 * The origin's window of a stream: segments slide, parts are kept only for
 * the last segments, inits are versioned and kept while referenced, the
 * discontinuity sequence counts what slid out, and the end marks every
 * track.
 */
import { describe, expect, it } from 'vitest';
import { applySegment, initName, listedPartSegments, partOf, segmentOf, windowBytes } from '../../media/cmaf-window.ts';
import type { CmafItem } from '../../media/segment.ts';
import { audioInfo, end, fakeInit, init, llSettings, segmentWithParts, videoInfo, windowOf } from '../helpers/cmaf-items.ts';


describe('CMAF window', () => {
  it('keeps `window` segments and drops the oldest with their bytes', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo)];
    for (let msn = 0; msn < 7; msn++) items.push(...segmentWithParts('k', 'v', msn));
    const track = windowOf(items, 1000).tracks.get('v')!;
    expect(track.segments.map((s) => s.msn)).toEqual([3, 4, 5, 6]);
    expect(track.nextMsn).toBe(7);
    expect(segmentOf(track, 2)).toBeUndefined();
    expect(segmentOf(track, 5)?.data.length).toBe(400);
  });

  it('keeps parts for the segments of the last three target durations, one more, and the open one', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo, { ...llSettings, window: 8 })];
    for (let msn = 0; msn < 8; msn++) items.push(...segmentWithParts('k', 'v', msn));
    items.push(...segmentWithParts('k', 'v', 8).slice(0, 2));
    const stream = windowOf(items, 1000);
    const track = stream.tracks.get('v')!;
    // 2 s segments, target 2 s: the last three are listed (6 s), one more is kept.
    expect(listedPartSegments(stream, track)).toBe(3);
    expect(track.segments.map((s) => s.parts.length)).toEqual([0, 0, 0, 0, 4, 4, 4, 4]);
    expect(track.openParts.map((p) => p.part)).toEqual([0, 1]);
    expect(partOf(track, 8, 1)?.data[0]).toBe(81);
    expect(partOf(track, 7, 3)?.data[0]).toBe(73);
    expect(partOf(track, 3, 0)).toBeUndefined();
    // 8 segments of 400 bytes, 16 kept parts of 100, 2 open parts, the init.
    expect(windowBytes(stream)).toBe(3200 + 1600 + 200 + track.init.data.length);
  });

  it('gives a changed init a new version and keeps the old one while a segment needs it', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo), ...segmentWithParts('k', 'v', 0)];
    items.push(init('k', 'v', { ...videoInfo, width: 1920, height: 1080 }, llSettings, fakeInit(90000, 1)), ...segmentWithParts('k', 'v', 1, { discontinuity: true }));
    const stream = windowOf(items, 1000);
    const track = stream.tracks.get('v')!;
    expect(track.init.version).toBe(2);
    expect(track.olderInits.map((i) => i.version)).toEqual([1]);
    expect(track.segments.map((s) => s.initVersion)).toEqual([1, 2]);
    expect(initName(stream, 1)).toBe('init-e-1.mp4');
    expect(initName(stream, 2)).toBe('init-e-2.mp4');
    for (let msn = 2; msn < 6; msn++) applySegment(stream, track, segmentWithParts('k', 'v', msn).at(-1) as never);
    expect(track.olderInits).toEqual([]);
  });

  it('the same init again changes nothing', () => {
    const stream = windowOf([init('k', 'v', videoInfo), init('k', 'v', videoInfo)]);
    expect(stream.tracks.get('v')!.init.version).toBe(1);
  });

  it('counts discontinuities that slide out of the window', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo)];
    for (let msn = 0; msn < 8; msn++) items.push(...segmentWithParts('k', 'v', msn, { discontinuity: msn === 2 || msn === 5 }));
    const track = windowOf(items, 1000).tracks.get('v')!;
    // Window 4..7: the discontinuity before 2 slid out; the one before 5 is listed.
    expect(track.discontinuitySequence).toBe(1);
    expect(track.segments.map((s) => s.discontinuity)).toEqual([false, true, false, false]);
    expect(track.segments[0].period).not.toBe(track.segments[1].period);
    expect(track.segments[1].period).toBe(track.segments[3].period);
  });

  it('an end of the stream ends every track and stamps the time; an end of one track does not', () => {
    const one = windowOf([init('k', 'v', videoInfo), init('k', 'a', audioInfo), end('k', 'v')]);
    expect(one.tracks.get('v')!.ended).toBe(true);
    expect(one.endedAt).toBeUndefined();
    const all = windowOf([init('k', 'v', videoInfo), init('k', 'a', audioInfo), end('k')], 1000);
    expect([...all.tracks.values()].every((t) => t.ended)).toBe(true);
    expect(all.endedAt).toBe(1000);
  });

  it('finds segments and parts by number across a gap in the numbering', () => {
    const items: CmafItem[] = [init('k', 'v', videoInfo), ...segmentWithParts('k', 'v', 0), ...segmentWithParts('k', 'v', 1), ...segmentWithParts('k', 'v', 5), ...segmentWithParts('k', 'v', 6)];
    const track = windowOf(items).tracks.get('v')!;
    expect([0, 1, 5, 6].map((msn) => segmentOf(track, msn)?.msn)).toEqual([0, 1, 5, 6]);
    expect([2, 3, 4, 7, -1].map((msn) => segmentOf(track, msn))).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(partOf(track, 6, 1)?.part).toBe(1);
  });

  it('keeps the announced renditions across inits that announce none, and forgets them when the ended stream reopens', () => {
    const announced = { ...init('k', 'v', videoInfo), renditions: ['v', 'low'] };
    const live = windowOf([announced, init('k', 'a', audioInfo)], 1000);
    expect(live.renditions).toEqual(['v', 'low']);
    // The stream ends; it comes back through a graph that announces nothing (no encode): the old list is gone.
    const reopened = windowOf([announced, end('k'), init('k', 'v', videoInfo)], 1000);
    expect(reopened.renditions).toBeUndefined();
    const reannounced = windowOf([announced, end('k'), init('k', 'a', audioInfo), { ...init('k', 'v', videoInfo), renditions: ['v'] }], 1000);
    expect(reannounced.renditions).toEqual(['v']);
  });
});
