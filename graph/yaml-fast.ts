/**
 * A fast reader for the YAML that pipeline files are written in: block
 * mappings and sequences, plain and one-line quoted scalars, one-line flow
 * sequences and mappings, comments, and `|`/`>` block scalars. It yields the
 * same data as the `yaml` library's document (core schema) and, for every
 * node, the offsets the checker locates diagnostics with, in a fraction of
 * the library's time and memory (which keeps a full syntax tree).
 *
 * It never guesses: on anything outside that subset (anchors, aliases, tags,
 * several documents, complex or repeated keys, multi-line plain or quoted
 * scalars, tabs, unusual indentation, any syntax error) it gives up, and
 * `parseSource` uses the library, so behaviour and diagnostics stay the
 * library's. `test/graph/yaml-fast.test.ts` holds the two to the same results.
 */
import { readFlowCollection } from './yaml-fast-flow.ts';
import { DeferredPairs } from './yaml-fast-pairs.ts';
import {
  UNKEPT,
  blockValue,
  checkPlainFirst,
  COLON,
  DASH,
  DOT,
  DOUBLE_QUOTE,
  GREATER,
  HASH,
  NEWLINE,
  OPEN_BRACE,
  OPEN_BRACKET,
  OUTSIDE_SUBSET,
  PERCENT,
  PIPE,
  readQuoted,
  resolvePlain,
  scalarNode,
  SharedStrings,
  SINGLE_QUOTE,
  SPACE,
} from './yaml-fast-scalars.ts';

/** How a scalar is written, as the `yaml` library's `Scalar.type` names it. */
export type ScalarStyle = 'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE' | 'BLOCK_LITERAL' | 'BLOCK_FOLDED';

/** A scalar's span in the text (`end`: where its value ends) and its value. */
export interface FastScalar {
  readonly kind: 'scalar';
  readonly start: number;
  readonly end: number;
  readonly style: ScalarStyle;
  readonly value: unknown;
}
/** A mapping entry: where its key starts, and its value. */
export interface FastPair {
  readonly keyStart: number;
  readonly value: FastNode;
}
/** A mapping's entries by key: a `Map`, or `DeferredPairs` (yaml-fast-pairs.ts) when every value is deferred. */
export interface FastPairs {
  get(key: string): FastPair | undefined;
  values(): Iterable<FastPair>;
}
/** A mapping: where it starts (its first key, or its `{`), and its entries by key. */
export interface FastMap {
  readonly kind: 'map';
  readonly start: number;
  readonly pairs: FastPairs;
}
/** A sequence: where it starts (its first `-`, or its `[`), and its items. */
export interface FastSeq {
  readonly kind: 'seq';
  readonly start: number;
  readonly items: readonly FastNode[];
}
/**
 * A value whose positions were not kept (a pipeline's node, two levels
 * down): where to read it again, with {@link readDeferred}, when something
 * inside it must be located. A file of a hundred thousand nodes then keeps
 * one of these per node instead of a tree of its every key and scalar.
 */
export interface FastDeferred {
  readonly kind: 'deferred';
  /** The reader's place at the value (after its `:` or `-`), and the column of the collection holding it. */
  readonly pos: number;
  readonly lineStart: number;
  readonly column: number;
  readonly inMapping: boolean;
}
/** A node of the position tree, mirroring the data. */
export type FastNode = FastScalar | FastMap | FastSeq | FastDeferred;
/** A node of the position tree as read in full. */
export type FastReadNode = Exclude<FastNode, FastDeferred>;

/** A document read by the fast reader: its data (as the library's `toJS`) and its position tree. */
export interface FastDocument {
  data: unknown;
  root: FastNode;
}

/** Characters that put a text outside the subset wherever they are: tabs, carriage returns, other controls, a byte-order mark. */
const UNSUPPORTED_CHARS = /[\x00-\x09\x0b-\x1f\x7f\ufeff]/;

/** Reads `text`, or returns undefined when it is not (or not only) in the subset. */
export function parseFastYaml(text: string): FastDocument | undefined {
  if (UNSUPPORTED_CHARS.test(text)) return undefined;
  try {
    return new Reader(text).document();
  } catch (error) {
    // Nesting deep enough to exhaust the stack is the library's to handle, as is everything outside the subset.
    if (error === OUTSIDE_SUBSET || error instanceof RangeError) return undefined;
    throw error;
  }
}

