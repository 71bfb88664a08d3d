/**
 * The purge bus's wire format, version 1: what a sender publishes on the
 * purge channel (a `purge` command), what each edge answers on the reply
 * channel (an `ack`), and the two bookkeeping messages (`heartbeat`, which
 * registers an edge; `probe`, with which a Kafka reader finds where it
 * stands). Every message is one JSON object with `v` (the version) and
 * `type`; receivers validate it with zod and drop what does not match (a
 * bad message is logged by the caller, never thrown).
 *
 * @example
 * {"v":1,"type":"purge","id":"0f3c…","selector":{"kind":"prefix","value":"/live/","soft":false},"sent_at":1764693000000}
 * {"v":1,"type":"ack","id":"0f3c…","edge":"edge-a","removed":12,"ms":0.4}
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/** The version of the messages this code writes and the only one it reads. */
export const purgeProtocolVersion = 1;

/** What to drop from every edge's cache: one URL (all its `Vary` variants), every URL under a prefix, or every object tagged `value` (`Surrogate-Key`/`Cache-Tag`); `soft` marks stale (the next request revalidates) instead of removing. */
export interface PurgeSelector {
  kind: 'url' | 'prefix' | 'tag';
  value: string;
  soft: boolean;
}

/**
 * A pipeline's purge record (`{url: "/a"}`, `{tag: "t", soft: true}`) as
 * a selector, or why it is not one; `soft` is `defaultSoft` when the
 * record does not say.
 */
export function purgeSelectorOf(item: unknown, defaultSoft: boolean): PurgeSelector | string {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return 'a purge record must be an object such as `{url: "/path"}`';
  const record = item as Record<string, unknown>;
  const kinds = (['url', 'prefix', 'tag'] as const).filter((kind) => record[kind] !== undefined);
  if (kinds.length !== 1) return `a purge record needs exactly one of the fields \`url\`, \`prefix\` or \`tag\`${kinds.length > 1 ? ` (it has ${kinds.join(', ')})` : ''}`;
  const kind = kinds[0];
  const value = record[kind];
  if (typeof value !== 'string' || value === '') return `\`${kind}\` must be a non-empty string`;
  const soft = record.soft ?? defaultSoft;
  if (typeof soft !== 'boolean') return '`soft` must be true or false';
  return { kind, value, soft };
}

/** The selector as validated on receipt: a known kind, a non-empty value of at most 8 KiB, an explicit `soft`. */
export const purgeSelectorSchema = z.strictObject({
  kind: z.enum(['url', 'prefix', 'tag']),
  value: z.string().min(1).max(8192),
  soft: z.boolean(),
});

const idSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'an id of 8 to 64 letters, digits, `-` or `_`');
const edgeSchema = z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, 'an edge name of 1 to 128 letters, digits, `.`, `_`, `:`, `@` or `-`');

/** A purge order: every edge that receives it applies `selector` once (by `id`) and acknowledges. */
export const purgeCommandSchema = z.strictObject({
  v: z.literal(purgeProtocolVersion),
  type: z.literal('purge'),
  id: idSchema,
  selector: purgeSelectorSchema,
  /** When the sender published it (ms since the epoch), for the edges' logs. */
  sent_at: z.number().int().nonnegative(),
});
export type PurgeCommand = z.infer<typeof purgeCommandSchema>;

/** An edge's answer to one command: how many objects it removed or marked stale, and how long that took; `error` when its cache refused. */
export const purgeAckSchema = z.strictObject({
  v: z.literal(purgeProtocolVersion),
  type: z.literal('ack'),
  id: idSchema,
  edge: edgeSchema,
  removed: z.number().int().nonnegative(),
  ms: z.number().nonnegative(),
  error: z.string().max(1000).optional(),
});
export type PurgeAck = z.infer<typeof purgeAckSchema>;

