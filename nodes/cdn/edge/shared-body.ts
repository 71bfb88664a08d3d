/**
 * A body that grows while the origin sends it and that any number of
 * readers stream from at once (read-while-write): each reader is woken when
 * bytes arrive, never polls, and writes them to its client as fast as that
 * client takes them. A body being cached keeps every chunk; a body that
 * will not be cached (too large) drops the chunks every reader has written
 * and pauses the origin while the slowest reader lags, so a 5 GB object
 * streams through in bounded memory.
 */
import type { ServerResponse } from 'node:http';

/** How a body ended, when it has. */
export type BodyState = 'open' | 'complete' | 'failed';

/** The largest body joined into one buffer at its first slice: copying more would hold up the event loop (about 1 ms a 4 MiB). */
const joinedMax = 4 * 1024 * 1024;
/** Bytes a pass-through body may hold ahead of its slowest reader before the origin is paused. */
const passThroughHighWater = 1024 * 1024;

/** A growing body shared by the readers of one origin response. */
export class SharedBody {
  #chunks: Buffer[] = [];
  /** Absolute offset of `#chunks[0]`: bytes already dropped (pass-through only). */
  #base = 0;
  /** Chunks dropped from the front (pass-through only). */
  #dropped = 0;
  #length = 0;
  #state: BodyState = 'open';
  #retain = true;
  /** When known (`Content-Length`), the last byte is held back until the body is complete and verified. */
  readonly declared: number | undefined;
  readonly #readers = new Set<BodyReader>();
  #onPressure: ((paused: boolean) => void) | undefined;
  #paused = false;

  constructor(declared?: number) {
    this.declared = declared;
  }

  /** A complete body made of `chunks`. */
  static of(chunks: Buffer[]): SharedBody {
    const body = new SharedBody();
    for (const chunk of chunks) body.push(chunk);
    body.end();
    return body;
  }

  get state(): BodyState {
    return this.#state;
  }

  /** Bytes received so far. */
  get length(): number {
    return this.#length;
  }

  /** Whether a new reader can still start at byte 0 (nothing dropped yet). */
  get joinable(): boolean {
    return this.#base === 0 && this.#state !== 'failed';
  }

  /** The chunks of a complete, retained body. */
  get chunks(): readonly Buffer[] {
    return this.#chunks;
  }

  /** Stops retaining: chunks every reader has written are dropped from now on. */
  passThrough(onPressure: (paused: boolean) => void): void {
    this.#retain = false;
    this.#onPressure = onPressure;
    this.#trim();
  }

