import { bytesBuffer, defineOperator, operate, z, type Ack, type Batch, type BytesItem, type NodeContext } from '../../runtime/api.ts';
import { FlvReader } from '../../media/flv.ts';
import { TsReader } from '../../media/mpegts.ts';
import type { MediaFormatError } from '../../media/format-error.ts';
import { keyForLog } from '../../media/stream-key.ts';
import type { MediaItem, MediaPacket, TrackInfo } from '../../media/packet.ts';

const settings = z.object({
  format: z.enum(['flv', 'mpegts']).meta({ description: 'The container of the bytes: `flv` (as RTMP and `.flv` files carry it) or `mpegts` (as SRT, UDP and `.ts` files carry it).', examples: ['flv', 'mpegts'] }),
  stream: z.string().min(1).optional().meta({ description: 'The name of the stream the packets belong to; a Bytes item\'s `meta.stream` overrides it. Absent: the node\'s name.', examples: ['camera-1'] }),
  max_streams: z.number().int().min(1).default(100).meta({ description: 'Streams read at once; bytes of more are dropped (counted as `max_streams`, the item dead-lettered).', examples: [10] }),
});

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
}

/**
 * `demux`: container bytes (FLV, MPEG-TS) to media packets, one reader per
 * stream, so bytes of one stream may arrive in chunks of any size.
 */
export default defineOperator({
  name: 'demux',
  summary: 'Turn FLV or MPEG-TS bytes into media packets.',
  doc: 'Reads the bytes arriving on `in` (from `file.read` with `format: bytes`, a socket, an ingest) as the container `format` and emits their H.264 and AAC packets: video as length-prefixed access units with the decoder configuration (avcC) in the track, audio as raw AAC frames with its AudioSpecificConfig; timestamps in milliseconds from FLV (timescale 1000), at 90 kHz from MPEG-TS (timescale 90000), `rendition: source`. Chunks may split tags and packets anywhere. The stream is named by `stream`, or per item by `meta.stream`; an item with `meta.end: true` ends that stream (a `MediaEnd` goes out, and bytes that come later start it again with a discontinuity), and every stream ends when the input does. An MPEG-TS PES that lost a TS packet (a gap in its continuity counter, or the transport-error bit), whose H.264 or ADTS does not parse, or left unfinished at the stream\'s end is dropped and counted (`ts_loss`, `ts_corrupt`, `ts_truncated`), and reading goes on. Bytes that are not the container end their stream with a log line and a dead letter holding the chunk at fault; the rest of the input and other streams go on. Codecs other than H.264 and AAC are skipped with a warning. Memory is bounded: at most `max_streams` streams are read at once (bytes of others are dead-lettered and counted as dropped, `max_streams`), an MPEG-TS PES that grows past 8 MB without a next start is dropped (`oversized_pes`), and the last 1024 ended streams are remembered for their discontinuity.',
  inputs: { in: { type: 'Bytes', doc: 'Container bytes, in chunks of any size.' } },
  outputs: { out: { type: 'Media<*/*>', doc: 'Packets (`video/h264`, `audio/aac`) and a `MediaEnd` when a stream ends.' } },
  settings,
  example: { format: 'flv' },
  create(ctx) {
    return function demuxNode(input) {
      return operate(input, (out) => {
        const demuxer = new Demuxer(ctx, (items, ack) => (items.length ? out.next({ items, ack }) : ack.release()));
        return {
          next: (batch) => demuxer.next(batch),
          complete() {
            demuxer.complete();
            out.complete();
          },
        };
      });
    };
  },
});

interface StreamState {
  reader: ContainerReader;
  failed: boolean;
  /** Its first packet follows an earlier end of this stream. */
  restart: boolean;
}

/** The streams of one `demux` node and their readers. */
class Demuxer {
  readonly #ctx: NodeContext<DemuxSettings>;
  readonly #emit: (items: MediaItem[], ack: Ack) => void;
  readonly #streams = new Map<string, StreamState>();
  /** Streams that ended: bytes after that restart them with a discontinuity. */
  readonly #ended = new Set<string>();

  constructor(ctx: NodeContext<DemuxSettings>, emit: (items: MediaItem[], ack: Ack) => void) {
    this.#ctx = ctx;
    this.#emit = emit;
  }

  next(batch: Batch): void {
    const out: MediaItem[] = [];
    for (const item of batch.items as BytesItem[]) {
      const meta = item.meta ?? {};
      const name = typeof meta.stream === 'string' && meta.stream ? meta.stream : (this.#ctx.settings.stream ?? this.#ctx.node);
      const data = bytesBuffer(item);
      const state = data.length || meta.end !== true ? this.#state(name, item, batch.ack) : this.#streams.get(name);
      if (data.length && state && !state.failed) {
        this.#ctx.metrics.bytes(data.length, 'read');
        this.#take(name, state, state.reader.push(data), out, item, batch.ack);
      }
      if (meta.end === true) this.#end(name, out, item, batch.ack);
    }
    this.#emit(out, batch.ack);
  }

  complete(): void {
    const out: MediaItem[] = [];
    for (const name of [...this.#streams.keys()]) this.#end(name, out, undefined, undefined);
    if (out.length) this.#emit(out, this.#ctx.newAck());
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
      const reader = this.#ctx.settings.format === 'flv' ? new FlvReader({ stream: name }) : new TsReader({ stream: name });
      state = { reader, failed: false, restart: this.#ended.delete(name) };
      this.#streams.set(name, state);
    }
    return state;
  }

  #take(name: string, state: StreamState, result: ReaderResult, out: MediaItem[], item: BytesItem | undefined, ack: Ack | undefined): void {
    const ctx = this.#ctx;
    for (const packet of result.packets) {
      if (state.restart) {
        packet.discontinuity = true;
        state.restart = false;
      }
      out.push(packet);
    }
    for (const [reason, count] of Object.entries(result.drops ?? {})) ctx.metrics.dropped(count, reason);
    for (const reason of result.skipped) ctx.log.warn({ stream: keyForLog(name) }, `${ctx.label}: stream ${keyForLog(name)}: ${reason}; skipped`);
    if (result.error && !state.failed) {
      state.failed = true;
      ctx.log.error({ stream: keyForLog(name), format: ctx.settings.format }, `${ctx.label}: stream ${keyForLog(name)}: ${result.error.message}; the stream ends here`);
      if (item) ctx.fail(item, result.error, ack);
      out.push({ stream: name, end: true });
    }
  }

  #end(name: string, out: MediaItem[], item: BytesItem | undefined, ack: Ack | undefined): void {
    const state = this.#streams.get(name);
    if (!state) return;
    if (!state.failed) {
      this.#take(name, state, state.reader.end(), out, item, ack);
      if (!state.failed) out.push({ stream: name, end: true });
    }
    this.#streams.delete(name);
    this.#ended.add(name);
    // A Set iterates in insertion order: the first is the oldest end.
    if (this.#ended.size > REMEMBERED_ENDS) this.#ended.delete(this.#ended.values().next().value!);
  }
}