/**
 * Reads a deferred value again, this time keeping its positions (the text
 * was read once already: it is in the subset).
 */
export function readDeferred(text: string, node: FastNode): FastReadNode {
  if (node.kind !== 'deferred') return node;
  const reader = new Reader(text);
  reader.pos = node.pos;
  reader.lineStart = node.lineStart;
  return reader.valueAt(node.column, node.inMapping);
}

/** The longest implicit key YAML allows. */
const MAX_KEY = 1024;

/**
 * The nesting at which block values are deferred: the root map's values
 * (`nodes`) are at 0 and kept; theirs (each node) are at 1.
 */
const DEFER_AT = 1;


/**
 * A cursor over the text. Block parsers start at a content character and
 * return having moved to the next content line (`pos` at its first
 * character, `indent` its column, -1 at the end); `data` holds the value of
 * the node just read, so no pair is allocated per node.
 */
class Reader {
  pos = 0;
  lineStart = 0;
  indent = -1;
  data: unknown;
  /** Whether positions are kept for what is read now (not inside a deferred value), and how deep the reading is. */
  private keep = true;
  private depth = 0;
  private readonly text: string;
  /** String values, equal ones shared: the data of a large file keeps one of each. */
  private readonly strings = new SharedStrings();

  constructor(text: string) {
    this.text = text;
  }

  document(): FastDocument {
    this.advance();
    if (this.indent !== 0) throw OUTSIDE_SUBSET;
    const root = this.blockCollection();
    if (!this.atEnd()) throw OUTSIDE_SUBSET;
    return { data: this.data, root };
  }

  private atEnd(): boolean {
    return this.indent === -1;
  }

  private code(at: number): number {
    return this.text.charCodeAt(at);
  }

  /** A space, a line break or the end: what must follow `:` and `-` indicators in block context. */
  private isSeparator(at: number): boolean {
    return at >= this.text.length || this.code(at) === SPACE || this.code(at) === NEWLINE;
  }

  /** From a line start, past blank and comment lines, to the next content character. */
  private advance(): void {
    const text = this.text;
    let p = this.pos;
    for (;;) {
      const start = p;
      while (this.code(p) === SPACE) p++;
      if (p >= text.length) {
        this.pos = this.lineStart = text.length;
        this.indent = -1;
        return;
      }
      const c = this.code(p);
      if (c === NEWLINE || c === HASH) {
        const end = text.indexOf('\n', p);
        p = end < 0 ? text.length : end + 1;
        continue;
      }
      this.pos = p;
      this.lineStart = start;
      this.indent = p - start;
      // Directives and document markers (`%`, `---`, `...`): several documents or settings the subset leaves out.
      if (this.indent === 0 && (c === PERCENT || ((c === DASH || c === DOT) && this.code(p + 1) === c && this.code(p + 2) === c && this.isSeparator(p + 3)))) {
        throw OUTSIDE_SUBSET;
      }
      return;
    }
  }

  /** Past the rest of a line that must hold only spaces and a comment, to the next line's start. */
  private endLine(): void {
    let p = this.pos;
    while (this.code(p) === SPACE) p++;
    if (p < this.text.length && this.code(p) !== NEWLINE) {
      // A comment needs a space before it (`"a"#b` is not one).
      if (this.code(p) !== HASH || this.code(p - 1) !== SPACE) throw OUTSIDE_SUBSET;
    }
    const end = this.text.indexOf('\n', p);
    this.pos = end < 0 ? this.text.length : end + 1;
  }

  private isSequenceEntry(at: number): boolean {
    return this.code(at) === DASH && this.isSeparator(at + 1);
  }

  private blockCollection(): FastNode {
    return this.isSequenceEntry(this.pos) ? this.sequence(this.indent) : this.mapping(this.pos - this.lineStart);
  }

  /** A block mapping whose keys sit at column `column`, the first one at `pos`. */
  private mapping(column: number): FastMap {
    const start = this.pos;
    // From {@link DEFER_AT} down every value is deferred, and the entries are kept compactly.
    const deferred = this.keep && this.depth >= DEFER_AT ? new DeferredPairs(column) : undefined;
    const pairs = this.keep && !deferred ? new Map<string, FastPair>() : undefined;
    const object: Record<string, unknown> = {};
    for (;;) {
      const keyStart = this.pos;
      const key = this.blockKey();
      // A repeated key is a diagnostic, `__proto__` and `<<` have meanings of their own: the library's to handle.
      if (Object.hasOwn(object, key) || key === '__proto__' || key === '<<') throw OUTSIDE_SUBSET;
      if (deferred) {
        deferred.add(key, keyStart, this.pos, this.lineStart);
        this.skipValue(column, true);
      } else {
        const value = this.child(column, true);
        pairs?.set(key, { keyStart, value });
      }
      object[key] = this.data;
      if (this.indent < column) break;
      if (this.indent > column) throw OUTSIDE_SUBSET;
    }
    this.data = object;
    const kept = deferred ?? pairs;
    return kept ? { kind: 'map', start, pairs: kept } : UNKEPT;
  }

