/**
 * JSON text to event records, as `decode.json` parses it: one object per
 * text, optionally checked against a schema of field types. Shared with
 * `file.read`, which runs the decoder of a `decode.json` fused into it on
 * each line as it splits them.
 */
import type { EventRecord, FieldType } from '../../runtime/api.ts';

/** Parses one JSON text into a record; throws a `TypeError` saying why for anything else (a dead letter). */
export type JsonDecoder = (text: string) => EventRecord;

/**
 * Compiles the decoder for a schema (field name to type), or for none.
 *
 * @example
 * const decode = compileJsonDecoder({ ts: 'number' });
 * decode('{"ts": 1}'); // { ts: 1 }
 * decode('{"ts": "x"}'); // throws: field `ts` is not a number
 */
export function compileJsonDecoder(schema: Readonly<Record<string, FieldType>> | undefined): JsonDecoder {
  const fields = Object.entries(schema ?? {}) as [string, FieldType][];
  // Without a schema (the common case) each record costs the parse and one check, no loop.
  if (fields.length === 0) return parseJsonObject;
  return function decodeWithSchema(text) {
    const record = parseJsonObject(text);
    for (const [field, type] of fields) {
      if (!(field in record)) throw new TypeError(`missing field \`${field}\``);
      if (!matches(record[field], type)) throw new TypeError(`field \`${field}\` is not a ${type}`);
    }
    return record;
  };
}

/** Parses one JSON text that must be an object; throws a `TypeError` naming what it was instead. */
export function parseJsonObject(text: string): EventRecord {
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  }
  return value as EventRecord;
}

function matches(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'any':
      return true;
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'bool':
      return typeof value === 'boolean';
    case 'list':
      return Array.isArray(value);
    case 'map':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
  }
}
