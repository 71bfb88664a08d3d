/**
 * The CMAF initialisation segment of one track: `ftyp` with the CMAF
 * brands, then a `moov` with one `trak` whose sample tables are empty (the
 * samples live in fragments) and an `mvex`/`trex` that announces them.
 */
import type { TrackInfo } from '../packet.ts';
import { BoxWriter } from './box-writer.ts';
import { writeSampleEntry } from './sample-entry.ts';

/** The track ID every init and fragment of the packager uses: one track per init, CMAF style. */
export const cmafTrackId = 1;

const unityMatrix = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000];

/**
 * Writes the init segment (`ftyp` + `moov`) for `track`; its media
 * timescale is `track.timescale`, so packet timestamps go into fragments
 * unchanged.
 *
 * @throws UnsupportedCodecError for a codec without an fMP4 sample entry here.
 */
export function writeInitSegment(track: TrackInfo, trackId = cmafTrackId): Buffer {
  const w = new BoxWriter(256 + track.config.length);
  const video = track.kind === 'video';
  w.box('ftyp', () => {
    w.fourcc('iso6').u32(0);
    for (const brand of ['iso6', 'cmfc', 'mp41']) w.fourcc(brand);
  });
  const moov = w.begin('moov');
  w.fullBox('mvhd', 0, 0, () => {
    w.u32(0).u32(0).u32(1000).u32(0); // creation, modification, timescale, duration
    w.u32(0x00010000).u16(0x0100).zeros(10); // rate, volume, reserved
    for (const value of unityMatrix) w.u32(value);
    w.zeros(24).u32(trackId + 1); // pre_defined, next_track_ID
  });
  const trak = w.begin('trak');
  w.fullBox('tkhd', 0, 0x000003, () => {
    w.u32(0).u32(0).u32(trackId).u32(0).u32(0); // creation, modification, track_ID, reserved, duration
    w.zeros(8).u16(0).u16(0); // reserved, layer, alternate_group
    w.u16(video ? 0 : 0x0100).u16(0); // volume, reserved
    for (const value of unityMatrix) w.u32(value);
    w.u32((track.width ?? 0) * 0x10000).u32((track.height ?? 0) * 0x10000);
  });
  const mdia = w.begin('mdia');
  w.fullBox('mdhd', 0, 0, () => {
    w.u32(0).u32(0).u32(track.timescale).u32(0);
    w.u16(0x55c4).u16(0); // language `und`, pre_defined
  });
  w.fullBox('hdlr', 0, 0, () => {
    w.u32(0).fourcc(video ? 'vide' : 'soun').zeros(12);
    w.bytes(Buffer.from(video ? 'VideoHandler\0' : 'SoundHandler\0', 'latin1'));
  });
  const minf = w.begin('minf');
  if (video) w.fullBox('vmhd', 0, 1, () => w.zeros(8));
  else w.fullBox('smhd', 0, 0, () => w.zeros(4));
  w.box('dinf', () => {
    w.fullBox('dref', 0, 0, () => {
      w.u32(1);
      w.fullBox('url ', 0, 1, () => undefined);
    });
  });
  const stbl = w.begin('stbl');
  w.fullBox('stsd', 0, 0, () => {
    w.u32(1);
    writeSampleEntry(w, track);
  });
  w.fullBox('stts', 0, 0, () => w.u32(0));
  w.fullBox('stsc', 0, 0, () => w.u32(0));
  w.fullBox('stsz', 0, 0, () => w.u32(0).u32(0));
  w.fullBox('stco', 0, 0, () => w.u32(0));
  w.end(stbl).end(minf).end(mdia).end(trak);
  w.box('mvex', () => {
    w.fullBox('trex', 0, 0, () => {
      w.u32(trackId).u32(1).u32(0).u32(0).u32(0); // track_ID, description index, duration, size, flags
    });
  });
  w.end(moov);
  return w.finish();
}
