/**
 * Scalars for the fast YAML reader (`yaml-fast.ts`): what a plain scalar
 * means under the YAML 1.2 core schema (as the `yaml` library resolves it),
 * the text of a one-line quoted scalar, and the value of a `|` or `>` block.
 * Each throws `OUTSIDE_SUBSET` where the text leaves the subset the reader
 * handles, so that the caller falls back to the library.
 */

import type { FastMap, FastScalar, ScalarStyle } from './yaml-fast.ts';

/** What a value read without positions returns (one object for all of them): nothing keeps it. */
export const UNKEPT: FastMap = { kind: 'map', start: -1, pairs: new Map() };

/** Thrown (not an Error: no stack to capture) when the text leaves the subset; the caller then uses the `yaml` library. */
export const OUTSIDE_SUBSET: unique symbol = Symbol('outside the fast YAML subset');

// Character codes the readers test.
export const SPACE = 32;
export const NEWLINE = 10;
export const HASH = 35;
export const COLON = 58;
export const DASH = 45;
export const DOT = 46;
export const PERCENT = 37;
export const COMMA = 44;
export const QUESTION = 63;
export const DOUBLE_QUOTE = 34;
export const SINGLE_QUOTE = 39;
export const OPEN_BRACKET = 91;
export const CLOSE_BRACKET = 93;
export const OPEN_BRACE = 123;
export const CLOSE_BRACE = 125;
export const PIPE = 124;
export const GREATER = 62;

/** Characters no plain scalar may start with (`-`, `?` and `:` may, when a non-space follows). */
const NOT_PLAIN_FIRST = new Set([...',[]{}#&*!|>\'"%@`'].map((c) => c.charCodeAt(0)));

/** Throws `OUTSIDE_SUBSET` unless a plain scalar may start at `at`. */
export function checkPlainFirst(text: string, at: number): void {
  const c = text.charCodeAt(at);
  if (NOT_PLAIN_FIRST.has(c)) throw OUTSIDE_SUBSET;
  if (c === DASH || c === COLON || c === QUESTION) {
    const next = text.charCodeAt(at + 1);
    // Followed by a space, or by a flow indicator (`-,` reads differently inside a flow collection): the library's.
    if (at + 1 >= text.length || next === SPACE || next === NEWLINE || next === COMMA || next === OPEN_BRACKET || next === CLOSE_BRACKET || next === OPEN_BRACE || next === CLOSE_BRACE) {
      throw OUTSIDE_SUBSET;
    }
  }
}

/** A scalar of the position tree. */
export function scalarNode(start: number, end: number, style: ScalarStyle, value: unknown): FastScalar {
  return { kind: 'scalar', start, end, style, value };
}

/** The longest string value {@link SharedStrings} shares: settings' words and short expressions, not long texts. */
const SHARED_LENGTH = 128;

/** Slots of {@link SharedStrings}' table (a power of two). */
const SHARED_SLOTS = 4096;

/**
 * The string values of one text, equal ones as one string: a large pipeline
 * repeats the same words (`number`, `string`, `1s`, `count()`) on every
 * node, and the checked graph keeps its settings, so each copy would stay.
 * A table of the last string seen per slot, picked by length and three of
 * its characters: no hash of the whole string, nothing grows with the text,
 * and a value met once (a node's name in `in:`) only takes a slot.
 */
export class SharedStrings {
  readonly #slots: (string | undefined)[] = new Array<string | undefined>(SHARED_SLOTS).fill(undefined);

  /** A string equal to `value` read before, or `value` (anything else as it is). */
  share<T>(value: T): T {
    if (typeof value !== 'string') return value;
    const n = value.length;
    if (n === 0 || n > SHARED_LENGTH) return value;
    const slot = slotOf(value, 0, n);
    const known = this.#slots[slot];
    if (known === value) return known as T;
    this.#slots[slot] = value;
    return value;
  }

  /**
   * `text.slice(start, end)`, as a string read before when there is one:
   * compared in place, so a key or word met again (`op`, `with`, `1s`)
   * makes no new string, and as a key it is one the engine has already
   * made a property name of.
   */
  slice(text: string, start: number, end: number): string {
    const n = end - start;
    if (n === 0 || n > SHARED_LENGTH) return text.slice(start, end);
    const slot = slotOf(text, start, n);
    const known = this.#slots[slot];
    if (known !== undefined && known.length === n && text.startsWith(known, start)) return known;
    const value = text.slice(start, end);
    this.#slots[slot] = value;
    return value;
  }
}

/** The slot of {@link SharedStrings} for the `n` characters of `text` from `start`: by length and three characters. */
function slotOf(text: string, start: number, n: number): number {
  return (n * 31 + text.charCodeAt(start) * 17 + text.charCodeAt(start + (n >> 1)) * 7 + text.charCodeAt(start + n - 1)) & (SHARED_SLOTS - 1);
}

