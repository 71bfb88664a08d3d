/**
 * What the Redis operators share beyond the connection (which is
 * `native/redis/client.ts`): the mapping between records and stream
 * entries or values.
 */
import { toPlain, type BytesItem } from '../../../runtime/api.ts';

/** How a record travels in a stream entry: one entry field per record field, or the whole record as JSON in one field. */
export type EntryFormat = 'fields' | 'json';

function isBytes(item: unknown): item is BytesItem {
  if (item === null || typeof item !== 'object') return false;
  const candidate = item as BytesItem;
  return Buffer.isBuffer(candidate.data) || typeof candidate.text === 'string';
}

/** A field value as Redis stores it: strings and buffers as they are, other scalars as text, lists and maps as JSON. */
export function fieldText(value: unknown): string | Buffer {
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  const plain = toPlain(value);
  return typeof plain === 'object' && plain !== null ? JSON.stringify(plain) : String(plain);
}

/** A record or Bytes item as a single value (SET, LPUSH, PUBLISH): bytes as they are, records as JSON. */
export function valueOf(item: unknown): string | Buffer {
  if (isBytes(item)) return item.data ?? item.text!;
  return fieldText(item);
}

/** The `field value ...` arguments of XADD for one record. */
export function entryArgs(item: unknown, format: EntryFormat, field: string): (string | Buffer)[] {
  if (isBytes(item)) return [field, item.data ?? item.text!];
  if (format === 'json') return [field, JSON.stringify(toPlain(item))];
  if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new TypeError('expected a record (a map of fields)');
  const args: (string | Buffer)[] = [];
  for (const [name, value] of Object.entries(item as Record<string, unknown>)) {
    if (value === undefined) continue;
    args.push(name, fieldText(value));
  }
  if (args.length === 0) throw new TypeError('a stream entry needs at least one field, and the record has none');
  return args;
}

/**
 * A stream entry's flat `[field, value, ...]` list as a record: the fields
 * as a map, or, with `json`, the JSON object held in `field`.
 */
export function entryRecord(pairs: readonly string[], format: EntryFormat, field: string): Record<string, unknown> {
  if (format === 'fields') {
    const record: Record<string, unknown> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) record[pairs[i]] = pairs[i + 1];
    return record;
  }
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    if (pairs[i] !== field) continue;
    const value: unknown = JSON.parse(pairs[i + 1]);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new TypeError(`field \`${field}\` holds JSON that is not an object`);
    }
    return value as Record<string, unknown>;
  }
  throw new TypeError(`the entry has no field \`${field}\``);
}
