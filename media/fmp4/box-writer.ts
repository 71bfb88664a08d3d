/**
 * A small ISO BMFF box writer: big-endian fields into one growing buffer,
 * with boxes whose 32-bit size is patched when they close, so callers write
 * nested boxes in order without computing sizes first.
 *
 * @example
 * const w = new BoxWriter();
 * const moov = w.begin('moov');
 * w.fullBox('mvhd', 0, 0, () => w.u32(0));
 * w.end(moov);
 * const bytes = w.finish();
 */
export class BoxWriter {
  #buf: Buffer;
  #pos = 0;

  constructor(capacity = 512) {
    this.#buf = Buffer.allocUnsafe(capacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  #room(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }

  u8(value: number): this {
    this.#room(1);
    this.#buf[this.#pos++] = value & 0xff;
    return this;
  }

  u16(value: number): this {
    this.#room(2);
    this.#buf.writeUInt16BE(value & 0xffff, this.#pos);
    this.#pos += 2;
    return this;
  }

  u24(value: number): this {
    this.#room(3);
    this.#buf.writeUIntBE(value & 0xffffff, this.#pos, 3);
    this.#pos += 3;
    return this;
  }

  u32(value: number): this {
    this.#room(4);
    this.#buf.writeUInt32BE(value >>> 0, this.#pos);
    this.#pos += 4;
    return this;
  }

  i32(value: number): this {
    this.#room(4);
    this.#buf.writeInt32BE(value | 0, this.#pos);
    this.#pos += 4;
    return this;
  }

  /** A 64-bit unsigned field from a non-negative safe integer. */
  u64(value: number): this {
    this.#room(8);
    this.#buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000) >>> 0, this.#pos);
    this.#buf.writeUInt32BE(value % 0x1_0000_0000 >>> 0, this.#pos + 4);
    this.#pos += 8;
    return this;
  }

  /** `count` zero bytes (reserved fields). */
  zeros(count: number): this {
    this.#room(count);
    this.#buf.fill(0, this.#pos, this.#pos + count);
    this.#pos += count;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.#room(data.length);
    this.#buf.set(data, this.#pos);
    this.#pos += data.length;
    return this;
  }

  /** A four-character code (`moov`, `avc1`). */
  fourcc(code: string): this {
    this.#room(4);
    this.#buf.write(code, this.#pos, 4, 'latin1');
    this.#pos += 4;
    return this;
  }

  /** Opens a box; returns its start for `end`. */
  begin(type: string): number {
    const start = this.#pos;
    this.u32(0).fourcc(type);
    return start;
  }

  /** Opens a full box (version and flags after the header). */
  beginFull(type: string, version: number, flags: number): number {
    const start = this.begin(type);
    this.u8(version).u24(flags);
    return start;
  }

  /** Closes the box opened at `start`, writing its size. */
  end(start: number): this {
    this.#buf.writeUInt32BE(this.#pos - start, start);
    return this;
  }

  /** A box whose body `body` writes. */
  box(type: string, body: () => void): this {
    const start = this.begin(type);
    body();
    return this.end(start);
  }

  /** A full box whose body `body` writes. */
  fullBox(type: string, version: number, flags: number, body: () => void): this {
    const start = this.beginFull(type, version, flags);
    body();
    return this.end(start);
  }

  /** Overwrites a 32-bit field already written at `offset` (a `trun` data offset). */
  patchU32(offset: number, value: number): this {
    this.#buf.writeUInt32BE(value >>> 0, offset);
    return this;
  }

  /** The bytes written, as a buffer of their own. */
  finish(): Buffer {
    // A view would pin the whole growth buffer; a copy when it is much larger.
    return this.#pos === this.#buf.length ? this.#buf : this.#pos * 2 < this.#buf.length ? Buffer.from(this.#buf.subarray(0, this.#pos)) : this.#buf.subarray(0, this.#pos);
  }
}

/** Reads the boxes at the top level of `data` (or inside a box's body), for tests and checks. */
export function readBoxes(data: Buffer, start = 0, end = data.length): { type: string; start: number; size: number; body: Buffer }[] {
  const boxes: { type: string; start: number; size: number; body: Buffer }[] = [];
  let at = start;
  while (at + 8 <= end) {
    const size = data.readUInt32BE(at);
    const type = data.toString('latin1', at + 4, at + 8);
    if (size < 8 || at + size > end) throw new Error(`malformed box \`${type}\` at ${at}: size ${size}`);
    boxes.push({ type, start: at, size, body: data.subarray(at + 8, at + size) });
    at += size;
  }
  return boxes;
}
