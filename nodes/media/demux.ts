import { Ack, bytesBuffer, defineOperator, operate, z, type Batch, type BytesItem, type NodeContext } from '../../runtime/api.ts';
import { FlvReader } from '../../media/flv.ts';
import { TsReader, type TsReadResult } from '../../media/mpegts.ts';
import { TIMESCALE } from '../../media/mpegts-pes.ts';
import type { MediaFormatError } from '../../media/format-error.ts';
import { keyForLog } from '../../media/stream-key.ts';
import type { MediaItem, MediaPacket, TrackInfo } from '../../media/packet.ts';
import { MAX_BACKLOG_SECONDS, startTsAudioTranscoder, type TsAudioTranscoder } from './live/ts-audio-transcoder.ts';

const settings = z.object({
  format: z.enum(['flv', 'mpegts']).meta({ description: 'The container of the bytes: `flv` (as RTMP and `.flv` files carry it) or `mpegts` (as SRT, UDP and `.ts` files carry it).', examples: ['flv', 'mpegts'] }),
  stream: z.string().min(1).optional().meta({ description: 'The name of the stream the packets belong to; a Bytes item\'s `meta.stream` overrides it. Absent: the node\'s name.', examples: ['camera-1'] }),
  max_streams: z.number().int().min(1).default(100).meta({ description: 'Streams read at once; bytes of more are dropped (counted as `max_streams`, the item dead-lettered).', examples: [10] }),
});

/** How long a stream's audio transcoder may take to encode what it holds once its stream has ended. */
const TRANSCODE_END_MS = 5000;
/** Bytes written to the transcoder and not taken in yet past which demux waits for it. */
const WAIT_BYTES = 1024 * 1024;
/** How long demux waits for a transcoder that makes no progress at all before it stops it (the stream goes on without audio). */
const STALL_MS = 20_000;
/**
 * Packets are held for the transcoded audio of their time, but never more than this many 90 kHz ticks behind
 * the newest read: 2 s while all audio written is back (the audio may have ended; a file's audio lags its video
 * by well under that), 10 s while some is not (the reader runs up to 2 s of audio and a chunk ahead of it).
 */
const HOLD_TICKS = 2 * TIMESCALE;
const PENDING_HOLD_TICKS = 10 * TIMESCALE;

/** Ended streams remembered (so their next bytes are marked as a discontinuity); the oldest are forgotten past this. */
const REMEMBERED_ENDS = 1024;

type DemuxSettings = z.output<typeof settings>;

/** What both readers offer. */
interface ContainerReader {
  push(chunk: Buffer): ReaderResult;
  end(): ReaderResult;
}

interface ReaderResult {
  packets: MediaPacket[];
  configs: TrackInfo[];
  skipped: string[];
  drops?: Record<string, number>;
  error?: MediaFormatError;
  foreignAudio?: TsReadResult['foreignAudio'];
  foreignAudioEnded?: TsReadResult['foreignAudioEnded'];
}

/**
 * `demux`: container bytes (FLV, MPEG-TS) to media packets, one reader per
 * stream, so bytes of one stream may arrive in chunks of any size.
 */