  /** A block collection's entry value: read with its positions, or (from {@link DEFER_AT} down) deferred. */
  private child(column: number, inMapping: boolean): FastNode {
    if (!this.keep) return this.valueAfterIndicator(column, inMapping);
    if (this.depth >= DEFER_AT) {
      const deferred: FastDeferred = { kind: 'deferred', pos: this.pos, lineStart: this.lineStart, column, inMapping };
      this.skipValue(column, inMapping);
      return deferred;
    }
    this.depth++;
    const node = this.valueAfterIndicator(column, inMapping);
    this.depth--;
    return node;
  }

  /** Reads the value at `pos` for its data only, keeping no positions. */
  private skipValue(column: number, inMapping: boolean): void {
    this.keep = false;
    try {
      this.valueAfterIndicator(column, inMapping);
    } finally {
      this.keep = true;
    }
  }

  /** Reads the value at `pos` in full, positions kept (see {@link readDeferred}). */
  valueAt(column: number, inMapping: boolean): FastReadNode {
    this.depth = Number.NEGATIVE_INFINITY;
    return this.valueAfterIndicator(column, inMapping) as FastReadNode;
  }

  /** A block sequence whose `-` sit at column `column`, the first one at `pos`. */
  private sequence(column: number): FastNode {
    const start = this.pos;
    const items: FastNode[] | undefined = this.keep ? [] : undefined;
    const array: unknown[] = [];
    for (;;) {
      this.pos++;
      const item = this.child(column, false);
      items?.push(item);
      array.push(this.data);
      if (this.indent !== column || !this.isSequenceEntry(this.pos)) {
        if (this.indent > column) throw OUTSIDE_SUBSET;
        break;
      }
    }
    this.data = array;
    return items ? { kind: 'seq', start, items } : UNKEPT;
  }

