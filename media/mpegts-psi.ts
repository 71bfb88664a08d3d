/**
 * MPEG-TS pieces the demuxer (`mpegts.ts`) needs beside its PES reading:
 * the PSI tables it writes for an audio transcoder (a PAT and a PMT naming
 * one stream, with their CRC), the audio codecs it recognises from a PMT
 * entry without decoding them, and the stuffing test of an adaptation field.
 */

const PACKET = 188;
const SYNC = 0x47;

/** The program, PMT PID and stream PID of the tables written for a transcoder (`patPacket`, `pmtPacket`). */
export const FORWARD_PROGRAM = 1;
export const FORWARD_PMT_PID = 0x1000;
export const FORWARD_AUDIO_PID = 0x0100;

/** A PSI section (from its table id, without its CRC, which is appended) in one TS packet on `pid`, with continuity counter `counter`. */
function psiPacket(pid: number, counter: number, body: Buffer): Buffer {
  const packet = Buffer.alloc(PACKET, 0xff);
  packet.set([SYNC, 0x40 | (pid >> 8), pid & 0xff, 0x10 | (counter & 0x0f), 0x00]);
  body.copy(packet, 5);
  packet.writeUInt32BE(crc32Mpeg(body), 5 + body.length);
  return packet;
}

/** A PAT naming one program and its PMT PID, in one TS packet (with its CRC: ffmpeg checks it). */
export function patPacket(program: number, pmtPid: number, counter = 0): Buffer {
  const section = Buffer.from([0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0, 0, program >> 8, program & 0xff, 0xe0 | (pmtPid >> 8), pmtPid & 0xff]);
  return psiPacket(0, counter, section);
}

/**
 * A PMT for `program` listing one elementary stream (`type` on `pid`, with
 * its ES `descriptors`) and no PCR PID, in one TS packet. `version` (0-31)
 * changes when the stream does, so a demuxer reading it re-maps.
 *
 * @example
 * pmtPacket({ program: 1, pmtPid: 0x1000, version: 0, type: 0x03, pid: 0x100, descriptors: Buffer.alloc(0) });
 */
export function pmtPacket(table: { program: number; pmtPid: number; version: number; type: number; pid: number; descriptors: Buffer; counter?: number }): Buffer {
  const { program, pid, descriptors } = table;
  // Section length: 9 bytes of header after it, the 5-byte stream entry, its descriptors, the CRC.
  const length = 9 + 5 + descriptors.length + 4;
  if (length + 3 + 1 + 4 > PACKET) throw new RangeError('PMT descriptors too long for one TS packet');
  const section = Buffer.concat([
    Buffer.from([0x02, 0xb0 | (length >> 8), length & 0xff, program >> 8, program & 0xff, 0xc1 | ((table.version & 0x1f) << 1), 0, 0, 0xff, 0xff, 0xf0, 0]),
    Buffer.from([table.type, 0xe0 | (pid >> 8), pid & 0xff, 0xf0 | (descriptors.length >> 8), descriptors.length & 0xff]),
    descriptors,
  ]);
  return psiPacket(table.pmtPid, table.counter ?? 0, section);
}

/** CRC-32/MPEG-2, as PSI sections carry it. */
export function crc32Mpeg(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

/**
 * The audio codec of a PMT entry that is audio ffmpeg decodes but the
 * reader does not: MPEG-1/2 audio (0x03, 0x04), AC-3 (0x81, or private data
 * with the DVB AC-3 descriptor or an `AC-3` registration), E-AC-3 (0x87, or
 * their E-AC-3 forms), Opus (private data registered `Opus`). Undefined for
 * anything else (video, subtitles, teletext, SCTE-35, SMPTE 302M; and AAC in
 * LATM, 0x11, whose first frames ffmpeg 5.1 sends on from a pipe without
 * their timestamps).
 */
export function foreignAudioCodec(type: number, descriptors: Buffer): string | undefined {
  if (type === 0x03 || type === 0x04) return 'MPEG audio (MP2)';
  if (type === 0x81) return 'AC-3';
  if (type === 0x87) return 'E-AC-3';
  if (type !== 0x06) return undefined;
  for (let i = 0; i + 2 <= descriptors.length; i += 2 + descriptors[i + 1]!) {
    const tag = descriptors[i]!;
    const body = descriptors.subarray(i + 2, i + 2 + descriptors[i + 1]!);
    if (tag === 0x6a) return 'AC-3';
    if (tag === 0x7a) return 'E-AC-3';
    if (tag === 0x05 && body.length >= 4) {
      const format = body.toString('latin1', 0, 4);
      if (format === 'AC-3') return 'AC-3';
      if (format === 'EAC3') return 'E-AC-3';
      if (format === 'Opus') return 'Opus';
    }
  }
  return undefined;
}

/**
 * Whether a TS packet's adaptation field holds stuffing: bytes past its flags
 * and the fields they announce. Muxers stuff the packet where a PES ends, its
 * payload being too short to fill it; but 13818-1 allows stuffing in any
 * packet, so the caller trusts it only where a PES can end.
 */
export function hasStuffing(packet: Buffer): boolean {
  const length = packet[4]!;
  // A zero-length adaptation field is itself the one byte of stuffing.
  if (length === 0) return true;
  const flags = packet[5]!;
  let used = 1;
  if (flags & 0x10) used += 6; // PCR
  if (flags & 0x08) used += 6; // OPCR
  if (flags & 0x04) used += 1; // splice countdown
  if (flags & 0x02) used += 1 + (used < length ? packet[5 + used]! : 0); // private data
  if (flags & 0x01) used += 1 + (used < length ? packet[5 + used]! : 0); // extension
  return length > used;
}
