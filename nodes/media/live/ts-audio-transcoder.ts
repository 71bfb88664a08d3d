/**
 * A live MPEG-TS stream's non-AAC audio (MP2, AC-3, E-AC-3, Opus: what many
 * SRT encoders and broadcast chains send), made AAC by a second ffmpeg while
 * the engine keeps demuxing the video itself. The TS reader hands over that
 * audio's TS packets (`foreignAudio`); they go to ffmpeg's stdin as they
 * come, and what ffmpeg writes back (MPEG-TS, AAC, the same timestamps) is
 * read by a reader of its own. The H.264 and AAC path never waits for it.
 */
import type { FfmpegExit } from '../../../native/ffmpeg/process.ts';
import { FfmpegProcess } from '../../../native/ffmpeg/process.ts';
import { aacTranscodeCommand } from '../../../native/ffmpeg/aac-transcode.ts';
import { TsReader, unwrapNear, type TsReadResult } from '../../../media/mpegts.ts';

/** Bytes written to ffmpeg and not yet taken in past which more audio is dropped (ffmpeg stalled): seconds of audio. */
const MAX_BACKLOG = 1024 * 1024;

/** What a transcoder reports to the node that runs it. */
export interface TsAudioTranscoderEvents {
  /** AAC packets (and configs) read back from ffmpeg, stamped like the video. */
  result(result: TsReadResult): void;
  /** ffmpeg failed (not stopped by us): the audio of this publish ends here, the video goes on. */
  failed(exit: FfmpegExit): void;
  /** Bytes of source audio not sent because ffmpeg was not keeping up. */
  dropped(bytes: number): void;
}

/** One ffmpeg turning one publish's audio into AAC; started at the first audio, ended with the publish. */
export class TsAudioTranscoder {
  readonly codec: string;
  readonly #process: FfmpegProcess;
  readonly #reader: TsReader;
  readonly #events: TsAudioTranscoderEvents;
  readonly #timeline: () => number | undefined;

  /**
   * `timeline` gives where the source's own reader is (`TsReader.timeline`): the AAC's timestamps, unwrapped
   * by a reader that started later, are put on the same turn of the 33-bit clock as the video's.
   */
  constructor(options: { stream: string; codec: string; timeline: () => number | undefined; events: TsAudioTranscoderEvents }) {
    this.codec = options.codec;
    this.#events = options.events;
    this.#timeline = options.timeline;
    this.#reader = new TsReader({ stream: options.stream });
    this.#process = FfmpegProcess.spawn(aacTranscodeCommand());
    this.#process.output(0).on('data', (chunk: Buffer) => this.#report(this.#reader.push(chunk)));
    void this.#process.exited.then((exit) => {
      if (exit.error) this.#events.failed(exit);
    });
  }

  #report(result: TsReadResult): void {
    const reference = this.#timeline();
    if (reference !== undefined) {
      for (const packet of result.packets) {
        const pts = unwrapNear(packet.pts, reference);
        packet.dts += pts - packet.pts;
        packet.pts = pts;
      }
    }
    this.#events.result(result);
  }

  /** Whether ffmpeg still runs. */
  get running(): boolean {
    return this.#process.running;
  }

  /** Sends TS packets of the audio (with the tables) on; dropped, and reported, while ffmpeg is far behind. */
  write(packets: Buffer): void {
    if (!this.#process.running) return;
    const stdin = this.#process.stdin;
    if (stdin.writableLength > MAX_BACKLOG) {
      this.#events.dropped(packets.length);
      return;
    }
    stdin.write(packets);
  }

  /**
   * The publish ended: ffmpeg gets the end of its input, encodes what it
   * holds and exits (killed past `deadlineMs`); the last AAC frames are
   * reported before this resolves.
   */
  async end(deadlineMs: number): Promise<void> {
    await this.#process.finish(deadlineMs);
    this.#report(this.#reader.end());
  }

  /** Stops it at once (the node stops). */
  async stop(deadlineMs: number): Promise<void> {
    await this.#process.stop(deadlineMs);
  }
}
