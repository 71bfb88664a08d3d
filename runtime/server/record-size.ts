/**
 * The size of a record as JSON, without building the JSON: what the live
 * feed multiplies by an edge's record rate to estimate its bytes per second
 * from a few records sampled now and then (never on the records' path).
 */

/** Past this depth a value counts as nothing more: records are shallow, and a cycle must end. */
const maxDepth = 32;

/**
 * Bytes of `value` encoded as JSON (UTF-8), as `JSON.stringify` would make
 * them, except that binary data (a `Buffer`, a typed array) counts as its
 * own length, as a binary encoding would carry it, rather than as a JSON
 * array of numbers.
 *
 * @example encodedSize({ device: 'd1', value: 2 }) // 26, the length of {"device":"d1","value":2}
 */
export function encodedSize(value: unknown, depth = 0): number {
  if (depth > maxDepth) return 0;
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(JSON.stringify(value));
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'bigint':
      return String(value).length;
    case 'object':
      break;
    default:
      // undefined, functions and symbols: JSON leaves them out (or writes null in an array, counted by the caller).
      return 0;
  }
  if (value === null) return 4;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof Date) return 26;
  if (Array.isArray(value)) {
    let total = 2 + Math.max(value.length - 1, 0);
    for (const item of value) total += item === undefined || typeof item === 'function' || typeof item === 'symbol' ? 4 : encodedSize(item, depth + 1);
    return total;
  }
  let total = 2;
  let fields = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const field = (value as Record<string, unknown>)[key];
    if (field === undefined || typeof field === 'function' || typeof field === 'symbol') continue;
    total += Buffer.byteLength(JSON.stringify(key)) + 1 + encodedSize(field, depth + 1);
    fields += 1;
  }
  return total + Math.max(fields - 1, 0);
}
