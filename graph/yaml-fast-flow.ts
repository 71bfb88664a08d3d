/**
 * Flow collections for the fast YAML reader (`yaml-fast.ts`): `[a, b]` and
 * `{ k: v }` of scalars and other flow collections, closed on the line they
 * open on. Anything else (a line break inside, a trailing comma, a key
 * without a value) throws `OUTSIDE_SUBSET`.
 */
import type { FastNode, FastPair } from './yaml-fast.ts';
import {
  UNKEPT,
  checkPlainFirst,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  DOUBLE_QUOTE,
  HASH,
  NEWLINE,
  OPEN_BRACE,
  OPEN_BRACKET,
  OUTSIDE_SUBSET,
  readQuoted,
  resolvePlain,
  scalarNode,
  SINGLE_QUOTE,
  SPACE,
  type SharedStrings,
} from './yaml-fast-scalars.ts';

/**
 * The flow collection whose `[` or `{` is at `start`: its position tree
 * (unless `keep` is false: then `node` is a placeholder), its data, and the
 * offset past its closing bracket. String values go through `strings`.
 */
export function readFlowCollection(text: string, start: number, keep: boolean, strings: SharedStrings): { node: FastNode; data: unknown; end: number } {
  const reader = new FlowReader(text, start, keep, strings);
  const node = reader.collection();
  return { node, data: reader.data, end: reader.pos };
}


/** A cursor inside one line's flow collection; `data` holds the value of the node just read. */
class FlowReader {
  pos: number;
  data: unknown;
  private readonly text: string;
  /** Whether the position tree is built (it is not inside a deferred value). */
  private readonly keep: boolean;
  private readonly strings: SharedStrings;

  constructor(text: string, start: number, keep: boolean, strings: SharedStrings) {
    this.text = text;
    this.pos = start;
    this.keep = keep;
    this.strings = strings;
  }

  private code(at: number): number {
    return this.text.charCodeAt(at);
  }

  /** A flow sequence or mapping at `pos`, closed on the same line; leaves `pos` past its closing bracket. */
  collection(): FastNode {
    const start = this.pos;
    const isSeq = this.code(start) === OPEN_BRACKET;
    const close = isSeq ? CLOSE_BRACKET : CLOSE_BRACE;
    const array: unknown[] = [];
    const object: Record<string, unknown> = {};
    // The position tree's items or pairs, when it is built.
    const items: FastNode[] | undefined = this.keep && isSeq ? [] : undefined;
    const pairs = this.keep && !isSeq ? new Map<string, FastPair>() : undefined;
    this.pos++;
    this.spaces();
    if (this.code(this.pos) === close) {
      this.pos++;
    } else {
      for (;;) {
        if (isSeq) {
          const value = this.value();
          items?.push(value);
          array.push(this.data);
        } else {
          const keyStart = this.pos;
          const key = this.key();
          if (Object.hasOwn(object, key) || key === '__proto__' || key === '<<') throw OUTSIDE_SUBSET;
          const value = this.value();
          pairs?.set(key, { keyStart, value });
          object[key] = this.data;
        }
        this.spaces();
        const c = this.code(this.pos);
        this.pos++;
        if (c === close) break;
        if (c !== COMMA) throw OUTSIDE_SUBSET;
        this.spaces();
        // A trailing comma is allowed by YAML but rare: the library's.
        if (this.code(this.pos) === close) throw OUTSIDE_SUBSET;
      }
    }
    this.data = isSeq ? array : object;
    if (items) return { kind: 'seq', start, items };
    return pairs ? { kind: 'map', start, pairs } : UNKEPT;
  }

  /** Spaces inside a flow collection; a line break or comment there is outside the subset. */
  private spaces(): void {
    while (this.code(this.pos) === SPACE) this.pos++;
    const c = this.code(this.pos);
    if (this.pos >= this.text.length || c === NEWLINE || c === HASH) throw OUTSIDE_SUBSET;
  }

  private key(): string {
    const start = this.pos;
    let key: string;
    if (this.code(start) === DOUBLE_QUOTE || this.code(start) === SINGLE_QUOTE) {
      const quoted = readQuoted(this.text, start);
      key = quoted.value;
      this.pos = quoted.end;
    } else {
      const end = this.plainEnd(start);
      const resolved = resolvePlain(this.strings.slice(this.text, start, end));
      if (typeof resolved !== 'string') throw OUTSIDE_SUBSET;
      key = resolved;
    }
    while (this.code(this.pos) === SPACE) this.pos++;
    if (this.code(this.pos) !== COLON || this.code(this.pos + 1) !== SPACE) throw OUTSIDE_SUBSET;
    this.pos += 2;
    this.spaces();
    return key;
  }

  private value(): FastNode {
    const start = this.pos;
    const c = this.code(start);
    if (c === OPEN_BRACKET || c === OPEN_BRACE) return this.collection();
    if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const quoted = readQuoted(this.text, start);
      const value = this.strings.share(quoted.value);
      const end = quoted.end;
      this.pos = end;
      this.data = value;
      return this.keep ? scalarNode(start, end, c === DOUBLE_QUOTE ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', value) : UNKEPT;
    }
    const end = this.plainEnd(start);
    // `[a: b]` (a pair in a sequence) and `{a: b: c}`: the library's.
    if (this.code(this.pos) === COLON) throw OUTSIDE_SUBSET;
    const value = resolvePlain(this.strings.slice(this.text, start, end));
    this.data = value;
    return this.keep ? scalarNode(start, end, 'PLAIN', value) : UNKEPT;
  }

  /** Reads a plain scalar inside a flow collection; leaves `pos` where it stops and returns where its text ends. */
  private plainEnd(start: number): number {
    checkPlainFirst(this.text, start);
    const text = this.text;
    let p = start;
    for (;;) {
      const c = text.charCodeAt(p);
      if (p >= text.length || c === NEWLINE || c === COMMA || c === OPEN_BRACKET || c === CLOSE_BRACKET || c === OPEN_BRACE || c === CLOSE_BRACE) break;
      if (c === HASH && text.charCodeAt(p - 1) === SPACE) break;
      if (c === COLON) {
        const after = text.charCodeAt(p + 1);
        if (p + 1 >= text.length || after === SPACE || after === NEWLINE || after === COMMA || after === CLOSE_BRACKET || after === CLOSE_BRACE) break;
      }
      p++;
    }
    this.pos = p;
    let end = p;
    while (text.charCodeAt(end - 1) === SPACE) end--;
    if (end === start) throw OUTSIDE_SUBSET;
    return end;
  }
}
