/**
 * ffmpeg's `-progress` output: blocks of `key=value` lines, each closed by
 * `progress=continue` (or `progress=end` at the last one).
 */

/** One progress report. */
export interface FfmpegProgress {
  /** Frames encoded so far (of the first video output). */
  frame: number;
  /** Encoding frames per second. */
  fps: number;
  /** Media time encoded per wall-clock second (1 = real time); 0 when not known yet. */
  speed: number;
  /** Media time written so far, in milliseconds. */
  outTimeMs: number;
  /** Bytes written to the first output so far; 0 when ffmpeg does not know (a pipe). */
  totalSize: number;
  /** Frames duplicated and dropped by ffmpeg's rate control. */
  dupFrames: number;
  dropFrames: number;
  /** The last report: ffmpeg is about to exit. */
  end: boolean;
}

function numberOf(text: string | undefined): number {
  if (text === undefined) return 0;
  const value = Number.parseFloat(text);
  return Number.isFinite(value) ? value : 0;
}

/**
 * Turns chunks of `-progress` text into reports. Chunks may split lines
 * anywhere; a report is emitted when its block closes.
 */
export class ProgressParser {
  #partial = '';
  #block = new Map<string, string>();
  readonly #emit: (progress: FfmpegProgress) => void;

  constructor(emit: (progress: FfmpegProgress) => void) {
    this.#emit = emit;
  }

  push(chunk: Buffer | string): void {
    const text = this.#partial + chunk.toString();
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) this.#line(line.trim());
  }

  #line(line: string): void {
    const at = line.indexOf('=');
    if (at <= 0) return;
    const key = line.slice(0, at);
    const value = line.slice(at + 1).trim();
    if (key !== 'progress') {
      this.#block.set(key, value);
      return;
    }
    const block = this.#block;
    this.#block = new Map();
    // out_time_us is right; out_time_ms is microseconds too in ffmpeg 5.1 (a known misnomer).
    const outTimeUs = numberOf(block.get('out_time_us') ?? block.get('out_time_ms'));
    this.#emit({
      frame: numberOf(block.get('frame')),
      fps: numberOf(block.get('fps')),
      speed: numberOf(block.get('speed')?.replace(/x$/, '')),
      outTimeMs: Math.max(0, outTimeUs / 1000),
      totalSize: numberOf(block.get('total_size')),
      dupFrames: numberOf(block.get('dup_frames')),
      dropFrames: numberOf(block.get('drop_frames')),
      end: value === 'end',
    });
  }
}
