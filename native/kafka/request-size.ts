/**
 * How the producer cuts what it is asked to write into produce requests the
 * broker takes.
 */
import type { OutgoingMessage } from './client.ts';

/**
 * The most bytes (keys, values and headers) one produce request carries.
 * The client writes a request's records for a partition as one record
 * batch, and the broker refuses a batch above its `message.max.bytes`
 * (1 MiB by default) for good: a request that big would be retried for
 * ever. Half of that leaves room for the batch's own overhead.
 */
export const requestBytesLimit = 512 * 1024;

/**
 * What a record costs in a batch beyond its key, value and headers: its
 * length, attributes, timestamp and offset deltas, key and value lengths and
 * header count, all varints (at most 5 bytes each, 1 for the attributes), so
 * that many tiny records cannot add up past the broker's limit.
 */
const recordOverheadBytes = 31;

/**
 * `messages` cut, in order, into requests of at most `limit` bytes each
 * (records with their overhead in a batch); a
 * message larger than that goes alone (the broker takes it if it is under
 * its own limit). Most calls hold one request: the list itself, not a copy.
 */
export function requestsOf(messages: readonly OutgoingMessage[], limit = requestBytesLimit): (readonly OutgoingMessage[])[] {
  // Already cut (`Infinity`): one request, no record measured again.
  if (limit === Infinity) return messages.length === 0 ? [] : [messages];
  const requests: (readonly OutgoingMessage[])[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    const size = recordOverheadBytes + messageBytes(messages[i]);
    if (i > start && bytes + size > limit) {
      requests.push(messages.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start === 0) return messages.length === 0 ? [] : [messages];
  requests.push(messages.slice(start));
  return requests;
}


/** A message's keys, values and headers, in bytes. */
export function messageBytes(message: OutgoingMessage): number {
  let bytes = (message.key?.length ?? 0) + (message.value?.length ?? 0);
  if (message.headers) for (const [name, value] of message.headers) bytes += name.length + value.length;
  return bytes;
}