export default defineOperator({
  name: 'demux',
  summary: 'Turn FLV or MPEG-TS bytes into media packets.',
  doc: 'Reads the bytes arriving on `in` (from `file.read` with `format: bytes`, a socket, an ingest) as the container `format` and emits their H.264 and AAC packets: video as length-prefixed access units with the decoder configuration (avcC) in the track, audio as raw AAC frames with its AudioSpecificConfig; timestamps in milliseconds from FLV (timescale 1000), at 90 kHz from MPEG-TS (timescale 90000), `rendition: source`. Chunks may split tags and packets anywhere. The stream is named by `stream`, or per item by `meta.stream`; an item with `meta.end: true` ends that stream (a `MediaEnd` goes out, and bytes that come later start it again with a discontinuity), and every stream ends when the input does. An MPEG-TS PES that lost a TS packet (a gap in its continuity counter, or the transport-error bit), whose H.264 or ADTS does not parse, or left unfinished at the stream\'s end is dropped and counted (`ts_loss`, `ts_corrupt`, `ts_truncated`), and reading goes on. Bytes that are not the container end their stream with a log line and a dead letter holding the chunk at fault; the rest of the input and other streams go on. MPEG-TS audio that is not AAC (MP2, AC-3, E-AC-3, Opus) goes out as AAC all the same, through the transcoder `ingest.srt` uses (a second ffmpeg per stream, started at its first audio: 128 kbit/s, the source\'s rate and channels, its own timestamps); a stream\'s packets then go out in time order, video held until the AAC of its time is back (at most 2 s of media behind its newest frame). Its input is never dropped for speed: demux takes its next input batch only once the transcoder holds under 2 s of audio (bytes read from a file come much faster than real time; a socket\'s source then pauses its reads), so it needs no `live` setting; a transcoder that makes no progress for 20 s is stopped and logged, the stream going on without audio. When a stream ends, its transcoder finishes and its last AAC goes out before the end (killed past 5 s, what it held counted as `audio_transcode_cut`); a node stopped before its output ended (forced past its deadline, or failed) kills its transcoders at once, finishing ones too. Other codecs, and non-AAC audio in FLV, are skipped with a warning. Memory is bounded: at most `max_streams` streams are read at once (bytes of others are dead-lettered and counted as dropped, `max_streams`), an MPEG-TS PES that grows past 8 MB without a next start is dropped (`oversized_pes`), and the last 1024 ended streams are remembered for their discontinuity.',
  inputs: { in: { type: 'Bytes', doc: 'Container bytes, in chunks of any size.' } },
  outputs: { out: { type: 'Media<*/*>', doc: 'Packets (`video/h264`, `audio/aac`) and a `MediaEnd` when a stream ends.' } },
  settings,
  example: { format: 'flv' },
  // One batch at a time: while a transcoder catches up, the batches waiting stay in the input channel (bounded).
  paced: true,
  create(ctx) {
    return function demuxNode(input) {
      return operate(input, (out) => {
        const demuxer = new Demuxer(ctx, {
          emit: (items, ack) => (items.length ? out.next({ items, ack }) : ack.release()),
          complete: () => out.complete(),
          error: (error) => out.error(error),
        });
        return {
          next: (batch) => demuxer.next(batch),
          complete: () => demuxer.complete(),
          finalize: () => demuxer.stop(),
        };
      });
    };
  },
});

/** Where a `Demuxer`'s output goes. */
interface DemuxOutput {
  emit(items: MediaItem[], ack: Ack): void;
  complete(): void;
  error(error: unknown): void;
}

/** Packets of one input item waiting in `held`: the item's ack is released once the last of them has gone out. */
interface HoldGroup {
  ack: Ack;
  left: number;
}

interface StreamState {
  reader: ContainerReader;
  failed: boolean;
  /** Its first packet follows an earlier end of this stream. */
  restart: boolean;
  /** The ffmpeg making its audio AAC, when it is not. */
  transcoder: TsAudioTranscoder | undefined;
  /** Transcoders whose audio left the program (a new PMT), finishing. */
  ending: Set<Promise<void>>;
  /** While its audio is transcoded: its packets, and the AAC back, waiting to go out in time order. */
  held: { packet: MediaPacket; group: HoldGroup | undefined }[] | undefined;
  /** The DTS of the last AAC packet back from a transcoder. */
  audioMark: number;
  /** The DTS of the newest packet of its own. */
  newest: number;
  /** Its input ended and its transcoders finished: whatever is held goes out, AAC back or not. */
  ended?: boolean;
}

/** One input batch being read: `index` the next item, `out` what it gave so far. */
interface Job {
  batch: Batch;
  index: number;
  out: MediaItem[];
}

/**
 * The streams of one `demux` node and their readers. Batches are read one at
 * a time, synchronously unless a transcoder must be waited for (it is
 * behind, or its stream ended): the batch then resumes where it stopped.
 */
class Demuxer {
  readonly #ctx: NodeContext<DemuxSettings>;
  readonly #output: DemuxOutput;
  readonly #streams = new Map<string, StreamState>();
  /** Streams that ended: bytes after that restart them with a discontinuity. */
  readonly #ended = new Set<string>();
  /** Batches taken, the first being read. */
  readonly #jobs: Job[] = [];
  /** Every transcoder started that has not exited: running, or finishing at its stream's end. */
  readonly #transcoders = new Set<TsAudioTranscoder>();
  #busy = false;
  #inputDone = false;
  #finished = false;
  #stopped = false;

