/**
 * The compact entries the fast YAML reader (`yaml-fast.ts`) keeps for a
 * mapping whose values are all deferred: a pipeline's `nodes`.
 */
import type { FastDeferred, FastPair, FastPairs } from './yaml-fast.ts';

/**
 * The entries of a mapping whose values are all deferred (a pipeline's
 * `nodes`): three offsets per entry in one list of numbers, not two objects
 * and a map entry, so that a file of a hundred thousand nodes keeps a few
 * megabytes of them rather than tens. A pair is made when asked for; keys
 * asked in file order (as the checker walks the nodes) are found without
 * an index, any other key through an index built on the first such ask.
 */
export class DeferredPairs implements FastPairs {
  readonly #column: number;
  readonly #keys: string[] = [];
  /** For each entry: where its key starts, the reader's place at its value, and that line's start. */
  readonly #places: number[] = [];
  #index?: Map<string, number>;
  /** The entry after the last one asked for. */
  #next = 0;

  constructor(column: number) {
    this.#column = column;
  }

  add(key: string, keyStart: number, pos: number, lineStart: number): void {
    this.#keys.push(key);
    this.#places.push(keyStart, pos, lineStart);
  }

  get(key: string): FastPair | undefined {
    const keys = this.#keys;
    const at = keys[this.#next] === key ? this.#next : (this.#index ??= new Map(keys.map((k, i) => [k, i]))).get(key);
    if (at === undefined) return undefined;
    this.#next = at + 1;
    return this.#pair(at);
  }

  *values(): Iterable<FastPair> {
    for (let i = 0; i < this.#keys.length; i++) yield this.#pair(i);
  }

  #pair(at: number): FastPair {
    const places = this.#places;
    const value: FastDeferred = { kind: 'deferred', pos: places[3 * at + 1], lineStart: places[3 * at + 2], column: this.#column, inMapping: true };
    return { keyStart: places[3 * at], value };
  }
}
