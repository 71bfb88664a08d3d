/**
 * The purge bus as the listener and the sender see it, whatever carries it:
 * Redis pub/sub (`redis-bus.ts`) or Kafka topics (`kafka-bus.ts`). Both
 * transports implement the two interfaces below; `listener.ts` and
 * `send.ts` hold the protocol (validation, duplicates, waiting for acks)
 * once for both.
 */
import type { ClientOwner } from '../../../native/client-owner.ts';
import type { BusMessage, PurgeAck, PurgeCommand } from './command.ts';
import type { RegisteredEdge, RegistryTiming } from './registry.ts';

/** Where the bus is: one of `redis` (a URL) or `kafka` (brokers), and the channel (default `streams:cdn:purge`). */
export interface PurgeBusOptions {
  redis?: string;
  kafka?: string[];
  channel: string;
}

/** The default purge channel (Redis channel; Kafka topic `streams.cdn.purge`). */
export const defaultPurgeChannel = 'streams:cdn:purge';

/** Raw messages from the bus, undecoded: the protocol code validates them. */
export type RawHandler = (raw: Buffer) => void;

/** An edge's side of the bus. */
export interface EdgeBus {
  readonly timing: RegistryTiming;
  /** Subscribes to the command channel; resolves once every command published from then on will reach `onMessage`. */
  listen(onMessage: RawHandler): Promise<void>;
  /** Publishes an acknowledgement on the reply channel. */
  reply(ack: PurgeAck): Promise<void>;
  /** Records that `edge` is listening now (rejects when this bus no longer listens). */
  heartbeat(edge: string, at: number): Promise<void>;
  close(): Promise<void>;
}

/** A sender's side of the bus. */
export interface SenderBus {
  readonly timing: RegistryTiming;
  /** Subscribes to the reply channel; resolves once every ack published from then on will reach `onMessage`. */
  listenReplies(onMessage: RawHandler): Promise<void>;
  /** The registry's entries, stale ones included (forgotten ones may be left out). */
  edges(now: number): Promise<RegisteredEdge[]>;
  publish(command: PurgeCommand): Promise<void>;
  /** Why acks cannot be heard now (the reply subscription is reconnecting), or undefined when they can. */
  notListening(): string | undefined;
  close(): Promise<void>;
}

/** Encodes a bus message as the bytes both transports carry. */
export function encodeBusMessage(message: BusMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/** A bus failure the user can act on (an unreachable server, a bad option), with a stable code. */
export class PurgeBusError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PurgeBusError';
    this.code = code;
  }
}

/** Opens an edge's side of the configured transport (the client libraries load only then). */
export async function openEdgeBus(options: PurgeBusOptions, owner: ClientOwner): Promise<EdgeBus> {
  if (options.redis !== undefined) return (await import('./redis-bus.ts')).openRedisEdgeBus(options.redis, options.channel, owner);
  return (await import('./kafka-bus.ts')).openKafkaEdgeBus(options.kafka ?? [], options.channel, owner);
}

/** Opens a sender's side of the configured transport; rejects with a `PurgeBusError` when the server cannot be reached. */
export async function openSenderBus(options: PurgeBusOptions, owner: ClientOwner): Promise<SenderBus> {
  if (options.redis !== undefined) return (await import('./redis-bus.ts')).openRedisSenderBus(options.redis, options.channel, owner);
  return (await import('./kafka-bus.ts')).openKafkaSenderBus(options.kafka ?? [], options.channel, owner);
}