  constructor(ctx: NodeContext<DemuxSettings>, output: DemuxOutput) {
    this.#ctx = ctx;
    this.#output = output;
  }

  next(batch: Batch): void {
    this.#jobs.push({ batch, index: 0, out: [] });
    this.#pump();
  }

  complete(): void {
    this.#inputDone = true;
    this.#pump();
  }

  /**
   * The node stops before its output ended (forced, or failed: a clean end
   * has waited for every transcoder already): every transcoder is killed at
   * once, those finishing at their stream's end too (what they held counted
   * as `audio_transcode_cut`), and nothing more goes out.
   */
  stop(): void {
    this.#stopped = true;
    for (const transcoder of this.#transcoders) void transcoder.stop(0);
  }

  /** Reads the batches taken, in order, and ends the output after the last; pauses while a wait is on. */
  #pump(): void {
    if (this.#busy || this.#stopped) return;
    this.#busy = true;
    for (;;) {
      const job = this.#jobs[0];
      const wait = job ? this.#read(job) : this.#inputDone && !this.#finished ? this.#finish() : undefined;
      if (wait) {
        wait.then(
          () => {
            this.#busy = false;
            this.#pump();
          },
          (error: unknown) => this.#output.error(error),
        );
        return;
      }
      if (!job) break;
      this.#jobs.shift();
      this.#output.emit(job.out, job.batch.ack);
      // The runtime may hand over the next batch from in here: it is queued, and read by this loop.
      this.#ctx.batchDone();
    }
    this.#busy = false;
  }

  /** Reads the job's items from where it stopped; a promise when it must wait before the next. */
  #read(job: Job): Promise<void> | undefined {
    const items = job.batch.items as BytesItem[];
    const ack = job.batch.ack;
    while (job.index < items.length) {
      const item = items[job.index++]!;
      const meta = item.meta ?? {};
      const name = typeof meta.stream === 'string' && meta.stream ? meta.stream : (this.#ctx.settings.stream ?? this.#ctx.node);
      const data = bytesBuffer(item);
      const state = data.length || meta.end !== true ? this.#state(name, item, ack) : this.#streams.get(name);
      if (data.length && state && !state.failed) {
        this.#ctx.metrics.bytes(data.length, 'read');
        this.#take(name, state, state.reader.push(data), job.out, item, ack);
      }
      const wait = meta.end === true ? this.#end(name, job.out, item, ack) : this.#behind();
      if (wait) return wait;
    }
    return undefined;
  }

  /** The input ended: every stream ends (after its transcoder's last AAC), then the output. */
  #finish(): Promise<void> | undefined {
    this.#finished = true;
    const out: MediaItem[] = [];
    const waits = [...this.#streams.keys()].flatMap((name) => this.#end(name, out, undefined, undefined) ?? []);
    if (out.length) this.#output.emit(out, Ack.none());
    if (!waits.length) {
      this.#output.complete();
      return undefined;
    }
    return Promise.all(waits).then(() => this.#output.complete());
  }

  #state(name: string, item: BytesItem, ack: Ack): StreamState | undefined {
    let state = this.#streams.get(name);
    if (!state) {
      const max = this.#ctx.settings.max_streams;
      if (this.#streams.size >= max) {
        this.#ctx.metrics.dropped(1, 'max_streams');
        this.#ctx.fail(item, new Error(`stream ${keyForLog(name)}: \`max_streams\` (${max}) streams are being read`), ack);
        return undefined;
      }
      const reader = this.#ctx.settings.format === 'flv' ? new FlvReader({ stream: name }) : new TsReader({ stream: name, passForeignAudio: true });
      state = { reader, failed: false, restart: this.#ended.delete(name), transcoder: undefined, ending: new Set(), held: undefined, audioMark: -Infinity, newest: -Infinity };
      this.#streams.set(name, state);
    }
    return state;
  }

  /** A reader's result: its packets out (or held for the transcoded audio), its foreign audio to the transcoder. */
  #take(name: string, state: StreamState, result: ReaderResult, out: MediaItem[], item: BytesItem | undefined, ack: Ack | undefined): void {
    const ctx = this.#ctx;
    if (!state.failed) this.#routeForeignAudio(name, state, result);
    // From the PMT announcing audio to transcode: the first packets wait for its AAC too.
    if (state.reader instanceof TsReader && state.reader.foreignAudio && !state.failed) state.held ??= [];
    const group: HoldGroup | undefined = state.held && ack ? { ack, left: 0 } : undefined;
    for (const packet of result.packets) {
      if (state.held) {
        state.newest = Math.max(state.newest, packet.dts);
        state.held.push({ packet, group });
        if (group) group.left += 1;
      } else out.push(this.#marked(state, packet));
    }
    if (group?.left) group.ack.retain();
    this.#notes(name, result);
    if (result.error && !state.failed) {
      state.failed = true;
      ctx.log.error({ stream: keyForLog(name), format: ctx.settings.format }, `${ctx.label}: stream ${keyForLog(name)}: ${result.error.message}; the stream ends here`);
      if (item) ctx.fail(item, result.error, ack);
      if (state.transcoder) void state.transcoder.stop(2000);
      state.transcoder = undefined;
      state.ending.clear();
      this.#release(name, state);
      out.push({ stream: name, end: true });
    } else if (state.held) this.#release(name, state);
  }

  /** The reader's skip reasons logged, its drops counted. */
  #notes(name: string, result: ReaderResult): void {
    const ctx = this.#ctx;
    for (const [reason, count] of Object.entries(result.drops ?? {})) ctx.metrics.dropped(count, reason);
    for (const reason of result.skipped) ctx.log.warn({ stream: keyForLog(name) }, `${ctx.label}: stream ${keyForLog(name)}: ${reason}; skipped`);
  }

  /**
   * Non-AAC audio to its stream's transcoder, started at its first packets. Audio a new PMT ended finishes
   * alongside (the stream's packets held meanwhile); the next, if any, gets a transcoder of its own.
   */
  #routeForeignAudio(name: string, state: StreamState, result: ReaderResult): void {
    const ended = result.foreignAudioEnded;
    if (ended && state.transcoder) {
      const transcoder = state.transcoder;
      transcoder.write(ended);
      state.transcoder = undefined;
      const done: Promise<void> = transcoder.end(TRANSCODE_END_MS).then(() => {
        state.ending.delete(done);
        this.#release(name, state);
      });
      state.ending.add(done);
    }
    if (result.foreignAudio) {
      if (!state.transcoder) {
        state.transcoder = this.#startTranscoder(name, state, result.foreignAudio.codec);
      }
      state.transcoder.write(result.foreignAudio);
    }
  }

