import type { Subscriber } from 'rxjs';
import { Ack, backoffDelay, defineOperator, z, type Batch, type NodeContext } from '../../runtime/api.ts';
import { FfmpegProcess, type FfmpegExit } from '../../native/ffmpeg/process.ts';
import { formatAddress, parseListen, type ListenAddress } from '../../native/http/listen.ts';
import { TsReader, type TsReadResult } from '../../media/mpegts.ts';
import type { MediaItem, MediaPacket } from '../../media/packet.ts';
import { sessionSource, type SourceSession } from '../messaging/source-session.ts';
import { LIVE_STATS_TYPE, LiveStreams, type LiveStream } from './live/live-streams.ts';
import { startTsAudioTranscoder, type TsAudioTranscoder } from './live/ts-audio-transcoder.ts';

/** How long a publish's audio transcoder may take to encode what it holds once the publisher has left. */
const TRANSCODE_END_MS = 1000;

const settings = z
  .object({
    listen: z.union([z.string(), z.number().int()]).meta({ description: 'The UDP address to listen on for SRT publishers: `host:port`, or a port (on 127.0.0.1).', examples: ['127.0.0.1:9000'] }),
    passphrase: z
      .string()
      .min(10, { error: 'an SRT passphrase has 10 to 79 characters' })
      .max(79, { error: 'an SRT passphrase has 10 to 79 characters' })
      .optional()
      .meta({ description: 'The encryption passphrase publishers must use (AES); give it as `${env:NAME}`, never in the file. Never logged.', examples: ['${env:SRT_PASSPHRASE}'] }),
    streamid: z.string().min(1).default('live').meta({ description: 'The stream key the publishes of this listener go out as (`stream` of every packet). ffmpeg 5.1 does not show the listener the publisher\'s own streamid, so this names the stream.', examples: ['cam1'] }),
    latency: z.number().int().min(20).max(8000).default(120).meta({ description: 'The SRT receive latency in milliseconds: how long lost packets may take to be sent again.' }),
    timeout: z.number().int().min(200).max(60_000).default(1000).meta({ description: 'Milliseconds without data after which a connected publisher counts as gone.' }),
  })
  .superRefine(function checkListen(value, ctx) {
    const parsed = parseListen(value.listen);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', path: ['listen'], message: parsed });
  });

type SrtSettings = z.output<typeof settings>;

/**
 * `ingest.srt`: an SRT listener (ffmpeg's libsrt), MPEG-TS in, the stream's
 * H.264 and AAC packets out.
 */
