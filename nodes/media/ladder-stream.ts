/**
 * One stream's ladder inside an `encode` node: its video written as FLV
 * into one ffmpeg, each rung read back from its own pipe as packets, the
 * audio copied in-process, the source forwarded when passed through.
 * ffmpeg dying is not the stream's end: the ladder starts a new one at the
 * next keyframe and marks each rung's next packet as a discontinuity.
 */
import { FfmpegProcess } from '../../native/ffmpeg/process.ts';
import type { EncoderChoice } from '../../native/ffmpeg/encoders.ts';
import type { FfmpegProgress } from '../../native/ffmpeg/progress.ts';
import { FlvReader, FlvWriter, toMs } from '../../media/flv.ts';
import type { MediaItem, MediaPacket, TrackInfo } from '../../media/packet.ts';
import { backoffDelay, type Logger } from '../../runtime/api.ts';
import { keyForLog } from '../../media/stream-key.ts';
import { ladderCommand } from './ladder-command.ts';
import { selectRungs, type Rung } from './ladders.ts';
import { RungMeter, type LadderStats } from './ladder-stats.ts';

/** What a replaced `encode` hands its successor for one live stream. */
export interface LadderHandover {
  /** Its rungs: their first packets in the successor follow a restart, so they are marked as a discontinuity. */
  rungs: string[];
  /**
   * The video it wrote to ffmpeg since the last keyframe (empty when it had
   * no run). Its ffmpeg encoded every frame of it; the successor decodes it
   * again and splices each rung on the next frame (a keyframe forced
   * there), so no frame is skipped or repeated across the reload.
   */
  gop: MediaPacket[];
  /** How far its rungs' times were from the source's (ms): the successor's rungs keep it, so their times follow on. */
  offsetMs?: number;
}

/** The longest GOP kept for a handover (frames); a longer one is not kept and a reload waits for the next keyframe. */
const maxHandoverGop = 600;

/**
 * The most video kept while ffmpeg starts (frames): a handed-over GOP and
 * the frames that come while the run starts. Past it, the oldest GOP goes
 * whole, so a run always starts on a keyframe.
 */
const maxPending = 2 * maxHandoverGop;

/** What a stream's ladder needs from its node. */
export interface LadderStreamOptions {
  stream: string;
  /** `node \`name\` (file:line)`, for log messages. */
  label: string;
  log: Logger;
  rungs: readonly Rung[];
  maxHeight?: number;
  preset: string;
  segmentSeconds: number;
  passthrough: boolean;
  /** The encoder, once the host's encoders are probed. */
  encoder: Promise<EncoderChoice>;
  /** Hands packets (and the stream's end) downstream. */
  emit(items: MediaItem[]): void;
  /** Counts packets dropped on purpose. */
  dropped(count: number, reason: string): void;
  /** Bytes of input written to ffmpeg before it starts reading them is bounded by this (bytes). */
  maxBacklog?: number;
  /** The ffmpeg binary. */
  binary?: string;
  /** What a replaced `encode` was running for this stream: its rungs go on here after a discontinuity, spliced on the frame after its last. */
  continues?: LadderHandover;
  now(): number;
}

/** One ffmpeg run of the ladder. */
interface Run {
  process: FfmpegProcess;
  writer: FlvWriter;
  rungs: Rung[];
  /** Packets from this run are emitted only while it is the current one. */
  current: boolean;
  startedAt: number;
  /** A splice: each rung's output before its first keyframe after this source time (ms) was encoded by the replaced `encode`, and is dropped. */
  spliceAfterMs?: number;
  /** The stream's video renditions with this run (`source` when passed through, then the rungs): announced on the rungs' keyframes. */
  renditions: readonly string[];
  /** The source's frame rate, which the rungs carry (their own SPS timing says 1/ms, from the encoder's time base). */
  fps?: number;
  /** The source time (ms) of the first frame written: each rung's first frame, which ffmpeg may shift by its input's start. */
  firstMs: number;
  /** Frames written to ffmpeg, and frames read back on the first rung: what a cut input lost is the difference. */
  written: number;
  encoded: number;
}

/** How long a run must last to count as healthy again: quicker deaths back off. */
const healthyRunMs = 10_000;

