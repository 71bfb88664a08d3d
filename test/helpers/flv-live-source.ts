/**
 * A live source for media tests: the packets of FLV files (one per
 * rendition, made by ffmpeg beforehand) emitted in real time by their
 * decode timestamps, as an ingest would deliver a publish, then the end of
 * the stream. Test-only: the shipped ingests are `ingest.rtmp` and
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
  settings: z.object({ stream: z.string(), files: z.array(z.string()).min(1), renditions: z.array(z.string()).min(1) }),
  create(ctx) {
    const { stream, files, renditions } = ctx.settings;
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
          // Stable by time: each file keeps its own order.
          return packets.sort((a, b) => a.dts - b.dts);
        }
        load().then(
          (packets) => {
            if (stopped) return;
            const start = Date.now();
            let next = 0;
            timer = setInterval(function emitDuePackets() {
              const now = Date.now();
              const due: MediaItem[] = [];
              while (next < packets.length && packets[next].dts <= now - start) due.push({ ...packets[next++], arrival: now });
              if (next >= packets.length) {
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