export default defineOperator({
  name: 'ingest.srt',
  summary: 'Receive a live stream from SRT publishers (MPEG-TS over SRT, through ffmpeg).',
  doc: 'Listens on `listen` (UDP) for one SRT publisher at a time, through ffmpeg\'s libsrt, with the `passphrase` when set (publishers without it are refused by SRT). ffmpeg only relays the MPEG-TS bytes (no probing, no remux: the first packet leaves as soon as it arrives), and the node reads them itself: H.264 video and AAC audio as sent (timestamps at 90 kHz, timescale 90000; decoder configuration from the in-band SPS/PPS and ADTS headers), `rendition: source`, `stream` set to `streamid`. Video starts at the publisher\'s first keyframe (a publisher that joins mid-GOP loses the frames before it, counted as dropped, `before_keyframe`). Loss on the link never ends the publish: a PES (one video frame, or a few audio frames) missing a 188-byte TS packet (a gap in its continuity counter, or the transport-error bit) is dropped whole, counted as `ts_loss`, one whose H.264 or ADTS does not parse as `ts_corrupt`, an unfinished one when the publisher leaves as `ts_truncated`; only bytes without MPEG-TS sync restart the listener. Audio that is not AAC (MP2, AC-3, E-AC-3, Opus: what many SRT encoders and broadcast chains send) goes out as AAC all the same: only that audio\'s TS packets go to a second ffmpeg (started at the publish\'s first audio, ended with it), which encodes AAC (128 kbit/s, the source\'s rate and channels) with the source\'s own timestamps, so it stays in sync with the video; the video and AAC path never waits for it (its AAC comes a few frames later), and the stream\'s end follows its last frames. That ffmpeg is handed only the audio chosen, under tables of its own, so other streams listed before it (SMPTE 302M, DTS) cannot be taken instead. Past 2 s of audio behind (5 s before its first AAC) it gets no more: audio is dropped, counted in audio PES (`audio_transcode_backlog`) and logged; audio it still held when killed at the publish\'s end is counted as `audio_transcode_cut`; 5 s of audio in and no AAC out is logged as a warning. A new PMT version mid-publish re-maps the tracks: a track moving PID is followed, AAC appearing ends the transcoder (one audio track at most; the publisher\'s AAC waits for its last frames, and frames overlapping them are dropped, `audio_overlap`). Other codecs (HEVC video, subtitles) are skipped with a warning. When the publisher leaves (or sends nothing for `timeout`), the stream\'s end goes downstream at once and the node listens again; the next publisher continues the same stream, its first packet marked `discontinuity`. Anything that is not SRT sent to the port is ignored by libsrt; a listener that cannot start (the port taken) is logged and retried with backoff. The passphrase never appears in logs or errors; but ffmpeg 5.1 takes it only as a command-line argument, so local users who can list processes (`ps`, `/proc/PID/cmdline`) can read it: on a shared host mount `/proc` with `hidepid=2` or run in a container. Without a `passphrase` anyone who can reach the port may publish (a warning at start).',
  inputs: {},
  outputs: {
    out: { type: 'Media<*/*>', doc: 'The stream\'s packets: `video/h264` and `audio/aac`, and its end when a publisher leaves.' },
    stats: { type: LIVE_STATS_TYPE, doc: 'Once a second while a publisher is connected (as `ingest.rtmp`): bits per media second received (video and audio), video frames per media second, seconds between keyframes, packets dropped (always 0: a full downstream pauses the read) and publishes so far.', optional: true },
  },
  settings,
  requires: ['ffmpeg', 'listen'],
  example: { listen: '127.0.0.1:9000', passphrase: '${env:SRT_PASSPHRASE}', streamid: 'cam1' },
  create(ctx) {
    return sessionSource(ctx, (out) => new SrtListenSession(ctx, out));
  },
});

/**
 * The ffmpeg command of one listen: SRT in, its bytes out on stdout untouched. As the raw `data` format
 * on both sides ffmpeg neither probes the stream (`-analyzeduration`, `-probesize`: up to a second or more
 * of MPEG-TS held before the first byte left) nor remuxes it; the node demuxes the MPEG-TS itself.
 */
function listenCommand(address: ListenAddress, settings: SrtSettings) {
  const srt = ['-mode', 'listener', '-latency', String(settings.latency * 1000), '-timeout', String(settings.timeout * 1000)];
  // As options rather than URL query parameters: a passphrase then needs no escaping.
  if (settings.passphrase) srt.push('-passphrase', settings.passphrase);
  return {
    // The data demuxer hands on whatever each read returns (one SRT message, 1316 bytes), at once.
    inputs: [{ from: { url: `srt://${formatAddress(address)}` }, options: [...srt, '-f', 'data', '-probesize', '32', '-analyzeduration', '0'] }],
    outputs: [{ to: { stdout: true as const }, options: ['-map', '0', '-c', 'copy', '-f', 'data'] }],
    logLevel: 'error' as const,
  };
}

