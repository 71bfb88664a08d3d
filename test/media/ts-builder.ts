/**
 * Builds small MPEG-TS byte strings by hand for the pure demuxer tests:
 * PAT, PMT and PES packets split into 188-byte packets (CRCs left zero, as
 * the demuxer does not check them).
 */
const PMT_PID = 0x1000;
export const VIDEO_PID = 0x100;
export const AUDIO_PID = 0x101;

function packets(pid: number, payload: Buffer, counter: { n: number }, firstPayload = 184): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0, first = true; offset < payload.length || first; first = false) {
    // `firstPayload` short of 184 stuffs the first packet though more follow, as 13818-1 allows.
    const room = first ? firstPayload : 184;
    const take = Math.min(room, payload.length - offset);
    const packet = Buffer.alloc(188, 0xff);
    packet[0] = 0x47;
    packet[1] = (first ? 0x40 : 0) | (pid >> 8);
    packet[2] = pid & 0xff;
    if (take < 184) {
      // Stuffing goes in an adaptation field, so the payload ends the packet.
      const stuffing = 184 - take;
      packet[3] = 0x30 | (counter.n++ & 0x0f);
      packet[4] = stuffing - 1;
      if (stuffing > 1) packet[5] = 0;
      payload.copy(packet, 4 + stuffing, offset, offset + take);
    } else {
      packet[3] = 0x10 | (counter.n++ & 0x0f);
      payload.copy(packet, 4, offset, offset + take);
    }
    out.push(packet);
    offset += take;
  }
  return out;
}

function section(tableId: number, body: Buffer, version = 0): Buffer {
  const length = 5 + body.length + 4;
  const head = Buffer.from([0, tableId, 0xb0 | (length >> 8), length & 0xff, 0, 1, 0xc1 | (version << 1), 0, 0]);
  return Buffer.concat([head, body, Buffer.alloc(4)]);
}

/** PAT pointing at the PMT, and a PMT with H.264 and AAC streams (and any `extra` stream types); `audio` changes the type of AUDIO_PID. */
export function programTables(extra: number[] = [], audio = 0x0f): Buffer {
  const pat = section(0, Buffer.from([0, 1, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]));
  const streams = [
    [0x1b, VIDEO_PID],
    [audio, AUDIO_PID],
    ...extra.map((type, i) => [type, 0x200 + i]),
  ].flatMap(([type, pid]) => [type!, 0xe0 | (pid! >> 8), pid! & 0xff, 0xf0, 0]);
  const pmt = section(2, Buffer.concat([Buffer.from([0xe0 | (VIDEO_PID >> 8), VIDEO_PID & 0xff, 0xf0, 0]), Buffer.from(streams)]));
  return Buffer.concat([...packets(0, pat, { n: 0 }), ...packets(PMT_PID, pmt, { n: 0 })]);
}

/** PAT and a PMT of version `version` listing `streams` (`[type, pid]`) in order, the tables' counters from `counter`. */
export function programVersion(streams: [number, number][], version: number, counter = 0): Buffer {
  const pat = section(0, Buffer.from([0, 1, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]));
  const entries = streams.flatMap(([type, pid]) => [type, 0xe0 | (pid >> 8), pid & 0xff, 0xf0, 0]);
  const pmt = section(2, Buffer.concat([Buffer.from([0xff, 0xff, 0xf0, 0]), Buffer.from(entries)]), version);
  return Buffer.concat([...packets(0, pat, { n: counter }), ...packets(PMT_PID, pmt, { n: counter })]);
}

function timestamp(prefix: number, value: number): Buffer {
  const high = Math.floor(value / 2 ** 30) & 7;
  const middle = Math.floor(value / 2 ** 15) & 0x7fff;
  const low = value & 0x7fff;
  return Buffer.from([(prefix << 4) | (high << 1) | 1, middle >> 7, ((middle & 0x7f) << 1) | 1, low >> 7, ((low & 0x7f) << 1) | 1]);
}

/** One PES (with PTS, and DTS when it differs) on `pid`, as TS packets; `firstPayload` bytes of it in the first (184: full). */
export function pes(pid: number, body: Buffer, pts: number, dts = pts, counter = { n: 0 }, firstPayload = 184): Buffer {
  const both = dts !== pts;
  const header = Buffer.concat([
    Buffer.from([0, 0, 1, pid === VIDEO_PID ? 0xe0 : 0xc0, 0, 0, 0x80, both ? 0xc0 : 0x80, both ? 10 : 5]),
    timestamp(both ? 3 : 2, pts),
    ...(both ? [timestamp(1, dts)] : []),
  ]);
  // Video PES may leave the length 0 (unbounded); audio ones give it.
  if (pid !== VIDEO_PID) header.writeUInt16BE(header.length - 6 + body.length, 4);
  return Buffer.concat(packets(pid, Buffer.concat([header, body]), counter, firstPayload));
}