  #startTranscoder(name: string, state: StreamState, codec: string): TsAudioTranscoder {
    const reader = state.reader as TsReader;
    const transcoder = startTsAudioTranscoder(this.#ctx, {
      stream: name,
      codec,
      live: false,
      timeline: () => reader.timeline,
      notes: (result) => this.#notes(name, result),
      take: (packets) => {
        if (!packets.length || this.#stopped) return;
        if (!state.held) {
          this.#emitNow(packets.map((packet) => this.#marked(state, packet)), []);
          return;
        }
        for (const packet of packets) {
          state.audioMark = packet.dts;
          state.held.push({ packet, group: undefined });
        }
        this.#release(name, state);
      },
      failed: () => queueMicrotask(() => this.#release(name, state)),
    });
    this.#transcoders.add(transcoder);
    void transcoder.exited.then(() => this.#transcoders.delete(transcoder));
    return transcoder;
  }

  /**
   * Sends on the held packets whose time has come, in DTS order: up to the last AAC back, and any too far
   * behind the newest (`HOLD_TICKS`); all of them once no transcoder runs for the stream.
   */
  #release(name: string, state: StreamState): void {
    const held = state.held;
    if (!held) return;
    const transcoder = state.transcoder;
    const transcoding = !state.ended && (state.ending.size > 0 || (transcoder ? transcoder.running : !state.failed && state.reader instanceof TsReader && state.reader.foreignAudio !== undefined));
    const hold = transcoder?.pending ? PENDING_HOLD_TICKS : HOLD_TICKS;
    const mark = transcoding ? Math.max(state.audioMark, state.newest - hold) : Infinity;
    const ready: MediaPacket[] = [];
    const acks: Ack[] = [];
    let kept = 0;
    for (const entry of held) {
      if (entry.packet.dts > mark) {
        held[kept++] = entry;
        continue;
      }
      ready.push(entry.packet);
      if (entry.group && --entry.group.left === 0) acks.push(entry.group.ack);
    }
    held.length = kept;
    if (!transcoding) state.held = undefined;
    ready.sort((a, b) => a.dts - b.dts);
    if (ready.length) this.#marked(state, ready[0]!);
    this.#emitNow(ready, acks);
  }

