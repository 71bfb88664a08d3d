/**
 * The values aggregates read from a record: each distinct expression once
 * per record, into scratch slots that the folders then fold from. Bare field
 * names are read directly; other expressions through compiled CEL.
 */
import type { AggregateSpec, EventRecord } from '../../../runtime/api.ts';
import { compileReader, missingField, type ValueReader } from './record-access.ts';

/** Functions whose values must be numbers. */
export const numericFunctions: ReadonlySet<AggregateSpec['fn']> = new Set(['sum', 'min', 'max', 'avg', 'quantile']);

/** The distinct expressions of a set of aggregates, and the slots `prepare` fills. */
export interface AggregateSources {
  /** The expression texts, by slot. */
  readonly texts: readonly string[];
  /** The slot of an expression's text. */
  slotOf(text: string): number;
  /** Numeric values of the record last prepared, by slot (for numeric functions). */
  readonly numbers: Float64Array;
  /** Plain values of the record last prepared, by slot (for `distinct`, `first`, `last`). */
  readonly values: unknown[];
  /**
   * Reads every expression from `record` into the slots; throws, before any
   * state changes, for a missing value or a non-number where one is needed.
   */
  prepare(record: EventRecord): void;
}

interface Source {
  text: string;
  reader: ValueReader;
  asNumber: boolean;
  asValue: boolean;
}

/** Compiles the expressions of `specs` once each. */
export function compileSources(specs: Readonly<Record<string, AggregateSpec>>): AggregateSources {
  const sources: Source[] = [];
  for (const spec of Object.values(specs)) {
    if (spec.expr === undefined) continue;
    let source = sources.find((s) => s.text === spec.expr);
    if (source === undefined) {
      source = { text: spec.expr, reader: compileReader(spec.expr), asNumber: false, asValue: false };
      sources.push(source);
    }
    if (numericFunctions.has(spec.fn)) source.asNumber = true;
    else source.asValue = true;
  }
  const numbers = new Float64Array(sources.length);
  const values: unknown[] = new Array(sources.length).fill(undefined);
  // Parallel arrays keep the per-record loop free of property lookups.
  const fields = sources.map((s) => s.reader.field);
  const asNumber = sources.map((s) => s.asNumber);
  const asValue = sources.map((s) => s.asValue);
  const texts = sources.map((s) => s.text);

  function notNumber(slot: number, value: unknown): TypeError {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
    return new TypeError(`\`${texts[slot]}\` is ${kind}, not a number`);
  }

  return {
    texts,
    numbers,
    values,
    slotOf: (text) => texts.indexOf(text),
    prepare(record) {
      for (let s = 0; s < fields.length; s++) {
        const field = fields[s];
        let value: unknown;
        if (field !== undefined) {
          value = record[field];
          if (value === undefined) throw missingField(field);
        } else {
          value = sources[s].reader.read(record);
        }
        if (asNumber[s]) {
          if (typeof value === 'number') numbers[s] = value;
          else if (typeof value === 'bigint') numbers[s] = Number(value);
          else throw notNumber(s, value);
        }
        if (asValue[s]) values[s] = typeof value === 'bigint' ? Number(value) : value;
      }
    },
  };
}

/** JSON has no infinities: an empty `min` or `max` is saved as a string. */
export function saveNumbers(nums: Float64Array): (number | string)[] {
  return Array.from(nums, (n) => (Number.isFinite(n) ? n : String(n)));
}

/** The inverse of `saveNumbers`. */
export function loadNumbers(saved: readonly (number | string)[]): Float64Array {
  return Float64Array.from(saved, Number);
}

/** What a folder's states hold, for snapshots: its kind and every aggregate, in order. */
export function shapeOf(kind: string, specs: Readonly<Record<string, AggregateSpec>>): string {
  return `${kind}:${JSON.stringify(Object.entries(specs).map(([name, spec]) => [name, spec.fn, spec.expr ?? null, spec.q ?? null]))}`;
}