  /** A block mapping's key at `pos`, plain or quoted, on one line; leaves `pos` past its `:`. */
  private blockKey(): string {
    const start = this.pos;
    let key: string;
    const c = this.code(start);
    if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const quoted = readQuoted(this.text, start);
      key = quoted.value;
      this.pos = quoted.end;
      while (this.code(this.pos) === SPACE) this.pos++;
    } else {
      checkPlainFirst(this.text, start);
      const stop = this.plainStop(start);
      let end = stop;
      while (this.code(end - 1) === SPACE) end--;
      const resolved = resolvePlain(this.strings.slice(this.text, start, end));
      // Keys that read as numbers, booleans or null become strings in the data by rules of their own.
      if (typeof resolved !== 'string') throw OUTSIDE_SUBSET;
      key = resolved;
      this.pos = stop;
    }
    if (this.code(this.pos) !== COLON || !this.isSeparator(this.pos + 1) || this.pos - start > MAX_KEY) throw OUTSIDE_SUBSET;
    this.pos++;
    return key;
  }

  /** Where a block plain scalar starting at `from` stops: at the line's end, a comment, or a `: `. */
  private plainStop(from: number): number {
    const text = this.text;
    let p = from;
    for (;;) {
      if (p >= text.length) return p;
      const c = text.charCodeAt(p);
      if (c === NEWLINE || (c === COLON && this.isSeparator(p + 1)) || (c === HASH && text.charCodeAt(p - 1) === SPACE)) return p;
      p++;
    }
  }

  /**
   * The value after a mapping's `:` or a sequence's `-` (at `pos`), in a
   * collection at column `column`: on the same line, or a block below it (a
   * mapping's may be a sequence at the key's own column).
   */
  private valueAfterIndicator(column: number, inMapping: boolean): FastNode {
    let p = this.pos;
    while (this.code(p) === SPACE) p++;
    this.pos = p;
    const c = this.code(p);
    if (p >= this.text.length || c === NEWLINE || c === HASH) {
      this.endLine();
      this.advance();
      if (this.indent > column) return this.blockCollection();
      if (inMapping && this.indent === column && this.isSequenceEntry(this.pos)) return this.sequence(column);
      // An empty value: null, placed (as the library places it) after the indicator's spaces.
      this.data = null;
      return this.scalar(p, p, 'PLAIN', null);
    }
    if (c === PIPE || c === GREATER) return this.blockScalar(column);
    let node: FastNode;
    if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      const flow = readFlowCollection(this.text, p, this.keep, this.strings);
      node = flow.node;
      this.data = flow.data;
      this.pos = flow.end;
    } else if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const { value, end } = readQuoted(this.text, p);
      this.pos = end;
      if (!inMapping && this.isKeyIndicatorAhead()) {
        this.pos = p;
        return this.mapping(p - this.lineStart);
      }
      const shared = this.strings.share(value);
      node = this.scalar(p, end, c === DOUBLE_QUOTE ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', shared);
      this.data = shared;
    } else {
      checkPlainFirst(this.text, p);
      const stop = this.plainStop(p);
      if (this.code(stop) === COLON) {
        // `- key: value` opens a mapping inside the sequence entry; `key: other: value` is an error.
        if (inMapping) throw OUTSIDE_SUBSET;
        return this.mapping(p - this.lineStart);
      }
      let end = stop;
      while (this.code(end - 1) === SPACE) end--;
      const value = resolvePlain(this.strings.slice(this.text, p, end));
      node = this.scalar(p, end, 'PLAIN', value);
      this.data = value;
      this.pos = stop;
    }
    this.endLine();
    this.advance();
    // A deeper line after a value on the line continues a multi-line scalar, or is an error.
    if (this.indent > column) throw OUTSIDE_SUBSET;
    return node;
  }

  /** A scalar of the position tree, when positions are kept. */
  private scalar(start: number, end: number, style: ScalarStyle, value: unknown): FastNode {
    return this.keep ? scalarNode(start, end, style, value) : UNKEPT;
  }

  private isKeyIndicatorAhead(): boolean {
    let p = this.pos;
    while (this.code(p) === SPACE) p++;
    return this.code(p) === COLON && this.isSeparator(p + 1);
  }

  /** A `|` or `>` block scalar (header at `pos`) of a node in a collection at column `column`. */
  private blockScalar(column: number): FastNode {
    const text = this.text;
    const start = this.pos;
    const folded = this.code(start) === GREATER;
    let p = start + 1;
    const strip = this.code(p) === DASH;
    if (strip) p++;
    // Keep chomping (`+`) and explicit indentation indicators have rules of their own.
    const next = this.code(p);
    if (next === 43 || (next >= 48 && next <= 57)) throw OUTSIDE_SUBSET;
    this.pos = p;
    this.endLine();
    const lines: string[] = [];
    let indent = -1;
    let leadingSpaces = 0;
    let q = this.pos;
    let end = q;
    while (q < text.length) {
      let s = q;
      while (text.charCodeAt(s) === SPACE) s++;
      const lineIndent = s - q;
      if (s >= text.length || text.charCodeAt(s) === NEWLINE) {
        // Whitespace-only lines deeper than the content are content of their own: outside the subset.
        if (indent >= 0 && lineIndent > indent) throw OUTSIDE_SUBSET;
        leadingSpaces = Math.max(leadingSpaces, lineIndent);
        lines.push('');
        q = s + 1;
        continue;
      }
      if (indent < 0) {
        if (lineIndent <= column) break;
        if (leadingSpaces > lineIndent) throw OUTSIDE_SUBSET;
        indent = lineIndent;
      } else if (lineIndent < indent) {
        if (lineIndent > column) throw OUTSIDE_SUBSET;
        break;
      }
      const lineEnd = text.indexOf('\n', s);
      lines.push(text.slice(q + indent, lineEnd < 0 ? text.length : lineEnd));
      q = end = lineEnd < 0 ? text.length : lineEnd + 1;
    }
    if (indent < 0) throw OUTSIDE_SUBSET;
    while (lines[lines.length - 1] === '') lines.pop();
    const value = this.strings.share(blockValue(lines, folded, strip));
    this.pos = end;
    this.advance();
    this.data = value;
    return this.scalar(start, end, folded ? 'BLOCK_FOLDED' : 'BLOCK_LITERAL', value);
  }
}
