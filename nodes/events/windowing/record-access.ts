/**
 * Reading keys, values and event times from records on the hot path of the
 * stateful event operators (windows, aggregates, dedupe, throttle).
 *
 * User expressions are CEL, compiled once per node. An expression that is a
 * bare field name (`device`, `value`) is read as `record[field]` instead of
 * being evaluated: same result, a fraction of the cost.
 */
import { compileExpression, toPlain, type EventRecord } from '../../../runtime/api.ts';

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Identifiers that are CEL keywords or literals, never field names. */
const celWords = new Set([
  'true', 'false', 'null', 'in', 'as', 'break', 'const', 'continue', 'else', 'for', 'function', 'if',
  'import', 'let', 'loop', 'package', 'namespace', 'return', 'var', 'void', 'while',
]);

/** The field an expression reads when it is nothing but a field name, else undefined. */
export function bareField(text: string): string | undefined {
  const trimmed = text.trim();
  return identifier.test(trimmed) && !celWords.has(trimmed) ? trimmed : undefined;
}

/** A compiled read of one value from a record; throws when the record lacks it. */
export interface ValueReader {
  /** The field read directly, when the expression is a bare field name. */
  readonly field: string | undefined;
  /** Reads the value as a plain JSON-like value (CEL integers become numbers). */
  read(record: EventRecord): unknown;
}

/** A missing field, reported the same way whether read directly or through CEL. */
export function missingField(field: string): TypeError {
  return new TypeError(`no such field \`${field}\``);
}

/**
 * Compiles `text` once. A bare field name reads the field directly; anything
 * else is a CEL expression whose result is converted with `toPlain`.
 */
export function compileReader(text: string): ValueReader {
  const field = bareField(text);
  if (field !== undefined) {
    return {
      field,
      read: function readField(record) {
        const value = record[field];
        if (value === undefined) throw missingField(field);
        return value;
      },
    };
  }
  const evaluate = compileExpression(text);
  return {
    field: undefined,
    read: function readExpression(record) {
      const value = evaluate(record);
      return typeof value === 'bigint' ? Number(value) : typeof value === 'object' && value !== null ? toPlain(value) : value;
    },
  };
}

/**
 * A string that identifies a key value in a `Map`: strings stand for
 * themselves (the common case allocates nothing); other values are tagged so
 * that the number `1` and the string `"1"` stay distinct keys.
 */
export function keyStringOf(value: unknown): string {
  return typeof value === 'string' ? value : '\u0000' + JSON.stringify(value ?? null);
}

/**
 * An event time in epoch milliseconds from a record's time field: a number
 * as is, a string through `Date.parse` (ISO 8601). Throws for anything else.
 */
export function eventTimeOf(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    const parsed = Date.parse(value);
    if (Number.isFinite(parsed)) return parsed;
    throw new TypeError(`time field \`${field}\` is not a date: \`${value.length > 40 ? value.slice(0, 40) + '…' : value}\``);
  }
  if (typeof value === 'bigint') return Number(value);
  if (value === undefined) throw missingField(field);
  throw new TypeError(`time field \`${field}\` is ${value === null ? 'null' : `a ${typeof value}`}, not epoch milliseconds or an ISO date`);
}
