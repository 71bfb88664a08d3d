import { Ack, carriesState, defineOperator, duration, operate, z, type Batch, type EventRecord } from '../../runtime/api.ts';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import type { CmafItem, PlaylistSettings } from '../../media/segment.ts';
import { StreamPackager, type StreamHandover } from './packager/stream-packager.ts';
import { packetProblem } from './packager/packet-check.ts';
import { UnsupportedCodecError } from '../../media/fmp4/sample-entry.ts';
import { epochOf } from '../../media/cmaf-window.ts';

/** How often the `stats` output reports, ms. */
const statsInterval = 1000;

/** What a replaced `segment.hls` hands its successor: each stream's tracks and their next sequence numbers. */
type Handover = Record<string, StreamHandover>;

/**
 * `segment.hls`: the engine's own CMAF packager. Media packets in, init
 * segments, LL-HLS parts and segments out, each the instant it is complete.
 */
export default defineOperator({
  name: 'segment.hls',
  summary: 'Cut live media packets into CMAF (fMP4) init segments, low-latency parts and segments for HLS and DASH.',
  doc: 'The engine\'s own CMAF packager: no ffmpeg muxer, so it knows the instant a part is complete. Each stream\'s packets become one CMAF track per rendition and kind (video: named after the rendition; audio: `audio` for the first rendition whose audio arrives, `<rendition>-audio` for the others). Each publish of a stream gets an epoch (its start time in base 36, on every init; the origin puts it in every URL, so a later publish never reuses a cached URL). A track starts with an init segment (`ftyp` + `moov`, h264, hevc or aac), and gets a new one, followed by a discontinuity, when its decoder configuration changes. Video segments start at the first keyframe at or after `segment` since the last cut (a stream without keyframes is cut anyway after max(30 s, 5 segments), so memory stays bounded); audio segments cut at the same times as their rendition\'s video (or the stream\'s first video), and by time in an audio-only stream. With `part`, each segment is made of parts (CMAF chunks, LL-HLS partial segments) of at most `part`, each emitted as soon as the packet after it arrives; the segment follows its last part, with the same bytes. Sample durations come from the next packet, so one packet per track is held back. A segment after `discontinuity` on a packet, a timestamp going backwards or jumping forward by more than max(5 s, 2 segments), or a new init, is marked as a discontinuity. `MediaEnd` flushes the open part and segment; the `end` items follow `reconnect` later unless the stream publishes again before, in which case it goes on after a discontinuity with the next sequence numbers (the end of one rendition ends its tracks at once). Memory holds only each track\'s open segment. The `stats` output reports, once a second per stream, `{stream, bitrate, fps, keyframe_interval, dropped, segments, parts, interval}` (the schema of the ingests; rates per second of media). Packets that are not media (no track, no data, bad timestamps) go to the dead-letter port.',
  inputs: { in: { type: 'Media<*/*>', doc: 'Live media packets and stream ends (`MediaPacket` / `MediaEnd`).' } },
  outputs: {
    out: { type: 'Segment<cmaf>', doc: 'CMAF items per track, in order: `init`, then per segment its `part`s and the `segment`; `end` items when a stream ends.' },
    stats: { type: 'Event<{stream: string, bitrate: number, fps: number, keyframe_interval: number, dropped: number, segments: number, parts: number}>', doc: 'Once a second per live stream, the ingests\' schema: bitrate (bit/s) and fps per second of media, keyframe interval (s, 0 until two), packets refused, then segments and parts so far.', optional: true },
  },
  settings: z
    .object({
      segment: duration().prefault('2s').meta({ description: 'Target segment duration: a segment ends at the first keyframe at or after it. Keep the source\'s keyframe interval at most this (`encode` does): the playlists\' `EXT-X-TARGETDURATION` is fixed by the first segment and may not change, so longer segments later break it.', examples: ['2s', '4s'] }),
      part: duration().optional().meta({ description: 'Low-latency HLS part target (the longest a part may be). Absent: no parts.', examples: ['200ms', '333ms'] }),
      window: z.number().int().positive().optional().meta({ description: 'Segments kept in the live playlist (default 6). Give this or `dvr`.', examples: [6] }),
      dvr: duration().optional().meta({ description: 'A DVR window as a duration; the playlist keeps `dvr / segment` segments. Give this or `window`.', examples: ['2h'] }),
      reconnect: duration()
        .prefault('10s')
        .meta({ description: 'How long a stream whose publisher left stays open: a publisher reconnecting with the same key within it continues the same playlists (sequence numbers go on, after a discontinuity). Past it the tracks end (`EXT-X-ENDLIST`); `0s` ends them at once.', examples: ['10s', '0s'] }),
    })
    .refine((s) => s.part === undefined || s.part < s.segment, { message: '`part` must be shorter than `segment`', path: ['part'] })
    .refine((s) => s.window === undefined || s.dvr === undefined, { message: 'set `window` or `dvr`, not both', path: ['dvr'] }),
  example: { segment: '2s', part: '200ms', window: 6 },
  create(ctx) {
    const { segment, part, dvr, reconnect } = ctx.settings;
    const cut = { segment: segment / 1000, part: part === undefined ? undefined : part / 1000 };
    const playlist: PlaylistSettings = { ...cut, window: dvr === undefined ? (ctx.settings.window ?? 6) : Math.max(1, Math.ceil(dvr / segment)) };
    if (playlist.part === undefined) delete playlist.part;
    const restored = (ctx.restored ?? {}) as Handover;

    return function segmentHlsNode(input) {
      return operate<Batch>(input, (subscriber) => {
        const streams = new Map<string, StreamPackager>();
        /** Streams whose publisher left, each with the timer that ends it unless it publishes again. */
        const leaving = new Map<string, () => void>();
        let out: CmafItem[] = [];
        const collect = (item: CmafItem): void => {
          out.push(item);
        };
        /** Tracks whose codec cannot be packaged: reported once, then their packets are dropped and counted. */
        const unsupported = new Set<string>();
        let lastStats = ctx.now();
        let cancelStats: (() => void) | undefined;
        /** The last epoch given (ms): each publish gets a later one, so its URLs are new. */
        let lastEpoch = 0;

        function streamFor(stream: string): StreamPackager {
          let packager = streams.get(stream);
          if (packager === undefined) {
            lastEpoch = Math.max(ctx.now(), lastEpoch + 1);
            packager = new StreamPackager(stream, epochOf(lastEpoch), cut, playlist, collect, restored[stream]);
            streams.set(stream, packager);
          }
          return packager;
        }

        function reportStats(): void {
          const now = ctx.now();
          const events: EventRecord[] = [];
          for (const packager of streams.values()) events.push({ ...packager.stats.read(packager.stream, now - lastStats, packager.totals) });
          lastStats = now;
          if (events.length > 0) ctx.emit('stats', { items: events, ack: Ack.none() });
          cancelStats = ctx.schedule(statsInterval, reportStats);
        }
        cancelStats = ctx.schedule(statsInterval, reportStats);

        ctx.snapshot(function handOver(): Handover {
          const state: Handover = {};
          for (const [name, packager] of streams) state[name] = packager.handover();
          return state;
        });

        function endStream(stream: string, rendition?: string): void {
          const packager = streams.get(stream);
          packager?.end(ctx.now(), rendition);
          if (packager?.ended) streams.delete(stream);
          for (const key of unsupported) if (key.startsWith(`${stream}/`)) unsupported.delete(key);
        }

        /** The publisher left: segments are flushed now, the end waits `reconnect` for the same key to come back. */
        function leave(packager: StreamPackager): void {
          const stream = packager.stream;
          packager.suspend(ctx.now());
          leaving.get(stream)?.();
          leaving.set(
            stream,
            ctx.schedule(reconnect, function reconnectWindowPassed() {
              leaving.delete(stream);
              endStream(stream);
              flushOut(undefined);
            }),
          );
        }

        /** Streams that took packets in the current batch. */
        const touched = new Set<StreamPackager>();

        function flushOut(batch: Batch | undefined): void {
          const items = out;
          out = [];
          if (items.length > 0) subscriber.next({ items, ack: batch?.ack ?? Ack.none() });
          else batch?.ack.release();
          for (const packager of touched) packager.prepare();
          touched.clear();
        }

        return {
          next(batch) {
            const items = batch.items as MediaItem[];
            for (let i = 0; i < items.length; i++) {
              const item = items[i];
              const problem = packetProblem(item);
              if (problem !== undefined) {
                if (typeof (item as { stream?: unknown }).stream === 'string') streams.get((item as MediaItem).stream)?.stats.drop();
                ctx.fail(item, new Error(problem), batch.ack);
                continue;
              }
              const now = (item as MediaPacket).arrival ?? ctx.now();
              try {
                if (isMediaEnd(item)) {
                  const packager = streams.get(item.stream);
                  if (packager !== undefined && item.rendition === undefined && reconnect > 0) leave(packager);
                  else endStream(item.stream, item.rendition);
                } else {
                  leaving.get(item.stream)?.();
                  leaving.delete(item.stream);
                  // Almost always empty: no key string is built per packet then.
                  if (unsupported.size > 0 && unsupported.has(`${item.stream}/${item.rendition}/${item.track.kind}`)) {
                    ctx.metrics.dropped(1, 'unsupported_codec');
                    streams.get(item.stream)?.stats.drop();
                  }
                  else {
                    const packager = streamFor(item.stream);
                    packager.push(item, now);
                    touched.add(packager);
                  }
                }
              } catch (error) {
                if (error instanceof UnsupportedCodecError && !isMediaEnd(item)) unsupported.add(`${item.stream}/${item.rendition}/${item.track.kind}`);
                ctx.fail(item, error, batch.ack);
              }
            }
            flushOut(batch);
          },
          complete() {
            for (const cancel of leaving.values()) cancel();
            leaving.clear();
            // A reload hands the open segments' numbering to the successor instead of ending the playlists.
            // The snapshot is read after completion, so the packagers stay for it.
            if (carriesState(ctx.stopReason())) for (const packager of streams.values()) packager.flush(ctx.now());
            else {
              for (const packager of streams.values()) packager.end(ctx.now());
              streams.clear();
            }
            flushOut(undefined);
            subscriber.complete();
          },
          finalize() {
            for (const cancel of leaving.values()) cancel();
            leaving.clear();
            cancelStats?.();
            cancelStats = undefined;
          },
        };
      });
    };
  },
});
