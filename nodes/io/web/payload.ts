/** Records as they go over the wire and come back, shared by the web connectors. */
import type { BytesItem, EventRecord } from '../../../runtime/api.ts';

/** Whether a record is a Bytes item (`text` or `data`) rather than an event. */
export function isBytesItem(item: unknown): item is BytesItem {
  if (item === null || typeof item !== 'object') return false;
  const bytes = item as BytesItem;
  return typeof bytes.text === 'string' || Buffer.isBuffer(bytes.data);
}

/**
 * What goes on the wire for a record: a Bytes item's own text or buffer, an
 * event as JSON. `omitField` is left out of the JSON (a routing field such
 * as the client id is not part of the message).
 */
export function wirePayload(item: unknown, omitField?: string): string | Buffer {
  if (isBytesItem(item)) return item.data ?? item.text ?? '';
  if (omitField !== undefined && item !== null && typeof item === 'object' && omitField in item) {
    const { [omitField]: _omitted, ...rest } = item as EventRecord;
    return JSON.stringify(rest);
  }
  return JSON.stringify(item);
}

/** Bytes of a wire payload. */
export function payloadLength(payload: string | Buffer): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
}


