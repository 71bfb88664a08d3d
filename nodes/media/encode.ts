import { Ack, defineOperator, duration, NodeError, operate, reasonOf, z, type Batch, type NodeContext } from '../../runtime/api.ts';
import { chooseEncoder, probeEncoders, type EncoderChoice } from '../../native/ffmpeg/encoders.ts';
import { isMediaEnd, type MediaItem, type MediaPacket } from '../../media/packet.ts';
import type { PortType } from '../../runtime/api.ts';
import { resolveLadder, type Rung } from './ladders.ts';
import { LadderStream, type LadderHandover } from './ladder-stream.ts';

const rungName = z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'a rung name is letters, digits, `_`, `.` or `-`' });

const settings = z
  .object({
    ladder: z
      .union([
        z.string(),
        z.array(z.union([rungName, z.object({ name: rungName, height: z.number().int().min(16).max(4320), bitrate: z.union([z.string(), z.number().positive()]) })])).min(1),
      ])
      .default('default')
      .meta({ description: 'A ladder named in `config/ladders.yaml` (`default`: 1080p, 720p, 480p), or its rungs: preset names (`720p`) or `{name, height, bitrate}`.', examples: ['default', ['720p', '360p'], [{ name: 'low', height: 288, bitrate: '600k' }]] }),
    codec: z.enum(['h264', 'hevc', 'av1']).default('h264').meta({ description: 'The video codec of every rung.' }),
    hw: z.enum(['auto', 'none', 'nvenc', 'vaapi', 'qsv']).default('auto').meta({ description: '`auto`: the first hardware encoder that works on the host, else software; `none`: software; or a family (software with a warning when it does not work here).' }),
    preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow']).default('veryfast').meta({ description: 'The x264 speed preset (software encoding).' }),
    segment: duration().prefault('2s').meta({ description: 'The segment duration: a keyframe is forced at every multiple of it, on every rung, so players can switch rungs at any segment.', examples: ['2s'] }),
    passthrough: z.boolean().default(false).meta({ description: 'Also pass the source video through as rung `source`, without re-encoding.' }),
    max_height: z.number().int().positive().optional().meta({ description: 'Skip rungs taller than this, as well as those taller than the source.', examples: [720] }),
  })
  .superRefine(function checkLadder(value, ctx) {
    // ffmpeg 5.1 writes only H.264 into FLV (HEVC and AV1 need enhanced FLV, from ffmpeg 6.1), and FLV is how rungs come back.
    if (value.codec !== 'h264') ctx.addIssue({ code: 'custom', path: ['codec'], message: `codec \`${value.codec}\` cannot be carried back from ffmpeg 5.1 (its FLV muxer writes only H.264): use \`h264\`` });
    const ladder = resolveLadder(value.ladder);
    if (typeof ladder === 'string') ctx.addIssue({ code: 'custom', path: ['ladder'], message: ladder });
  });

type EncodeSettings = z.output<typeof settings>;

/** At a shutdown, how long each stream's ffmpeg may take to finish the frames it has read (its encoder's delay: x264's lookahead). */
const stopGraceMs = 500;

/** What a replaced `encode` hands its successor: each live stream's rungs and last GOP. */
type Handover = Record<string, LadderHandover>;

/** The out port: video rungs only when nothing can bring audio, else video and audio. */
function inferOut(_settings: EncodeSettings, inputs: Record<string, PortType>): Partial<Record<string, PortType>> {
  const input = inputs.in;
  const caps = input?.kind === 'media' ? input.caps : '*/*';
  const videoOnly = caps.startsWith('video/') && inputs.audio === undefined;
  return { out: { kind: 'media', caps: videoOnly ? 'video/h264' : '*/*' } };
}

