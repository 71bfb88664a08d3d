/**
 * One elementary stream (PID) of an MPEG-TS stream as the demuxer
 * (`mpegts.ts`) assembles it: the PES in progress, its continuity and loss
 * state, and what its header declares.
 */
import { TIMESCALE } from './mpegts-pes.ts';

/** A PID being read: the PES in progress and what its packets have said. */
export interface Elementary {
  kind: 'video' | 'audio';
  chunks: Buffer[];
  /** Bytes in `chunks`. */
  bytes: number;
  /** The last continuity counter seen on this PID (undefined until the first packet, or after one in error). */
  counter: number | undefined;
  /** Packets of a PES whose start was lost are being skipped (its drop is already counted). */
  lost: boolean;
  /**
   * The PES in progress (assembled or skipped) ended with the last packet of this PID: its payload stopped
   * short of a packet after its first (adaptation-field stuffing: muxers stuff where a PES ends, and may
   * stuff its first packet wherever it ends), or it holds all the bytes its header declares. What an
   * unbounded video PES has instead of a length.
   */
  ended: boolean;
  /**
   * The PES in progress is one packet so far, and that packet is stuffed: likely whole, but a muxer may
   * stuff a first packet with more to come, so only the input's end (with no loss to say otherwise) trusts it.
   */
  padded: boolean;
  /** The last unwrapped DTS (the PTS of PES without one), in 90 kHz units: the reference the next is unwrapped against. */
  lastDts: number | undefined;
  /** The DTS step between the last two video PES read with no loss between them: one frame's duration. */
  frameTicks: number | undefined;
  /** PES counted lost since the last one read (undefined: none lost). */
  lostSince: number | undefined;
}

export function elementary(kind: 'video' | 'audio'): Elementary {
  return { kind, chunks: [], bytes: 0, counter: undefined, lost: false, ended: false, padded: false, lastDts: undefined, frameTicks: undefined, lostSince: undefined };
}

/** The length a PES header declares (0: unbounded, or its first 6 bytes not here yet), from its first chunks. */
export function declaredLength(chunks: Buffer[]): number {
  let head = chunks[0]!;
  // A first packet with a long adaptation field may carry less than the 6 bytes up to the length.
  if (head.length < 6) head = Buffer.concat(chunks.slice(0, 6));
  return head.length >= 6 ? head.readUInt16BE(4) : 0;
}

/** The bytes the PES being assembled still lacks of its declared length (undefined for an unbounded one). */
export function declaredLeft(es: Elementary): number | undefined {
  const declared = declaredLength(es.chunks);
  return declared ? 6 + declared - es.bytes : undefined;
}

/** Whether the PES being assembled holds all the bytes its header declares (false for an unbounded video PES, which declares none). */
export function declaredComplete(es: Elementary): boolean {
  const left = declaredLeft(es);
  return left !== undefined && left <= 0;
}

/**
 * A video PES read after a loss, at `dts`: the frames its DTS says are
 * missing since the last one read (whole PES lost between two others leave
 * no other trace), beyond those already counted, to count now. A jump of
 * more than a few seconds is a timestamp discontinuity, not a loss. Learns
 * the frame duration from steps with no loss between.
 */
export function skippedFrames(es: Elementary, dts: number): number {
  if (es.kind !== 'video' || es.lastDts === undefined) return 0;
  const step = dts - es.lastDts;
  if (es.lostSince === undefined) {
    if (step > 0) es.frameTicks = step;
    return 0;
  }
  if (es.frameTicks === undefined) return 0;
  const frames = Math.round(step / es.frameTicks) - 1;
  return frames > es.lostSince && step <= 5 * TIMESCALE ? frames - es.lostSince : 0;
}