/** One publisher's connection: its ffmpeg, its reader, and what its packets have done so far. */
interface Publish {
  stream: string;
  process: FfmpegProcess;
  reader: TsReader;
  /** Packets sent downstream. */
  packets: number;
  /** A publisher may join mid-GOP: its video is dropped until the first keyframe, which downstream needs first. */
  keyframeSeen: boolean;
  /** The reader failed (not MPEG-TS): nothing more is read; the listener restarts. */
  readerFailed: boolean;
  /** Transcoders finishing (their audio ended mid-publish, or the publish did): awaited before the stream's end. */
  ending: Promise<void>[];
  /**
   * The publisher's own audio held back while a transcoder whose audio ended mid-publish still sends the
   * frames before it: released when it has finished, so the audio track goes out in time order.
   */
  held: MediaPacket[] | undefined;
  /** The DTS of the last audio packet sent downstream. */
  lastAudio: number | undefined;
}

/** One run of an `ingest.srt` node: ffmpeg listening, again after each publisher. */
class SrtListenSession implements SourceSession {
  readonly #ctx: NodeContext<SrtSettings>;
  readonly #out: Subscriber<Batch>;
  readonly #address: ListenAddress;
  #process: FfmpegProcess | undefined;
  /** The ffmpeg making the publish's audio AAC, when it is not. */
  #transcoder: TsAudioTranscoder | undefined;
  #stopping = false;
  /** The stream's state across publishes: its discontinuity after a republish and its figures (shared with `ingest.rtmp`). */
  readonly #streams = new LiveStreams();
  #live: LiveStream | undefined;
  #failures = 0;
  #wake: (() => void) | undefined;
  #lastTick = 0;
  #cancelTick: (() => void) | undefined;

  constructor(ctx: NodeContext<SrtSettings>, out: Subscriber<Batch>) {
    this.#ctx = ctx;
    this.#out = out;
    this.#address = parseListen(ctx.settings.listen) as ListenAddress;
  }