/** A stream's ladder; see the file's comment. */
export class LadderStream {
  readonly #options: LadderStreamOptions;
  /** The stream as logs may show it: it may be named by its secret key. */
  readonly #shown: string;
  #run: Run | undefined;
  /** The start under way (waiting for the encoder choice), which `end` awaits. */
  #starting: Promise<void> | undefined;
  #stopped = false;
  /** Video waiting for the encoder choice (the first second of a stream at most); bounded. */
  #pending: MediaPacket[] = [];
  /** Rung names whose next packet follows a restart. */
  #discontinuous = new Set<string>();
  /** The video written to the current run since its last keyframe (for a handover); empty when not whole. */
  #gop: MediaPacket[] = [];
  /** The replaced `encode`'s last GOP, until this stream's first packet says whether it splices on. */
  #primer: MediaPacket[] | undefined;
  /**
   * The rungs' times minus the source's (ms), set by the stream's first run:
   * ffmpeg moves its output so that no decode time is negative (the B-frame
   * delay at a stream starting near 0); later runs are moved to match.
   */
  #offsetMs: number | undefined;
  /**
   * The run being started splices on the replaced `encode`'s output: after
   * this source time (ms), at this frame (counted in presentation order from
   * the handed-over GOP's keyframe; `primed` of them are that GOP), once
   * `counted` (see `#spliceReady`).
   */
  #splice: { afterMs: number; frame: number; primed: number; counted: boolean } | undefined;
  /** A restart is due: wait for a keyframe (and the backoff) before writing video again. */
  #needKeyframe = true;
  #notBefore = 0;
  #quickDeaths = 0;
  #ending = false;
  #ended = false;
  /** The run `end` is finishing, while it does. */
  #finishing: Run | undefined;
  /** Set by `hurry`: how long ffmpeg may take to finish once its input is cut. */
  #graceMs: number | undefined;
  #audioWarned = false;
  #dropping = false;
  readonly #meters = new Map<string, RungMeter>();
  #progress: FfmpegProgress | undefined;
  #restarts = 0;
  #droppedInterval = 0;

  constructor(options: LadderStreamOptions) {
    this.#options = options;
    for (const rung of options.continues?.rungs ?? []) this.#discontinuous.add(rung);
    if (options.continues?.gop[0]?.keyframe) this.#primer = options.continues.gop;
    this.#offsetMs = options.continues?.offsetMs;
    this.#shown = keyForLog(options.stream);
  }

