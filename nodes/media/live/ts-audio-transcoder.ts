/**
 * A live MPEG-TS stream's non-AAC audio (MP2, AC-3, E-AC-3, Opus: what many
 * SRT encoders and broadcast chains send), made AAC by a second ffmpeg while
 * the engine keeps demuxing the video itself. The TS reader hands over that
 * audio's TS packets (`foreignAudio`: its own PAT and PMT, the audio on
 * `FORWARD_AUDIO_PID`); they go to ffmpeg's stdin as they come, and what
 * ffmpeg writes back (MPEG-TS, AAC, the same timestamps) is read by a reader
 * of its own. The H.264 and AAC path never waits for it.
 *
 * Its backlog is measured in media time, the PTS of the audio written less
 * that of the AAC read back: past `MAX_BACKLOG_SECONDS` (ffmpeg stalled, or
 * the host too loaded) audio is dropped, counted in audio PES (each one or a
 * few audio frames), so the AAC never lags the video by more than that.
 * A transcoder made with `live: false` (a file read by `demux`, faster than
 * real time) never drops: its user waits for it (`progress`) instead.
 */
import type { FfmpegExit } from '../../../native/ffmpeg/process.ts';
import { FfmpegProcess } from '../../../native/ffmpeg/process.ts';
import { aacTranscodeCommand } from '../../../native/ffmpeg/aac-transcode.ts';
import { TsReader, type TsReadResult } from '../../../media/mpegts.ts';
import type { ForeignAudio } from '../../../media/mpegts-forward.ts';
import { TIMESCALE as TICKS, unwrapNear } from '../../../media/mpegts-pes.ts';
import { FORWARD_AUDIO_PID } from '../../../media/mpegts-psi.ts';
import type { MediaPacket } from '../../../media/packet.ts';
import type { NodeContext } from '../../../runtime/api.ts';

/** Seconds of audio written and not yet back as AAC past which more is dropped. */
export const MAX_BACKLOG_SECONDS = 2;
/**
 * Seconds of audio written before the first AAC comes back: the allowance of a starting ffmpeg (a loaded
 * host), past which a transcoder that has written nothing is reported (`silent`) and audio dropped.
 */
export const FIRST_AAC_SECONDS = 5;
/** Bytes of backlog past which audio is dropped when its PES carry no timestamps to measure it by. */
const MAX_BACKLOG_BYTES = 1024 * 1024;
/** How far before the audio written the AAC of it may be stamped (the encoder's priming, a frame or two). */
const AAC_SLACK = 0.1 * TICKS;

/** What a transcoder reports to the node that runs it. */
export interface TsAudioTranscoderEvents {
  /** AAC packets (and configs) read back from ffmpeg, stamped like the video; a reader error on ffmpeg's output too. */
  result(result: TsReadResult): void;
  /** ffmpeg failed (not stopped by us): the audio of this publish ends here, the video goes on. */
  failed(exit: FfmpegExit): void;
  /**
   * Audio not transcoded, counted in audio PES (`pes`; `bytes` of MPEG-TS when known): dropped because
   * ffmpeg was behind (`backlog`), or written but never read back when ffmpeg was killed at the publish's end (`cut`).
   */
  dropped(loss: { reason: 'backlog' | 'cut'; pes: number; bytes?: number }): void;
  /** `seconds` of audio went in and no AAC came out: ffmpeg is not encoding it (once per transcoder). */
  silent(seconds: number): void;
}

/** One ffmpeg turning one publish's audio into AAC; started at the first audio, ended with the publish. */
export class TsAudioTranscoder {
  readonly codec: string;
  readonly #process: FfmpegProcess;
  readonly #reader: TsReader;
  readonly #events: TsAudioTranscoderEvents;
  readonly #timeline: () => number | undefined;
  readonly #live: boolean;
  /** Resolved at the next AAC read back, stdin drain or exit (`progress`). */
  #progress: { promise: Promise<void>; resolve: () => void } | undefined;
  /** The PTS of the audio PES written and not yet known to be back as AAC, oldest first. */
  readonly #inFlight: number[] = [];
  #firstWritten: number | undefined;
  /** The PTS of the last AAC frame read back. */
  #returned: number | undefined;
  #silentReported = false;

