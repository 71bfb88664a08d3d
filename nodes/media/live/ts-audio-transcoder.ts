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
 */
import type { FfmpegExit } from '../../../native/ffmpeg/process.ts';
import { FfmpegProcess } from '../../../native/ffmpeg/process.ts';
import { aacTranscodeCommand } from '../../../native/ffmpeg/aac-transcode.ts';
import { TsReader, type TsReadResult } from '../../../media/mpegts.ts';
import type { ForeignAudio } from '../../../media/mpegts-forward.ts';
import { unwrapNear } from '../../../media/mpegts-pes.ts';
import { FORWARD_AUDIO_PID } from '../../../media/mpegts-psi.ts';

const TICKS = 90_000;
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
  /** The PTS of the audio PES written and not yet known to be back as AAC, oldest first. */
  readonly #inFlight: number[] = [];
  #firstWritten: number | undefined;
  /** The PTS of the last AAC frame read back. */
  #returned: number | undefined;
  #silentReported = false;

  /**
   * `timeline` gives where the source's own reader is (`TsReader.timeline`): the AAC's timestamps, unwrapped
   * by a reader that started later, are put on the same turn of the 33-bit clock as the video's.
   */
  constructor(options: { stream: string; codec: string; timeline: () => number | undefined; events: TsAudioTranscoderEvents }) {
    this.codec = options.codec;
    this.#events = options.events;
    this.#timeline = options.timeline;
    this.#reader = new TsReader({ stream: options.stream });
    this.#process = FfmpegProcess.spawn(aacTranscodeCommand({ pid: FORWARD_AUDIO_PID }));
    this.#process.output(0).on('data', (chunk: Buffer) => this.#report(this.#reader.push(chunk)));
    void this.#process.exited.then((exit) => {
      if (exit.error) this.#events.failed(exit);
    });
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
  }

  /** Whether ffmpeg still runs. */
  get running(): boolean {
    return this.#process.running;
  }

  /** The media seconds written and not back as AAC yet (from the first written, before any AAC came back). */
  get backlogSeconds(): number {
    if (!this.#inFlight.length) return 0;
    return (this.#inFlight.at(-1)! - (this.#returned ?? this.#firstWritten!)) / TICKS;
  }

  /** Sends the audio's TS packets on; dropped, and reported, while ffmpeg is too far behind. */
  write(audio: ForeignAudio): void {
    if (!this.#process.running) return;
    const stdin = this.#process.stdin;
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

  /** Stops it at once (the node stops). */
  async stop(deadlineMs: number): Promise<void> {
    await this.#process.stop(deadlineMs);
  }
}