  /** The packet, marked as a discontinuity if it is the first out since the stream restarted. */
  #marked(state: StreamState, packet: MediaPacket): MediaPacket {
    if (state.restart) {
      packet.discontinuity = true;
      state.restart = false;
    }
    return packet;
  }

  /** Packets out now (ahead of the batch being read, whose items so far go first). */
  #emitNow(items: MediaItem[], acks: Ack[]): void {
    // Stopped: the output is gone (AAC of a transcoder still finishing, or a stream's end, come too late).
    if (this.#stopped) return;
    if (!items.length) {
      for (const ack of acks) ack.release();
      return;
    }
    const job = this.#jobs[0];
    if (job?.out.length) {
      job.batch.ack.retain();
      this.#output.emit(job.out, job.batch.ack);
      job.out = [];
    }
    this.#output.emit(items, acks.length ? Ack.all(acks) : Ack.none());
  }

  /** A promise while a transcoder holds more than `MAX_BACKLOG_SECONDS` of audio (the live transcoder's drop limit): resolved once it is under, or stopped as stalled. */
  #behind(): Promise<void> | undefined {
    for (const [name, state] of this.#streams) {
      const transcoder = state.transcoder;
      if (transcoder && this.#lagging(transcoder)) return this.#catchUp(name, state, transcoder);
    }
    return undefined;
  }

  #lagging(transcoder: TsAudioTranscoder): boolean {
    return transcoder.running && (transcoder.backlogSeconds > MAX_BACKLOG_SECONDS || transcoder.backlogBytes > WAIT_BYTES);
  }

  async #catchUp(name: string, state: StreamState, transcoder: TsAudioTranscoder): Promise<void> {
    const ctx = this.#ctx;
    while (this.#lagging(transcoder) && !this.#stopped) {
      if (await this.#within(transcoder.progress(), STALL_MS)) continue;
      ctx.metrics.dropped(1, 'audio_transcode_stalled');
      ctx.log.error({ stream: keyForLog(name), codec: transcoder.codec }, `${ctx.label}: stream ${keyForLog(name)}: the ${transcoder.codec} to AAC transcoder made no progress for ${STALL_MS / 1000} s: stopped; the video goes on without audio`);
      await transcoder.stop(2000);
      this.#release(name, state);
    }
  }

  /** Whether `promise` settles within `ms`. */
  #within(promise: Promise<void>, ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const cancel = this.#ctx.schedule(ms, () => resolve(false));
      void promise.then(() => {
        cancel();
        resolve(true);
      });
    });
  }

  /** Ends a stream: at once, or (a promise) once its transcoders have sent their last AAC. */
  #end(name: string, out: MediaItem[], item: BytesItem | undefined, ack: Ack | undefined): Promise<void> | undefined {
    const state = this.#streams.get(name);
    if (!state) return undefined;
    this.#streams.delete(name);
    this.#ended.add(name);
    // A Set iterates in insertion order: the first is the oldest end.
    if (this.#ended.size > REMEMBERED_ENDS) this.#ended.delete(this.#ended.values().next().value!);
    if (state.failed) return undefined;
    this.#take(name, state, state.reader.end(), out, item, ack);
    if (state.failed) return undefined;
    if (!state.held) {
      out.push({ stream: name, end: true });
      return undefined;
    }
    const transcoder = state.transcoder;
    return (async () => {
      if (transcoder) await transcoder.end(TRANSCODE_END_MS);
      // Transcoders a new PMT ended earlier finish within the same bound.
      await Promise.all(state.ending);
      state.transcoder = undefined;
      state.ended = true;
      this.#release(name, state);
      this.#emitNow([{ stream: name, end: true }], []);
    })();
  }
}
