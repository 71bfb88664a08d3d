/**
 * Shared plumbing of the Redis operators: connecting with backoff and clear,
 * password-free errors, and the mapping between records and stream entries.
 */
import { Redis, ReplyError } from 'ioredis';
import { backoffDelay, redactUrl, sleep, toPlain, type BytesItem, type NodeContext } from '../../../runtime/api.ts';

export { redactUrl, sleep };

/** The longest wait between two connection attempts. */
export const maxBackoffMs = 5_000;

/** Exponential backoff from 100 ms, capped at `maxBackoffMs`, with jitter; `attempt` counts from 1. */
export function backoffMs(attempt: number): number {
  return backoffDelay(attempt - 1, 100, maxBackoffMs);
}

/**
 * Opens a client for one node. Commands wait while the server is away
 * (`maxRetriesPerRequest: null`), so a sink's batch waits and backpressure
 * holds; each failed attempt is logged as an error naming the node and the
 * URL (password redacted), and the client retries with backoff for ever.
 */
export function connectRedis(ctx: NodeContext<unknown>, url: string, purpose: string): Redis {
  const where = redactUrl(url);
  let failures = 0;
  let lastError = 'connection closed';
  const client = new Redis(url, {
    maxRetriesPerRequest: null,
    connectionName: `ami-streams:${ctx.node}:${purpose}`.replace(/\s/g, '_'),
    retryStrategy: (attempt: number) => backoffMs(attempt),
  });
  client.on('error', function redisError(error: Error) {
    lastError = error.message;
  });
  client.on('reconnecting', function redisReconnecting(delay: number) {
    failures += 1;
    ctx.log.error(
      { url: where, error: lastError, attempt: failures, retryInMs: delay },
      `${ctx.label}: cannot reach Redis at ${where}: ${lastError}; retrying in ${delay} ms`,
    );
  });
  client.on('ready', function redisReady() {
    if (failures > 0) ctx.log.info({ url: where, attempts: failures }, `${ctx.label}: connected to Redis at ${where}`);
    failures = 0;
  });
  return client;
}

/** Whether an error is Redis's answer to a command (WRONGTYPE, NOGROUP, ...) rather than a lost connection. */
export function isReplyError(error: unknown): error is Error {
  return error instanceof ReplyError;
}

/**
 * Settles like `promise`, or rejects `graceMs` after `signal` aborts if it
 * has not settled by then (a command queued while the server is away never
 * settles, and `disconnect()` does not flush it).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, graceMs = 0): Promise<T> {
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      if (graceMs <= 0) reject(new Error('aborted'));
      else timer = setTimeout(() => reject(new Error('aborted')), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
  });
}

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