const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
/** First characters a number can have: digits, signs, `.` (of `.5`, `.inf`, `.nan`). */
const MAYBE_NUMBER = /^[-+.0-9]/;

/**
 * A non-empty plain scalar's value, as the `yaml` library's core schema
 * resolves it, tests in the same order (null, bool, octal, decimal and hex
 * int, nan/inf, float).
 */
export function resolvePlain(text: string): unknown {
  const first = text.charCodeAt(0);
  // A scalar that starts with a letter is a string unless it spells null or a boolean: most keys and values
  // are words, read here without the number patterns below.
  if ((first >= 97 && first <= 122) || (first >= 65 && first <= 90)) return wordValue(text);
  if (first === 126) return text.length === 1 ? null : text; // `~`
  if (!MAYBE_NUMBER.test(text)) return text;
  if (INT_OCT.test(text)) return parseInt(text.slice(2), 8);
  if (INT.test(text)) return parseInt(text, 10);
  if (INT_HEX.test(text)) return parseInt(text.slice(2), 16);
  if (FLOAT_NAN.test(text)) return text.slice(-3).toLowerCase() === 'nan' ? NaN : text[0] === '-' ? -Infinity : Infinity;
  // An integer without a dot or exponent was taken above, so this is the library's `float` or `floatExp`.
  if (FLOAT.test(text)) return parseFloat(text);
  return text;
}

/** A word's value: null and the booleans in the spellings the core schema knows, else the word itself. */
function wordValue(text: string): unknown {
  switch (text) {
    case 'null':
    case 'Null':
    case 'NULL':
      return null;
    case 'true':
    case 'True':
    case 'TRUE':
      return true;
    case 'false':
    case 'False':
    case 'FALSE':
      return false;
    default:
      return text;
  }
}

const ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  t: '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\x1b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\x85',
  _: '\xa0',
  L: '\u2028',
  P: '\u2029',
};
const HEX_WIDTH: Record<string, number> = { x: 2, u: 4, U: 8 };
const HEX = /^[0-9a-fA-F]+$/;

/**
 * The value of the quoted scalar whose opening quote is at `start`, and the
 * offset just past its closing quote. One line only: a quoted scalar folded
 * over lines is outside the subset.
 */
export function readQuoted(text: string, start: number): { value: string; end: number } {
  const quote = text.charCodeAt(start);
  let p = start + 1;
  let from = p;
  let value = '';
  for (;;) {
    if (p >= text.length) throw OUTSIDE_SUBSET;
    const c = text.charCodeAt(p);
    if (c === 10) throw OUTSIDE_SUBSET;
    if (c === quote) {
      // `''` inside single quotes is one quote.
      if (quote === 39 && text.charCodeAt(p + 1) === 39) {
        value += text.slice(from, p + 1);
        p += 2;
        from = p;
        continue;
      }
      return { value: value + text.slice(from, p), end: p + 1 };
    }
    if (c === 92 && quote === 34) {
      value += text.slice(from, p);
      const letter = text[p + 1];
      const width = HEX_WIDTH[letter];
      if (width) {
        const digits = text.slice(p + 2, p + 2 + width);
        if (digits.length !== width || !HEX.test(digits)) throw OUTSIDE_SUBSET;
        const code = parseInt(digits, 16);
        if (code > 0x10ffff) throw OUTSIDE_SUBSET;
        value += String.fromCodePoint(code);
        p += 2 + width;
      } else {
        const escaped = Object.hasOwn(ESCAPES, letter) ? ESCAPES[letter] : undefined;
        if (escaped === undefined) throw OUTSIDE_SUBSET;
        value += escaped;
        p += 2;
      }
      from = p;
      continue;
    }
    p++;
  }
}

/**
 * The value of a block scalar from its content lines (indentation removed;
 * empty lines as `''`, trailing empty lines already dropped): literal lines
 * joined by line breaks; folded lines joined by a space, or by one line
 * break per empty line between them. `strip` (`|-`, `>-`) drops the final
 * line break that `clip` keeps.
 */
export function blockValue(lines: readonly string[], folded: boolean, strip: boolean): string {
  let value: string;
  if (!folded) {
    value = lines.join('\n');
  } else {
    value = '';
    let empties = 0;
    let first = true;
    for (const line of lines) {
      if (line === '') {
        empties++;
        continue;
      }
      // A more-indented line is kept as it is in a folded block, with its own rules: outside the subset.
      if (line.charCodeAt(0) === 32) throw OUTSIDE_SUBSET;
      value += (first ? '\n'.repeat(empties) : empties > 0 ? '\n'.repeat(empties) : ' ') + line;
      empties = 0;
      first = false;
    }
  }
  return strip ? value : value + '\n';
}