  /**
   * `timeline` gives where the source's own reader is (`TsReader.timeline`): the AAC's timestamps, unwrapped
   * by a reader that started later, are put on the same turn of the 33-bit clock as the video's.
   * `live` (the default): audio past the backlog limits is dropped; not live, it is always written.
   */
  constructor(options: { stream: string; codec: string; timeline: () => number | undefined; events: TsAudioTranscoderEvents; live?: boolean }) {
    this.codec = options.codec;
    this.#events = options.events;
    this.#timeline = options.timeline;
    this.#live = options.live ?? true;
    this.#reader = new TsReader({ stream: options.stream });
    this.#process = FfmpegProcess.spawn(aacTranscodeCommand({ pid: FORWARD_AUDIO_PID }));
    this.#process.output(0).on('data', (chunk: Buffer) => this.#report(this.#reader.push(chunk)));
    this.#process.stdin.on('drain', () => this.#progressed());
    void this.#process.exited.then((exit) => {
      if (exit.error) this.#events.failed(exit);
      this.#progressed();
    });
  }

  #progressed(): void {
    const progress = this.#progress;
    this.#progress = undefined;
    progress?.resolve();
  }

  /** Resolves when ffmpeg next moves: AAC read back, its input taken in, or its exit. */
  progress(): Promise<void> {
    if (!this.#progress) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      this.#progress = { promise, resolve };
    }
    return this.#progress.promise;
  }

  /** Bytes written to ffmpeg it has not taken in yet. */
  get backlogBytes(): number {
    return this.#process.stdin.writableLength;
  }

  /** Whether audio written has not come back as AAC yet. */
  get pending(): boolean {
    return this.#inFlight.length > 0;
  }

  #report(result: TsReadResult): void {
    const reference = this.#timeline();
    for (const packet of result.packets) {
      if (reference !== undefined) {
        const pts = unwrapNear(packet.pts, reference);
        packet.dts += pts - packet.pts;
        packet.pts = pts;
      }
      // The latest, not the largest: a source whose clock jumps back moves it back too.
      this.#returned = packet.pts;
    }
    if (this.#returned !== undefined) {
      // What came back, less the encoder's slack, is no longer in flight.
      while (this.#inFlight.length && this.#inFlight[0]! <= this.#returned + AAC_SLACK) this.#inFlight.shift();
    }
    this.#events.result(result);
    if (result.packets.length) this.#progressed();
  }

  /** Whether ffmpeg still runs. */
  get running(): boolean {
    return this.#process.running;
  }

  /** Resolves once ffmpeg has exited, however (`end`, `stop`, or on its own). */
  get exited(): Promise<unknown> {
    return this.#process.exited;
  }

  /** The media seconds written and not back as AAC yet (from the first written, before any AAC came back). */
  get backlogSeconds(): number {
    if (!this.#inFlight.length) return 0;
    return (this.#inFlight.at(-1)! - (this.#returned ?? this.#firstWritten!)) / TICKS;
  }

  /** Sends the audio's TS packets on; dropped, and reported, while a live transcoder is too far behind. */
  write(audio: ForeignAudio): void {
    if (!this.#process.running) return;
    const stdin = this.#process.stdin;
    if (this.#live) {
      const backlog = this.backlogSeconds;
      const limit = this.#returned === undefined ? FIRST_AAC_SECONDS : MAX_BACKLOG_SECONDS;
      if (this.#returned === undefined && backlog > FIRST_AAC_SECONDS && !this.#silentReported) {
        this.#silentReported = true;
        this.#events.silent(backlog);
      }
      if (backlog > limit || stdin.writableLength > MAX_BACKLOG_BYTES) {
        this.#events.dropped({ reason: 'backlog', pes: audio.starts.length, bytes: audio.packets.length });
        return;
      }
    }
    this.#firstWritten ??= audio.starts[0];
    this.#inFlight.push(...audio.starts);
    stdin.write(audio.packets);
  }

  /**
   * The publish ended: ffmpeg gets the end of its input, encodes what it
   * holds and exits (killed past `deadlineMs`); the last AAC frames are
   * reported before this resolves. Audio ffmpeg was killed holding is
   * reported as dropped (`cut`).
   */
  async end(deadlineMs: number): Promise<void> {
    const exit = await this.#process.finish(deadlineMs);
    this.#report(this.#reader.end());
    if (exit.signal && this.#inFlight.length) this.#events.dropped({ reason: 'cut', pes: this.#inFlight.length });
  }

  /**
   * Stops it (the node stops): SIGTERM and the end of its input, SIGKILL
   * past `deadlineMs` (0: at once). A transcoder finishing (`end`) is
   * stopped too, its `end` then counting what it held as `cut`.
   */
  async stop(deadlineMs: number): Promise<void> {
    await this.#process.stop(deadlineMs);
  }
}

/** What a node running a transcoder for one stream hands `startTsAudioTranscoder`. */
export interface TranscoderUse {
  stream: string;
  codec: string;
  /** The source's own reader's position (`TsReader.timeline`). */
  timeline: () => number | undefined;
  /** False for input read faster than real time (a file): nothing dropped, the node waits (`progress`). */
  live: boolean;
  /** Where the stream's own results' notes go (skip reasons logged, drops counted): the AAC reader's go there too. */
  notes(result: TsReadResult): void;
  /** The AAC packets read back. */
  take(packets: MediaPacket[]): void;
  /** The audio ends here (ffmpeg failed, or its output does not read); the video goes on. */
  failed?(): void;
}

/**
 * A transcoder for a node's stream whose audio is `codec`, not AAC, with the
 * node's logging and metrics: its output's reader errors (ffmpeg writing what
 * is not MPEG-TS) and ffmpeg's failure are logged and cost the audio only;
 * drops are counted as `audio_transcode_backlog` / `audio_transcode_cut`.
 */
export function startTsAudioTranscoder(ctx: NodeContext<unknown>, use: TranscoderUse): TsAudioTranscoder {
  const { stream, codec } = use;
  ctx.log.info({ stream, codec }, `${ctx.label}: stream \`${stream}\`: audio is ${codec}: transcoding it to AAC`);
  let failed = false;
  const transcoder: TsAudioTranscoder = new TsAudioTranscoder({
    stream,
    codec,
    timeline: use.timeline,
    live: use.live,
    events: {
      result(result) {
        use.notes(result);
        if (result.error && !failed) {
          failed = true;
          ctx.log.error({ stream, codec }, `${ctx.label}: stream \`${stream}\`: the ${codec} to AAC transcoder's output does not read: ${result.error.message}; the video goes on without audio`);
          void transcoder.stop(2000);
          use.failed?.();
        }
        use.take(result.packets);
      },
      failed(exit) {
        ctx.log.error({ stream, codec, code: exit.error?.code }, `${ctx.label}: stream \`${stream}\`: the ${codec} to AAC transcoder failed: ${exit.error?.message}; the video goes on without audio`);
        use.failed?.();
      },
      dropped({ reason, pes, bytes }) {
        ctx.metrics.dropped(pes, `audio_transcode_${reason}`);
        const why = reason === 'backlog' ? `the audio transcoder is over ${MAX_BACKLOG_SECONDS} s behind` : 'the audio transcoder was stopped at the stream\'s end before encoding it';
        ctx.log.warn({ stream, codec, reason, pes, bytes }, `${ctx.label}: stream \`${stream}\`: ${why}: ${pes} audio PES dropped`);
      },
      silent(seconds) {
        ctx.log.warn({ stream, codec, seconds }, `${ctx.label}: stream \`${stream}\`: ${seconds.toFixed(1)} s of ${codec} audio sent to the transcoder and no AAC back: the audio is missing`);
      },
    },
  });
  return transcoder;
}