/** An edge saying it is listening (Kafka's registry topic; Redis keeps a sorted set instead). */
export const heartbeatSchema = z.strictObject({
  v: z.literal(purgeProtocolVersion),
  type: z.literal('heartbeat'),
  edge: edgeSchema,
  at: z.number().int().nonnegative(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** A marker a Kafka reader writes to the topic it reads and waits to read back: once it has, it is positioned before anything published later. */
export const probeSchema = z.strictObject({
  v: z.literal(purgeProtocolVersion),
  type: z.literal('probe'),
  nonce: idSchema,
});
export type Probe = z.infer<typeof probeSchema>;

/** Any message of the bus. */
export const busMessageSchema = z.discriminatedUnion('type', [purgeCommandSchema, purgeAckSchema, heartbeatSchema, probeSchema]);
export type BusMessage = z.infer<typeof busMessageSchema>;

/** A message read from the bus: the message, or why it was dropped (one line, for the log). */
export type Parsed = { ok: true; message: BusMessage } | { ok: false; reason: string };

/** Largest message accepted: a command is a few hundred bytes; anything far bigger is not ours. */
const maxMessageBytes = 16 * 1024;

/**
 * Reads one message off the bus. Never throws: text that is not JSON, too
 * long, of another version or of the wrong shape gives `ok: false` with the
 * reason.
 */
export function parseBusMessage(raw: string | Buffer): Parsed {
  if (raw.length > maxMessageBytes) return { ok: false, reason: `message of ${raw.length} bytes is over the ${maxMessageBytes}-byte limit` };
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `not JSON: ${(error as Error).message}` };
  }
  if (typeof value === 'object' && value !== null && 'v' in value && value.v !== purgeProtocolVersion) {
    return { ok: false, reason: `protocol version ${JSON.stringify(value.v)} is not ${purgeProtocolVersion}` };
  }
  const result = busMessageSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.length > 0 ? `\`${issue.path.join('.')}\`: ` : '';
    return { ok: false, reason: `not a purge bus message: ${where}${issue.message}` };
  }
  return { ok: true, message: result.data };
}

/** A new command for `selector`, with a random id and the current time. */
export function newPurgeCommand(selector: PurgeSelector, now = Date.now()): PurgeCommand {
  return { v: purgeProtocolVersion, type: 'purge', id: randomUUID().replaceAll('-', ''), selector: purgeSelectorSchema.parse(selector), sent_at: Math.floor(now) };
}

/** A new probe with a random nonce. */
export function newProbe(): Probe {
  return { v: purgeProtocolVersion, type: 'probe', nonce: randomUUID().replaceAll('-', '') };
}

/** Whether `name` can name an edge on the bus (checked when a listener starts, so a bad name fails there and not in every ack). */
export function edgeNameProblem(name: string): string | undefined {
  const result = edgeSchema.safeParse(name);
  return result.success ? undefined : `edge name \`${name}\`: ${result.error.issues[0].message}`;
}

/** What applying one command gave on an edge: objects removed, ms taken, the error if the cache failed. */
export interface PurgeOutcome {
  removed: number;
  ms: number;
  error?: string;
}

/**
 * The ids of recently applied commands with their results, so that a
 * command seen twice (a sender's retry, a Kafka redelivery) is applied once
 * and answered again with the first result. Bounded: the oldest id is
 * forgotten past `capacity`.
 */
export class RecentCommands {
  readonly #results = new Map<string, Promise<PurgeOutcome>>();
  readonly #capacity: number;

  constructor(capacity = 4096) {
    this.#capacity = capacity;
  }

  /** The result of `id` if it was seen, else undefined. */
  get(id: string): Promise<PurgeOutcome> | undefined {
    return this.#results.get(id);
  }

  /** Remembers `id`'s result (a promise, so a duplicate arriving while the first is being applied waits for it). */
  remember(id: string, result: Promise<PurgeOutcome>): void {
    this.#results.set(id, result);
    if (this.#results.size > this.#capacity) this.#results.delete(this.#results.keys().next().value as string);
  }
}
