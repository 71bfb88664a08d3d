/**
 * A CMAF fragment (chunk) of one track: `moof` (`mfhd` sequence number,
 * `traf` with `tfhd` default-base-is-moof, `tfdt` version 1 and a `trun`
 * version 1 with per-sample duration, size, flags and signed composition
 * offsets) followed by its `mdat`. Written into one buffer of the exact
 * size: this runs for every part of every track.
 */
import { cmafTrackId } from './init-segment.ts';

/** One sample of a fragment: timing in the track's timescale, and its bytes. */
export interface FragmentSample {
  duration: number;
  /** Presentation minus decode time (signed). */
  compositionOffset: number;
  /** A sync sample (a keyframe; every audio frame). */
  sync: boolean;
  data: Buffer;
}

/** What a fragment needs besides its samples. */
export interface FragmentHeader {
  /** `mfhd` sequence number: 1, 2, 3… per track. */
  sequence: number;
  /** Decode time of the first sample (`tfdt`), in the track's timescale. */
  baseDecodeTime: number;
  trackId?: number;
}

/** sample_depends_on = 2 (depends on no other sample). */
export const syncSampleFlags = 0x02000000;
/** sample_depends_on = 1, sample_is_non_sync_sample = 1. */
export const nonSyncSampleFlags = 0x01010000;

const trunDataOffset = 0x000001;
const trunDuration = 0x000100;
const trunSize = 0x000200;
const trunFlags = 0x000400;
const trunCompositionOffset = 0x000800;
const tfhdDefaultBaseIsMoof = 0x020000;

/**
 * Writes `moof` + `mdat` for `samples`. Per-sample flags are written only
 * when some sample is not a sync sample, composition offsets only when one
 * is non-zero: audio fragments carry 8 bytes a sample, video 16.
 */
export function writeFragment(header: FragmentHeader, samples: readonly FragmentSample[]): Buffer {
  let mdatBytes = 0;
  let allSync = true;
  let anyOffset = false;
  for (const sample of samples) {
    mdatBytes += sample.data.length;
    if (!sample.sync) allSync = false;
    if (sample.compositionOffset !== 0) anyOffset = true;
  }
  const perSample = 8 + (allSync ? 0 : 4) + (anyOffset ? 4 : 0);
  const trunBytes = 12 + 8 + perSample * samples.length;
  const tfhdBytes = 16;
  const tfdtBytes = 20;
  const trafBytes = 8 + tfhdBytes + tfdtBytes + trunBytes;
  const moofBytes = 8 + 16 + trafBytes;
  const out = Buffer.allocUnsafe(moofBytes + 8 + mdatBytes);
  let at = 0;
  const u32 = (value: number): void => {
    out.writeUInt32BE(value >>> 0, at);
    at += 4;
  };
  const head = (size: number, type: string): void => {
    u32(size);
    out.write(type, at, 4, 'latin1');
    at += 4;
  };
  head(moofBytes, 'moof');
  head(16, 'mfhd');
  u32(0);
  u32(header.sequence);
  head(trafBytes, 'traf');
  head(tfhdBytes, 'tfhd');
  u32(tfhdDefaultBaseIsMoof);
  u32(header.trackId ?? cmafTrackId);
  head(tfdtBytes, 'tfdt');
  u32(0x01000000); // version 1: a 64-bit decode time
  u32(Math.floor(header.baseDecodeTime / 0x1_0000_0000));
  u32(header.baseDecodeTime % 0x1_0000_0000);
  head(trunBytes, 'trun');
  u32(0x01000000 | trunDataOffset | trunDuration | trunSize | (allSync ? 0 : trunFlags) | (anyOffset ? trunCompositionOffset : 0));
  u32(samples.length);
  u32(moofBytes + 8); // data offset from the start of the moof to the first sample
  for (const sample of samples) {
    u32(sample.duration);
    u32(sample.data.length);
    if (!allSync) u32(sample.sync ? syncSampleFlags : nonSyncSampleFlags);
    if (anyOffset) {
      out.writeInt32BE(sample.compositionOffset | 0, at);
      at += 4;
    }
  }
  head(8 + mdatBytes, 'mdat');
  for (const sample of samples) {
    sample.data.copy(out, at);
    at += sample.data.length;
  }
  return out;
}