  async start(): Promise<void> {
    if (!this.#ctx.settings.passphrase) this.#ctx.log.warn({ listen: formatAddress(this.#address) }, `${this.#ctx.label}: no \`passphrase\`: anyone who can reach ${formatAddress(this.#address)} may publish; set \`passphrase\` (e.g. \`\${env:SRT_PASSPHRASE}\`)`);
    // The loop handles its own failures; anything that still escapes ends the node's output with it rather than an unhandled rejection.
    this.#loop().catch((error: unknown) => {
      if (!this.#out.closed) this.#out.error(error);
    });
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let published = false;
      try {
        published = await this.#listenOnce();
      } catch (error) {
        // ffmpeg could not be spawned: logged, retried with backoff like a listener that failed.
        this.#process = undefined;
        this.#stopStats();
        this.#ctx.log.error({ stream: this.#ctx.settings.streamid }, `${this.#ctx.label}: SRT listener could not start: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (this.#stopping) break;
      if (published) {
        this.#failures = 0;
        continue;
      }
      // No publish came of it: the port is taken, or ffmpeg failed; wait longer each time.
      this.#failures += 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoffDelay(this.#failures, 200, 10_000));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    if (!this.#out.closed) this.#out.complete();
  }

  /** One listen, to the publisher's end; whether any packet came. */
  async #listenOnce(): Promise<boolean> {
    const ctx = this.#ctx;
    const stream = ctx.settings.streamid;
    const process = FfmpegProcess.spawn(listenCommand(this.#address, ctx.settings), { redact: ctx.settings.passphrase ? [ctx.settings.passphrase] : [] });
    this.#process = process;
    const publish: Publish = { stream, process, reader: new TsReader({ stream, passForeignAudio: true }), packets: 0, keyframeSeen: false, readerFailed: false, ending: [], held: undefined, lastAudio: undefined };
    const stdout = process.output(0);
    stdout.on('data', (chunk: Buffer) => {
      if (publish.readerFailed) return;
      ctx.metrics.bytes(chunk.length, 'read');
      this.#takeSource(publish, publish.reader.push(chunk));
      // Downstream full: stop reading; ffmpeg then waits, and SRT's own buffer (and losses) absorb it.
      const wait = ctx.ready();
      if (wait) {
        stdout.pause();
        void wait.then(() => stdout.resume());
      }
    });
    const exit: FfmpegExit = await process.exited;
    // The last access unit of each track is complete only now: no next PES start will close it.
    if (!publish.readerFailed) this.#takeSource(publish, publish.reader.end());
    // The transcoded audio's last frames come after the publisher's: they are in the stream before its end.
    if (this.#transcoder) publish.ending.push(this.#transcoder.end(TRANSCODE_END_MS));
    this.#transcoder = undefined;
    await Promise.all(publish.ending);
    this.#process = undefined;
    this.#stopStats();
    const { packets } = publish;
    if (packets > 0) {
      this.#emitStats();
      this.#streams.end(this.#live!, ctx.now());
      this.#live = undefined;
      this.#emit([{ stream, end: true }]);
      ctx.log.info({ stream, packets }, `${ctx.label}: stream \`${stream}\`: publisher left (${packets} packets); listening again`);
      return true;
    }
    if (exit.error && !this.#stopping) ctx.log.warn({ stream, listen: formatAddress(this.#address), code: exit.error.code }, `${ctx.label}: SRT listener on ${formatAddress(this.#address)}: ${exit.error.message}`);
    return false;
  }

  /** What the publisher's own stream gave: its media out, its foreign audio to the transcoder; a reader error restarts the listener. */
  #takeSource(publish: Publish, result: TsReadResult): void {
    const ctx = this.#ctx;
    const { stream } = publish;
    this.#notes(stream, result);
    if (!publish.readerFailed && !this.#stopping) this.#routeForeignAudio(publish, result);
    if (result.error) {
      // A failed reader returns its error on every later chunk: one line, then this ffmpeg goes and the node listens again.
      publish.readerFailed = true;
      ctx.log.error({ stream }, `${ctx.label}: stream \`${stream}\`: the publisher's stream is not MPEG-TS: ${result.error.message}; restarting the listener`);
      void publish.process.stop(2000);
    }
    const held = publish.held;
    if (held) {
      for (const packet of result.packets) if (packet.track.kind === 'audio') held.push(packet);
      this.#takeMedia(publish, result.packets.filter((packet) => packet.track.kind !== 'audio'));
    } else this.#takeMedia(publish, result.packets);
  }

  /** The reader's skip reasons logged, its drops counted (a loss on the link costs that PES only, and reading goes on). */
  #notes(stream: string, result: TsReadResult): void {
    const ctx = this.#ctx;
    for (const reason of result.skipped) {
      // Unsupported codecs are the publisher's to fix; the rest (video before its first SPS) is the normal start mid-GOP.
      if (reason.includes('not supported')) ctx.log.warn({ stream, reason }, `${ctx.label}: stream \`${stream}\`: ${reason}: skipped`);
      else ctx.log.debug({ stream, reason }, `${ctx.label}: stream \`${stream}\`: ${reason}: skipped`);
    }
    for (const [reason, count] of Object.entries(result.drops ?? {})) ctx.metrics.dropped(count, reason);
  }

  /**
   * Foreign audio to its transcoder, started at its first packets. Audio a new PMT ended (AAC came, or its
   * codec changed) gets its last packets and finishes alongside (awaited with the publish), the publisher's
   * own audio held back meanwhile (`held`); the next, if any, gets a transcoder of its own.
   */
  #routeForeignAudio(publish: Publish, result: TsReadResult): void {
    const ended = result.foreignAudioEnded;
    if (ended && this.#transcoder) {
      const ctx = this.#ctx;
      ctx.log.info({ stream: publish.stream, codec: ended.codec }, `${ctx.label}: stream \`${publish.stream}\`: the ${ended.codec} audio left the program: its transcoder ends`);
      this.#transcoder.write(ended);
      publish.held ??= [];
      const release = (): void => {
        const held = publish.held ?? [];
        publish.held = undefined;
        // The new audio may begin before the old one's last frame (an encoder's priming): what overlaps goes.
        const last = publish.lastAudio ?? -Infinity;
        const after = held.filter((packet) => packet.dts > last);
        if (after.length < held.length) this.#ctx.metrics.dropped(held.length - after.length, 'audio_overlap');
        this.#takeMedia(publish, after);
      };
      publish.ending.push(this.#transcoder.end(TRANSCODE_END_MS).then(release));
      this.#transcoder = undefined;
    }
    if (result.foreignAudio) {
      this.#transcoder ??= this.#startTranscoder(result.foreignAudio.codec, publish);
      this.#transcoder.write(result.foreignAudio);
    }
  }

  /** Packets out: video from the first keyframe (what downstream needs first), the publish marked connected at its first. */
  #takeMedia(publish: Publish, packets: MediaPacket[]): void {
    const ctx = this.#ctx;
    const { stream } = publish;
    const kept = publish.keyframeSeen
      ? packets
      : packets.filter((packet) => {
          if (packet.track.kind !== 'video' || publish.keyframeSeen) return true;
          publish.keyframeSeen = packet.keyframe;
          return publish.keyframeSeen;
        });
    const beforeKeyframe = packets.length - kept.length;
    if (beforeKeyframe > 0) ctx.metrics.dropped(beforeKeyframe, 'before_keyframe');
    if (kept.length === 0) return;
    if (publish.packets === 0) {
      ctx.log.info({ stream, listen: formatAddress(this.#address) }, `${ctx.label}: stream \`${stream}\`: publisher connected`);
      this.#live = this.#streams.begin(stream);
      this.#startStats();
    }
    publish.packets += kept.length;
    const arrival = Date.now();
    const live = this.#live!;
    const items: MediaPacket[] = kept.map((packet) => ({ ...packet, arrival }));
    // Never full here (a full downstream pauses the read): admit only marks the discontinuity and counts.
    for (const packet of items) {
      if (packet.track.kind === 'audio') publish.lastAudio = packet.dts;
      live.admit(packet, false);
    }
    this.#emit(items);
  }

  /** The publish's audio is `codec`, not AAC: a second ffmpeg makes it AAC; its packets join the publish's. */
  #startTranscoder(codec: string, publish: Publish): TsAudioTranscoder {
    const { stream, reader } = publish;
    return startTsAudioTranscoder(this.#ctx, {
      stream,
      codec,
      live: true,
      timeline: () => reader.timeline,
      notes: (result) => this.#notes(stream, result),
      take: (packets) => this.#takeMedia(publish, packets),
    });
  }

  #startStats(): void {
    this.#lastTick = this.#ctx.now();
    const tick = (): void => {
      this.#emitStats();
      this.#cancelTick = this.#ctx.schedule(1000, tick);
    };
    this.#cancelTick = this.#ctx.schedule(1000, tick);
  }

  /** The figures since the last record; also once when the publisher leaves, for its last partial second. */
  #emitStats(): void {
    const ctx = this.#ctx;
    const now = ctx.now();
    const seconds = Math.max(0.001, (now - this.#lastTick) / 1000);
    this.#lastTick = now;
    if (!this.#live) return;
    ctx.emit('stats', { items: [this.#live.takeStats(seconds)], ack: Ack.none() });
  }

  #stopStats(): void {
    this.#cancelTick?.();
    this.#cancelTick = undefined;
  }

  #emit(items: MediaItem[]): void {
    if (!this.#out.closed) this.#out.next({ items, ack: Ack.none() });
  }

  drain(): void {
    this.#stopping = true;
    this.#stopStats();
    this.#wake?.();
    void this.#process?.stop(2000);
    void this.#transcoder?.stop(2000);
  }

  close(): void {
    this.drain();
  }
}