  push(chunk: Buffer): void {
    if (this.#state !== 'open' || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    this.#wake();
    if (!this.#retain) this.#trim();
  }

  /** The origin finished and the length checked out. */
  end(): void {
    if (this.#state !== 'open') return;
    this.#state = 'complete';
    this.#wake();
  }

  /** The origin failed mid-body: every reader's connection is broken, not ended. */
  fail(): void {
    if (this.#state !== 'open') return;
    this.#state = 'failed';
    this.#chunks = [];
    this.#wake();
  }

  /** Readers still streaming. */
  get readers(): number {
    return this.#readers.size;
  }

  /**
   * Streams bytes `start` to `end` (inclusive; default the whole body) to
   * `response` as they arrive, honouring its backpressure, then ends it.
   * Resolves with how it ended, `complete`, `failed` (the response was
   * destroyed: a broken connection) or `aborted` (the client went away),
   * and the bytes written.
   */
  async pipeTo(response: ServerResponse, start = 0, end?: number): Promise<{ outcome: 'complete' | 'failed' | 'aborted'; bytes: number }> {
    const reader = new BodyReader(this, response, start, end);
    this.#readers.add(reader);
    try {
      const outcome = await reader.run();
      return { outcome, bytes: reader.position - start };
    } finally {
      this.#readers.delete(reader);
      if (!this.#retain) this.#trim();
    }
  }

  /**
   * Bytes `start` to `stop` (exclusive) of a complete, retained body, as
   * views of its chunks. The first slice of a body up to 4 MiB that
   * arrived in several chunks, when no reader is streaming it (readers
   * hold positions in the chunks), joins them into one buffer: every later
   * answer is then one contiguous write.
   */
  slice(start: number, stop: number): Buffer[] {
    this.#join();
    return this.read({ position: start, chunk: -1, chunkStart: 0 }, stop);
  }

  /**
   * A complete, retained body as the one buffer it is kept in (joined as
   * {@link slice} joins it), for an answer that sends it all: no view of it
   * is made. Undefined when it is empty, still open, or too large to join.
   */
  whole(): Buffer | undefined {
    if (this.#state !== 'complete' || !this.#retain) return undefined;
    this.#join();
    return this.#chunks.length === 1 ? this.#chunks[0] : undefined;
  }

  #join(): void {
    if (this.#chunks.length > 1 && this.#length <= joinedMax && this.#state === 'complete' && this.#retain && this.#readers.size === 0) {
      this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    }
  }

  /** How far readers may read: while open, the last declared byte waits for verification. */
  available(): number {
    if (this.#state !== 'open' || this.declared === undefined) return this.#length;
    return Math.min(this.#length, this.declared - 1);
  }

  /**
   * The bytes after `cursor` up to absolute offset `stop` (as far as
   * available), advancing the cursor: a reader resumes where it stopped
   * instead of scanning the body from its start on every wake.
   */
  read(cursor: ReadCursor, stop: number): Buffer[] {
    const out: Buffer[] = [];
    const limit = Math.min(this.available(), stop);
    if (cursor.position >= limit) return out;
    if (cursor.chunk < this.#dropped) {
      // First read (or a reader left behind by a trim, which cannot happen: trims keep the slowest): locate by scanning.
      cursor.chunk = this.#dropped;
      cursor.chunkStart = this.#base;
    }
    while (cursor.position < limit) {
      const chunk = this.#chunks[cursor.chunk - this.#dropped];
      if (chunk === undefined) break;
      const chunkEnd = cursor.chunkStart + chunk.length;
      if (cursor.position < chunkEnd) {
        const piece = chunk.subarray(cursor.position - cursor.chunkStart, Math.min(chunk.length, limit - cursor.chunkStart));
        out.push(piece);
        cursor.position += piece.length;
      }
      if (cursor.position >= chunkEnd) {
        cursor.chunk += 1;
        cursor.chunkStart = chunkEnd;
      }
    }
    return out;
  }

  #wake(): void {
    for (const reader of this.#readers) reader.wake();
  }

  /** Drops what every reader has written and pauses or resumes the origin by the slowest reader. */
  #trim(): void {
    // With no reader yet (the first is about to start) nothing is dropped: the origin pauses instead.
    let slowest = this.#readers.size === 0 ? this.#base : this.#length;
    for (const reader of this.#readers) slowest = Math.min(slowest, reader.position);
    while (this.#chunks.length > 0 && this.#base + this.#chunks[0].length <= slowest) {
      this.#base += this.#chunks[0].length;
      this.#chunks.shift();
      this.#dropped += 1;
    }
    const ahead = this.#length - slowest;
    const pause = ahead > passThroughHighWater;
    if (pause !== this.#paused) {
      this.#paused = pause;
      this.#onPressure?.(pause);
    }
  }

  /** Called by a reader that wrote more: a pass-through body may drop chunks now. */
  progressed(): void {
    if (!this.#retain) this.#trim();
  }
}

/** Where a reader is in a body: its byte offset and the chunk holding it (absolute index, and where that chunk starts). */
export interface ReadCursor {
  position: number;
  chunk: number;
  chunkStart: number;
}

/** One client streaming from a shared body. */
class BodyReader {
  readonly cursor: ReadCursor;
  readonly #body: SharedBody;
  readonly #response: ServerResponse;
  readonly #end: number | undefined;
  #wake: (() => void) | undefined;

  constructor(body: SharedBody, response: ServerResponse, start: number, end: number | undefined) {
    this.#body = body;
    this.#response = response;
    this.cursor = { position: start, chunk: -1, chunkStart: 0 };
    this.#end = end;
  }

  get position(): number {
    return this.cursor.position;
  }

  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async run(): Promise<'complete' | 'failed' | 'aborted'> {
    const response = this.#response;
    const body = this.#body;
    const closed = new Promise<void>((resolve) => response.once('close', resolve));
    for (;;) {
      if (response.destroyed || response.writableEnded) return 'aborted';
      if (body.state === 'failed') {
        response.destroy();
        return 'failed';
      }
      const stop = this.#end === undefined ? Number.POSITIVE_INFINITY : this.#end + 1;
      const chunks = body.read(this.cursor, stop);
      if (chunks.length > 0) {
        let full = false;
        // Several chunks at once (a reader that fell behind) go out in one writev, not one syscall each.
        if (chunks.length > 1) response.cork();
        for (const chunk of chunks) full = !response.write(chunk) || full;
        if (chunks.length > 1) response.uncork();
        body.progressed();
        if (full) await drained(response, closed);
        continue;
      }
      const done = this.position >= stop || (body.state === 'complete' && this.position >= body.length);
      if (done) {
        await Promise.race([new Promise<void>((resolve) => response.end(resolve)), closed]);
        return 'complete';
      }
      await Promise.race([new Promise<void>((resolve) => (this.#wake = resolve)), closed]);
    }
  }
}

/** Resolves when `response` can take more, or has closed. */
function drained(response: ServerResponse, closed: Promise<void>): Promise<void> {
  let onDrain: (() => void) | undefined;
  const drain = new Promise<void>((resolve) => response.once('drain', (onDrain = resolve)));
  return Promise.race([drain, closed]).finally(() => {
    if (onDrain) response.off('drain', onDrain);
  });
}