  /** The rungs of the running ffmpeg, and those waiting for a restart. */
  get rungs(): string[] {
    return [...new Set([...(this.#run?.rungs.map((rung) => rung.name) ?? []), ...this.#discontinuous])];
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** What a successor needs to go on with this stream (a reload replaces the node): call before `end(true)`. */
  handover(): LadderHandover {
    return { rungs: this.rungs, gop: this.#run ? [...this.#gop] : [], offsetMs: this.#offsetMs };
  }

  /** The running ffmpeg's pid (tests kill it to show the restart). */
  get pid(): number | undefined {
    return this.#run?.process.pid;
  }

  /** One packet of the stream (video or audio). */
  push(packet: MediaPacket): void {
    if (this.#ending) return;
    if (packet.track.kind === 'audio') return this.#audio(packet);
    if (this.#options.passthrough) this.#options.emit([{ ...packet, rendition: 'source' }]);
    // A publisher that reconnected starts over at a new time: a new ffmpeg, whose rungs say so.
    if (packet.discontinuity && this.#run) this.#retire('the source restarted (discontinuity)');
    if (this.#needKeyframe) {
      const primer = this.#primer;
      this.#primer = undefined;
      if (!packet.keyframe && primer && splicesOn(primer, packet)) {
        // The replaced `encode` encoded up to the frame before this one: decode its GOP again, splice on this frame.
        this.#splice = { afterMs: Math.max(...primer.map((p) => toMs(p.pts, p.track.timescale))), frame: primer.length, primed: primer.length, counted: false };
        this.#pending.push(...primer);
      } else if (!packet.keyframe || this.#options.now() < this.#notBefore) {
        return this.#drop(1, this.#restarts > 0 || this.#discontinuous.size > 0 ? 'encoder_restarting' : 'waiting_keyframe');
      }
      this.#needKeyframe = false;
    }
    if (!this.#run) {
      this.#pending.push(packet);
      if (this.#pending.length > maxPending) this.#dropOldestGop();
      // The run starts at the first packet waiting: a keyframe (the GOP a splice decodes again starts with one).
      if (!this.#starting && this.#spliceReady(packet)) this.#start(this.#pending[0]);
      return;
    }
    this.#write(this.#run, packet);
  }

  /**
   * Drops the video waiting for ffmpeg up to its second keyframe (or all of
   * it, waiting for the next keyframe, when there is none): a run must start
   * on a keyframe. A splice pending on the dropped GOP is given up.
   */
  #dropOldestGop(): void {
    const next = this.#pending.findIndex((p, index) => index > 0 && p.keyframe);
    const dropped = next > 0 ? this.#pending.splice(0, next) : this.#pending.splice(0);
    if (next < 0) this.#needKeyframe = true;
    this.#splice = undefined;
    this.#drop(dropped.length, 'encoder_starting');
  }

  /**
   * Whether a run can start: always, but for a splice, only once a frame
   * shown after the predecessor's last one has come. A source with B-frames
   * sends, after that last frame, frames shown before it (the predecessor
   * never had them): they move the splice frame on by one each (they are
   * lost with the predecessor's side; the alternative is a whole GOP).
   * Reordering is shallow: past 16 frames, it starts anyway.
   */
  #spliceReady(packet: MediaPacket): boolean {
    const splice = this.#splice;
    if (!splice || splice.counted) return true;
    const fresh = this.#pending.slice(splice.primed);
    if (toMs(packet.pts, packet.track.timescale) <= splice.afterMs && fresh.length < 16) return false;
    splice.frame = splice.primed + fresh.filter((p) => toMs(p.pts, p.track.timescale) < splice.afterMs).length;
    splice.counted = true;
    return true;
  }

  #audio(packet: MediaPacket): void {
    if (packet.track.codec === 'aac') {
      this.#options.emit([{ ...packet, rendition: 'audio' }]);
      return;
    }
    if (!this.#audioWarned) {
      this.#audioWarned = true;
      this.#options.log.warn({ stream: this.#shown, codec: packet.track.codec }, `${this.#options.label}: stream ${this.#shown}: ${packet.track.codec} audio is dropped (only AAC is carried)`);
    }
    this.#drop(1, 'audio_codec');
  }

  #drop(count: number, reason: string): void {
    this.#droppedInterval += count;
    this.#options.dropped(count, reason);
  }

  #write(run: Run, packet: MediaPacket): void {
    const stdin = run.process.stdin;
    // A live source cannot wait for a slow encoder: past the backlog, skip to the next keyframe (whole GOPs only).
    if (stdin.writableLength > (this.#options.maxBacklog ?? 32 * 1024 * 1024)) this.#dropping = true;
    if (this.#dropping) {
      this.#gop = [];
      if (!packet.keyframe || stdin.writableLength > 0) return this.#drop(1, 'encoder_behind');
      this.#dropping = false;
    }
    let bytes: Buffer;
    try {
      bytes = run.writer.write(packet);
    } catch (error) {
      this.#gop = [];
      return this.#drop(1, 'unwritable_packet');
    }
    stdin.write(bytes);
    run.written += 1;
    if (packet.keyframe) this.#gop = [packet];
    else if (this.#gop.length > 0 && this.#gop.length < maxHandoverGop) this.#gop.push(packet);
    else this.#gop = [];
  }

  #start(first: MediaPacket): void {
    const options = this.#options;
    this.#starting = options.encoder.then((choice) => {
      this.#starting = undefined;
      if (this.#stopped || this.#run) return;
      try {
        // What waits may have lost its oldest GOP since the start was asked for: the run starts at what waits now.
        this.#launch(choice, this.#pending[0] ?? first);
      } catch (error) {
        // A start that throws (ffmpeg cannot be spawned) is handled as a death: logged, retried at a later keyframe with backoff.
        this.#startFailed(error);
      }
    }, () => {
      // No encoder: the node fails (see `encode`); nothing to start here.
      this.#starting = undefined;
    });
  }

  #startFailed(error: unknown): void {
    this.#restarts += 1;
    this.#quickDeaths += 1;
    this.#needKeyframe = true;
    const wait = backoffDelay(this.#quickDeaths, 250, 30_000);
    this.#notBefore = this.#options.now() + wait;
    this.#pending = [];
    const message = error instanceof Error ? error.message : String(error);
    this.#options.log.error({ stream: this.#shown, restarts: this.#restarts, wait_ms: wait }, `${this.#options.label}: stream ${this.#shown}: ffmpeg could not start: ${message}; trying again at a later keyframe`);
  }

  /** Spawns ffmpeg for the rungs the first packet's height allows, and writes the video waiting for it. */
  #launch(choice: EncoderChoice, first: MediaPacket): void {
    const options = this.#options;
    const { kept, skipped } = selectRungs(options.rungs, first.track.height, options.maxHeight);
    if (skipped.length > 0 && this.#restarts === 0) {
      options.log.info({ stream: this.#shown, skipped: skipped.map((r) => r.name), height: first.track.height }, `${options.label}: stream ${this.#shown}: rungs ${skipped.map((r) => `\`${r.name}\``).join(', ')} skipped (above the source's ${first.track.height ?? '?'}p${options.maxHeight ? ` or max_height ${options.maxHeight}` : ''})`);
    }
    const splice = this.#splice;
    this.#splice = undefined;
    const command = ladderCommand({
      rungs: kept,
      encoder: choice.spec,
      preset: options.preset,
      segmentSeconds: options.segmentSeconds,
      startSeconds: toMs(first.pts, first.track.timescale) / 1000,
      spliceAtFrame: splice?.frame,
    });
    const process = FfmpegProcess.spawn(command, {
      binary: options.binary,
      onProgress: (progress) => {
        if (this.#run?.process === process) this.#progress = progress;
      },
    });
    const run: Run = { process, writer: new FlvWriter({ audio: false, video: true }), rungs: kept, renditions: [...(options.passthrough ? ['source'] : []), ...kept.map((rung) => rung.name)], current: true, startedAt: options.now(), spliceAfterMs: splice?.afterMs, firstMs: toMs(first.pts, first.track.timescale), fps: first.track.fps, written: 0, encoded: 0 };
    this.#run = run;
    kept.forEach((rung, index) => this.#readRung(run, rung, index));
    void process.exited.then((exit) => this.#exited(run, exit.error));
    options.log.info({ stream: this.#shown, encoder: choice.spec.name, rungs: kept.map((r) => r.name), pid: process.pid }, `${options.label}: stream ${this.#shown}: ffmpeg started (${choice.spec.name}, ${kept.map((r) => r.name).join(', ')})`);
    const pending = this.#pending;
    this.#pending = [];
    for (const packet of pending) this.#write(run, packet);
  }

  #readRung(run: Run, rung: Rung, index: number): void {
    const reader = new FlvReader({ stream: this.#options.stream, rendition: rung.name });
    let meter = this.#meters.get(rung.name);
    if (!meter) this.#meters.set(rung.name, (meter = new RungMeter()));
    const rungMeter = meter;
    let readerFailed = false;
    let spliced = run.spliceAfterMs === undefined;
    /** How far ffmpeg moved this run's times from the stream's rung times (ms), from its first frame: taken off every packet. */
    let shift: number | undefined;
    let rungTrack: TrackInfo | undefined;
    let carried: TrackInfo | undefined;
    run.process.output(index).on('data', (chunk: Buffer) => {
      if (readerFailed) return;
      const result = reader.push(chunk);
      if (result.error) {
        // A failed reader returns its error on every later chunk: one line, and a new ffmpeg (this one's output is lost).
        readerFailed = true;
        this.#options.log.error({ stream: this.#shown, rung: rung.name }, `${this.#options.label}: stream ${this.#shown}: rung \`${rung.name}\` output is not FLV: ${result.error.message}`);
        if (run.current) this.#retire(`rung \`${rung.name}\` output is not FLV`);
        return;
      }
      if (index === 0) run.encoded += result.packets.length;
      if (!run.current || result.packets.length === 0) return;
      let packets = result.packets;
      if (shift === undefined) {
        // The first packet is the IDR of the first frame written: ffmpeg passes every frame at its source time plus a constant.
        const moved = packets[0].keyframe ? packets[0].pts - run.firstMs : 0;
        // The first run sets the offset; so does a run whose times it would make negative (a publisher that reconnected starts again near 0).
        if (this.#offsetMs === undefined || packets[0].dts - (moved - this.#offsetMs) < 0) this.#offsetMs = moved;
        shift = moved - this.#offsetMs;
      }
      const by = shift;
      if (by !== 0) packets = packets.map((p) => ({ ...p, pts: p.pts - by, dts: p.dts - by }));
      if (!spliced) {
        // Up to the splice keyframe, the replaced `encode` emitted these frames already.
        const after = run.spliceAfterMs! + (this.#offsetMs ?? 0);
        const at = packets.findIndex((p) => p.keyframe && p.pts > after);
        if (at < 0) return;
        spliced = true;
        packets = packets.slice(at);
      }
      // The source's frame rate, not the 1/ms timing the encoder's time base wrote in the rung's SPS.
      if (packets[0].track !== rungTrack) {
        rungTrack = packets[0].track;
        carried = { ...rungTrack, fps: run.fps };
      }
      // Keyframes say which renditions the stream has: the origin's master playlist waits for those, no longer.
      packets = packets.map((p) => ({ ...p, track: p.track === rungTrack ? carried! : { ...p.track, fps: run.fps }, ...(p.keyframe && { renditions: run.renditions }) }));
      if (this.#discontinuous.delete(rung.name)) packets[0] = { ...packets[0], discontinuity: true };
      for (const packet of packets) rungMeter.add(packet);
      this.#options.emit(packets);
    });
  }

  /** Stops the current run without waiting: its late output is dropped; the next keyframe starts a new one. */
  #retire(reason: string): void {
    const run = this.#run;
    if (!run) return;
    run.current = false;
    this.#run = undefined;
    this.#needKeyframe = true;
    for (const rung of run.rungs) this.#discontinuous.add(rung.name);
    this.#options.log.info({ stream: this.#shown, pid: run.process.pid }, `${this.#options.label}: stream ${this.#shown}: ffmpeg restarted: ${reason}`);
    void run.process.stop(2000);
  }

  #exited(run: Run, error: Error | undefined): void {
    if (!run.current || this.#ending) return;
    run.current = false;
    this.#run = undefined;
    this.#restarts += 1;
    this.#needKeyframe = true;
    for (const rung of run.rungs) this.#discontinuous.add(rung.name);
    const now = this.#options.now();
    this.#quickDeaths = now - run.startedAt < healthyRunMs ? this.#quickDeaths + 1 : 0;
    // The first death restarts at the next keyframe; a crash loop waits longer each time, up to 30 s.
    const wait = this.#quickDeaths <= 1 ? 0 : backoffDelay(this.#quickDeaths - 1, 250, 30_000);
    this.#notBefore = now + wait;
    const message = error?.message ?? 'ffmpeg exited';
    this.#options.log.error({ stream: this.#shown, restarts: this.#restarts, wait_ms: wait }, `${this.#options.label}: stream ${this.#shown}: ${message}; restarting at the next keyframe`);
  }

  /**
   * The stream ended: ffmpeg finishes what it has, its last packets go out,
   * then the stream's end. With `handOver` (the node is replaced by a
   * reload) the stream goes on in the successor: no end goes out.
   */
  async end(handOver = false): Promise<void> {
    if (this.#ending) return;
    this.#ending = true;
    try {
      // Packets that came before the encoder was chosen are still encoded.
      await this.#starting;
      const run = this.#run;
      if (run) {
        await this.#finish(run);
        this.#countCut(run);
      }
    } catch (error) {
      this.#options.log.error({ stream: this.#shown }, `${this.#options.label}: stream ${this.#shown}: ffmpeg did not finish cleanly: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.#run = undefined;
    if (!this.#ended && !handOver) {
      this.#ended = true;
      this.#options.emit([{ stream: this.#options.stream, end: true }]);
    }
  }

  /**
   * Ends ffmpeg's input and waits for it to encode what it holds, however
   * long that takes while it makes progress (a slow host, input fed faster
   * than real time); stalled for `stallMs`, it is stopped.
   */
  async #finish(run: Run): Promise<void> {
    const stallMs = 10_000;
    let last = this.#progress;
    let lastChange = Date.now();
    const watchdog = setInterval(() => {
      if (this.#progress !== last) {
        last = this.#progress;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > stallMs) {
        void run.process.stop(2000);
      }
    }, 1000);
    this.#finishing = run;
    try {
      // The largest timer Node allows: no deadline of its own, the watchdog decides (or a shutdown: see `hurry`).
      const finished = run.process.finish(0x7fffffff);
      if (this.#graceMs !== undefined) void run.process.cutInput(this.#graceMs);
      await finished;
    } finally {
      this.#finishing = undefined;
      clearInterval(watchdog);
    }
  }

  /**
   * The node is shutting down (or removed): a live stream's end must not
   * hold the stop while ffmpeg works through a backlog (a 720p ladder on a
   * busy host encodes slower than real time, and its input queue grows).
   * ffmpeg's input is cut, dropping what it had not read yet; it gets
   * `graceMs` to finish the frames it holds, then it is stopped. The frames
   * it never encoded are counted as dropped (`shutdown`) and logged. Call
   * after `end`; a stream not yet finishing is cut when it starts to.
   */
  hurry(graceMs: number): void {
    if (this.#graceMs !== undefined) return;
    this.#graceMs = graceMs;
    if (this.#finishing) void this.#finishing.process.cutInput(graceMs);
  }

  #countCut(run: Run): void {
    const lost = run.written - run.encoded;
    if (this.#graceMs === undefined || lost <= 0) return;
    this.#drop(lost, 'shutdown');
    this.#options.log.warn({ stream: this.#shown, dropped: lost }, `${this.#options.label}: stream ${this.#shown}: stopping: ${lost} frame${lost === 1 ? '' : 's'} still waiting for ffmpeg were not encoded (dropped)`);
  }

  /** The node stops at once: ffmpeg is stopped (SIGTERM, then SIGKILL), nothing more is emitted. */
  async stop(): Promise<void> {
    this.#ending = true;
    this.#stopped = true;
    const run = this.#run;
    this.#run = undefined;
    if (run) {
      run.current = false;
      await run.process.stop(2000);
    }
  }

  /** The last second's figures, and resets the interval counters. */
  stats(seconds: number): LadderStats {
    const rungs: Record<string, number> = {};
    let bitrate = 0;
    let fps = 0;
    let keyframeInterval = 0;
    let mediaMs = 0;
    let first = true;
    for (const [name, meter] of this.#meters) {
      const figures = meter.take(seconds);
      rungs[name] = figures.bitrate;
      bitrate += figures.bitrate;
      // The figures of the top rung (the first read) stand for the ladder.
      if (first) {
        first = false;
        fps = figures.fps;
        keyframeInterval = figures.keyframeInterval;
        mediaMs = figures.mediaMs;
      }
    }
    const dropped = this.#droppedInterval;
    this.#droppedInterval = 0;
    return {
      stream: this.#options.stream,
      fps,
      speed: seconds > 0 ? Math.round((mediaMs / 1000 / seconds) * 100) / 100 : 0,
      bitrate,
      rungs,
      keyframe_interval: keyframeInterval,
      dropped,
      restarts: this.#restarts,
      frames: this.#progress?.frame ?? 0,
    };
  }
}

/**
 * Whether `packet` follows a replaced `encode`'s last GOP: the same track
 * configuration, the next decode time within a second. Then that GOP, decoded
 * again, lets a new ffmpeg start on this (inter) frame.
 */
function splicesOn(gop: readonly MediaPacket[], packet: MediaPacket): boolean {
  const last = gop[gop.length - 1];
  const track = packet.track;
  if (track.timescale !== last.track.timescale || !track.config.equals(last.track.config)) return false;
  return packet.dts > last.dts && packet.dts - last.dts <= track.timescale;
}