/** The encoder for this node: probed once per process, a warning logged when it falls back. */
function encoderFor(ctx: NodeContext<EncodeSettings>): Promise<EncoderChoice> {
  return probeEncoders().then((probe) => {
    const choice = chooseEncoder(probe, ctx.settings.codec, ctx.settings.hw);
    if (!choice) throw new NodeError('no_encoder', `${ctx.label}: no ${ctx.settings.codec} encoder works on this host (is ffmpeg installed with libx264?)`);
    if (choice.warning) ctx.log.warn({ encoder: choice.spec.name }, `${ctx.label}: ${choice.warning}`);
    return choice;
  });
}

/**
 * `encode`: an adaptive-bitrate ladder per stream from one ffmpeg process
 * (one decode, `split`, a scaler and encoder per rung).
 */
export default defineOperator({
  name: 'encode',
  summary: 'Encode each stream into an adaptive-bitrate ladder with one ffmpeg process.',
  doc: 'For each stream (by `stream` key) starts one ffmpeg at the stream\'s first keyframe, writes its video into it as FLV, and reads each rung back from its own pipe: one decode, `split`, one scaler and encoder per rung. Rungs come from `ladder`; those taller than the source (or than `max_height`) are skipped, which is logged. Every rung has a keyframe at each multiple of `segment` and no other (no scene-cut keyframes), so players can switch at any segment. Packets go out with `rendition` set to the rung\'s name; AAC audio is copied once as rendition `audio`; with `passthrough: true` the source video goes out unchanged as rendition `source`. If ffmpeg dies, a new one starts at the next keyframe (a crash loop backs off) and each rung\'s next packet is marked `discontinuity`; the graph goes on. A stream\'s end lets ffmpeg finish its last frames, then the end goes downstream; but when the graph stops (SIGINT, the node removed), a live encoder does not hold the stop for its backlog: ffmpeg gets half a second for the frames it has read, what it never took in is dropped, counted (`shutdown`) and logged. When a reload replaces the node (the ladder changed), its ffmpeg finishes the frames it has and no end goes downstream: the successor decodes the stream\'s last GOP again and splices each rung on the next frame (a keyframe forced there), its first packet marked `discontinuity`, so the packager continues the playlists and no frame is skipped or repeated. Keyframes stay on the source time\'s grid of segment boundaries across restarts; rungs keep the source\'s timestamps (to the millisecond) and frame rate. An encoder that falls behind a live source drops input up to the next keyframe, counted. `stats` gives per stream per second: fps, speed, bitrate (total and per rung), keyframe interval, drops and restarts. Hardware encoders are probed once (a one-frame encode each) and used with `hw: auto` when one works; otherwise libx264 with a warning. Only `h264` can be carried back from ffmpeg 5.1.',
  inputs: {
    in: { type: 'Media<video/*>', doc: 'The streams\' packets: video (needed), and audio on the same edge if it has any.' },
    audio: { type: 'Media<audio/*>', doc: 'Audio of the same streams, when it arrives on an edge of its own.', optional: true },
  },
  outputs: {
    out: { type: 'Media<*/*>', doc: 'The rungs\' H.264 packets (`rendition`: rung name), the audio (`audio`) and the source when passed through (`source`); `Media<video/h264>` when no audio can come in.' },
    stats: { type: 'Event<{stream: string, fps: number, speed: number, bitrate: number, rungs: map, keyframe_interval: number, dropped: number, restarts: number, frames: number}>', doc: 'Per stream, once a second: fps, speed, bitrate (total and per rung), keyframe interval, drops, restarts.', optional: true },
  },
  settings,
  requires: (value) => (value.hw === 'auto' || value.hw === 'none' ? ['ffmpeg'] : ['ffmpeg', 'gpu']),
  infer: inferOut,
  example: { ladder: 'default', segment: '2s' },
  create(ctx) {
    const rungs = resolveLadder(ctx.settings.ladder) as Rung[];
    return function encodeNode(input) {
      return operate(input, (out) => {
        const encoder = encoderFor(ctx);
        encoder.catch((error: unknown) => out.error(error));
        const streams = new Map<string, LadderStream>();
        const ending = new Set<Promise<void>>();
        // A reload that replaces this node: each live stream's rungs, so the successor marks where its own ffmpeg takes over.
        const inherited = (ctx.restored ?? {}) as Handover;
        const handover: Handover = {};
        ctx.snapshot(() => handover);
        /** Streams whose ffmpeg is finishing after their end: no longer in `streams`, but a stop must still reach them. */
        const finishing = new Set<LadderStream>();
        let lastTick = ctx.now();
        let cancelTick: (() => void) | undefined;

        function emit(items: MediaItem[]): void {
          if (!out.closed) out.next({ items, ack: Ack.none() });
        }

        function streamFor(key: string): LadderStream {
          let stream = streams.get(key);
          if (!stream) {
            stream = new LadderStream({
              stream: key,
              label: ctx.label,
              log: ctx.log,
              rungs,
              maxHeight: ctx.settings.max_height,
              preset: ctx.settings.preset,
              segmentSeconds: ctx.settings.segment / 1000,
              passthrough: ctx.settings.passthrough,
              encoder,
              emit,
              dropped: (count, reason) => ctx.metrics.dropped(count, reason),
              now: () => ctx.now(),
              continues: inherited[key],
            });
            delete inherited[key];
            streams.set(key, stream);
          }
          return stream;
        }

        function endStream(key: string, handOver = false): void {
          const stream = streams.get(key);
          if (!stream) return handOver ? undefined : emit([{ stream: key, end: true }]);
          streams.delete(key);
          if (handOver) handover[key] = stream.handover();
          finishing.add(stream);
          // `end` handles its own failures; a rejection here would be a bug, logged rather than left unhandled.
          const done = stream
            .end(handOver)
            .catch((error: unknown) => ctx.log.error({}, `${ctx.label}: a stream's end failed: ${reasonOf(error)}`))
            .finally(() => {
              ending.delete(done);
              finishing.delete(stream);
            });
          ending.add(done);
        }

        function tick(): void {
          const now = ctx.now();
          const seconds = (now - lastTick) / 1000;
          lastTick = now;
          if (streams.size > 0) ctx.emit('stats', { items: [...streams.values()].map((s) => s.stats(seconds)), ack: Ack.none() });
          cancelTick = ctx.schedule(1000, tick);
        }
        cancelTick = ctx.schedule(1000, tick);

        return {
          next(batch: Batch) {
            for (const item of batch.items as MediaItem[]) {
              if (isMediaEnd(item)) {
                if (item.rendition === undefined || item.rendition === 'source') endStream(item.stream);
              } else if (item && typeof item === 'object' && (item as MediaPacket).track) {
                streamFor(item.stream).push(item);
              } else {
                ctx.fail(item, new NodeError('not_media', `${ctx.label}: not a media packet`), batch.ack);
              }
            }
            // Live media is not replayed: the input is done with once it is handed to ffmpeg.
            batch.ack.release();
          },
          complete() {
            // Replaced by a reload, the streams are not over: the successor goes on with them, downstream never sees an end.
            const reason = ctx.stopReason();
            const handOver = reason === 'replaced';
            for (const key of [...streams.keys()]) endStream(key, handOver);
            // Stopping (a shutdown, the node removed), live encoders do not hold the stop for their backlog: see `LadderStream.hurry`.
            // When the sources ran out (`end`), every frame is encoded, however long it takes.
            if (reason !== 'end' && !handOver) for (const stream of finishing) stream.hurry(stopGraceMs);
            void Promise.all(ending).then(() => out.complete());
          },
          finalize() {
            cancelTick?.();
            for (const stream of [...streams.values(), ...finishing]) void stream.stop().catch((error: unknown) => ctx.log.error({}, `${ctx.label}: stopping ffmpeg failed: ${reasonOf(error)}`));
            streams.clear();
            finishing.clear();
          },
        };
      });
    };
  },
});
