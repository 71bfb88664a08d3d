import { MediaFormatError } from './format-error.ts';

/**
 * Reads a bit string most significant bit first, with the exp-Golomb codes
 * of H.264 parameter sets. Reading past the end raises a MediaFormatError.
 */
export class BitReader {
  readonly #data: Buffer;
  #bit = 0;

  constructor(data: Buffer) {
    this.#data = data;
  }

  /** Bits left to read. */
  get remaining(): number {
    return this.#data.length * 8 - this.#bit;
  }

  /** One bit. */
  bit(): number {
    if (this.#bit >= this.#data.length * 8) throw new MediaFormatError('truncated bit string');
    const value = (this.#data[this.#bit >> 3]! >> (7 - (this.#bit & 7))) & 1;
    this.#bit++;
    return value;
  }

  /** `count` bits (up to 32) as an unsigned number. */
  bits(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) value = value * 2 + this.bit();
    return value;
  }

  /** An unsigned exp-Golomb code (`ue(v)`). */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      zeros++;
      if (zeros > 31) throw new MediaFormatError('exp-Golomb code longer than 32 bits');
    }
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  /** A signed exp-Golomb code (`se(v)`). */
  se(): number {
    const code = this.ue();
    return code % 2 === 1 ? (code + 1) / 2 : -(code / 2);
  }
}
