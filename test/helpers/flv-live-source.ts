/**
 * A live source for media tests: the packets of FLV files (one per
 * rendition, made by ffmpeg beforehand) emitted in real time by their
 * decode timestamps, as an ingest would deliver a publish, then the end of
 * the stream; with `loop`, played again and again with timestamps running
 * on, so a test is not bound by the files' length. Test-only: the shipped ingests are `ingest.rtmp` and
 * `ingest.srt`.
 */
import { readFile } from 'node:fs/promises';
import { Observable } from 'rxjs';
import { FlvReader } from '../../media/flv.ts';
import type { MediaItem, MediaPacket } from '../../media/packet.ts';
import { defineOperator, z, type Batch } from '../../runtime/api.ts';

/** How often due packets are emitted, ms: a packet leaves at most this late. */
const tick = 10;

export const flvLiveSource = defineOperator({
  name: 'test.flv_live',
  summary: 'Test source: FLV files played out in real time as a live stream.',
  doc: 'Reads each file of `files` as the rendition named at the same index of `renditions` and emits its packets when their time comes.',
  inputs: {},
  outputs: { out: { type: 'Media<*/*>', doc: 'Media packets, then the end of the stream.' } },
  settings: z.object({ stream: z.string(), files: z.array(z.string()).min(1), renditions: z.array(z.string()).min(1), loop: z.boolean().default(false) }),
  create(ctx) {
    const { stream, files, renditions, loop } = ctx.settings;
    return () =>
      new Observable<Batch>((subscriber) => {
        let timer: ReturnType<typeof setInterval> | undefined;
        let stopped = false;
        async function load(): Promise<MediaPacket[]> {
          const packets: MediaPacket[] = [];
          for (const [index, file] of files.entries()) {
            const reader = new FlvReader({ stream, rendition: renditions[index] });
            const result = reader.push(await readFile(file));
            if (result.error) throw result.error;
            packets.push(...result.packets);
          }
          if (packets.length === 0) throw new Error('the FLV files hold no packets');
          // Stable by time: each file keeps its own order.
          return packets.sort((a, b) => a.dts - b.dts);
        }
        load().then(
          (packets) => {
            if (stopped) return;
            const start = Date.now();
            const span = loopSpan(packets);
            let next = 0;
            let offset = 0;
            timer = setInterval(function emitDuePackets() {
              const now = Date.now();
              const due: MediaItem[] = [];
              for (;;) {
                if (next >= packets.length && loop) {
                  next = 0;
                  offset += span;
                }
                if (next >= packets.length || packets[next].dts + offset > now - start) break;
                const packet = packets[next++];
                due.push({ ...packet, dts: packet.dts + offset, pts: packet.pts + offset, arrival: now });
              }
              if (next >= packets.length && !loop) {
                due.push({ stream, end: true });
                clearInterval(timer);
              }
              // The source stays open after the stream's end, as an ingest does between publishes.
              if (due.length > 0) subscriber.next({ items: due, ack: ctx.newAck() });
            }, tick);
          },
          (error: unknown) => subscriber.error(error),
        );
        const onAbort = () => subscriber.complete();
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        return () => {
          stopped = true;
          clearInterval(timer);
          ctx.signal.removeEventListener('abort', onAbort);
        };
      });
  },
});

/** The length of the files' timeline: each track's last timestamp plus its last interval, the longest. */
function loopSpan(packets: MediaPacket[]): number {
  const last = new Map<string, number[]>();
  for (const packet of packets) {
    const key = `${packet.rendition}/${packet.track.kind}`;
    const times = last.get(key) ?? [];
    times.push(packet.dts);
    if (times.length > 2) times.shift();
    last.set(key, times);
  }
  let span = 0;
  for (const [a, b] of last.values()) span = Math.max(span, b === undefined ? a : 2 * b - a);
  return span;
}
