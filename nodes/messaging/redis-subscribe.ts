import type { Subscriber } from 'rxjs';
import { defineOperator, retryDelay, z, type Batch, type BytesItem, type EventRecord, type NodeContext } from '../../runtime/api.ts';
import { connectRedis, type Redis } from '../../native/redis/client.ts';
import { sessionSource, type SourceSession } from './source-session.ts';

/** Messages gathered into one batch at most; a batch also ends at the next turn of the event loop. */
const batchLimit = 1024;

const settings = z
  .object({
    url: z.string().min(1).default('redis://127.0.0.1:6379').meta({ description: 'The Redis server, `redis://[user:password@]host:port[/db]` (`rediss://` for TLS); put the password in `${env:...}`.', examples: ['redis://127.0.0.1:6379'] }),
    channels: z.array(z.string().min(1)).default([]).meta({ description: 'Channels to subscribe to by name (SUBSCRIBE).', examples: [['purge', 'alerts']] }),
    patterns: z.array(z.string().min(1)).default([]).meta({ description: 'Channel patterns to subscribe to (PSUBSCRIBE, glob-style: `*`, `?`, `[ab]`).', examples: [['sensors.*']] }),
    format: z.enum(['bytes', 'json']).default('bytes').meta({ description: '`bytes`: each message as Bytes with the channel in its metadata; `json`: each message parsed as a JSON object, with the channel in `channel_field`.' }),
    channel_field: z.union([z.string().min(1), z.literal(false)]).default('_channel').meta({ description: 'With `format: json`, the record field that receives the channel; `false` for none.', examples: ['channel'] }),
  })
  .superRefine(function someChannel(value, issues) {
    if (value.channels.length === 0 && value.patterns.length === 0) {
      issues.addIssue({ code: 'custom', path: ['channels'], message: 'give at least one of `channels` and `patterns`', params: { code: 'bad_setting' } });
    }
  });

type Settings = z.infer<typeof settings>;

/**
 * `redis.subscribe`: Redis pub/sub messages as Bytes or JSON events.
 * At-most-once: pub/sub has no acknowledgement and keeps nothing.
 */
export default defineOperator({
  name: 'redis.subscribe',
  summary: 'Receive Redis pub/sub messages (SUBSCRIBE, PSUBSCRIBE); at most once.',
  doc: 'Subscribes to `channels` (SUBSCRIBE) and `patterns` (PSUBSCRIBE) and emits every message received: as Bytes, with `channel` (and `pattern`, for a pattern subscription) in the item\'s metadata, or, with `format: json`, parsed as a JSON object with the channel in `channel_field` (a message that is not a JSON object goes to the dead-letter port). Delivery is at most once by nature: Redis pub/sub has no acknowledgement and keeps no message, so messages published while the connection is down (it reconnects with backoff and subscribes again; failures are logged as errors naming the node and the URL, password redacted) are never seen, and messages arriving while downstream is full are dropped and counted (reason `backpressure`) rather than buffered without bound. For delivery that survives restarts, use a stream (`redis.write` with `xadd`, `redis.stream`).',
  inputs: {},
  outputs: { out: { type: 'Bytes', doc: 'Each message as Bytes with its channel in the metadata; events with `format: json`.' } },
  settings,
  example: { url: 'redis://127.0.0.1:6379', channels: ['alerts'], format: 'json' },
  infer(settings: Settings) {
    return settings.format === 'json' ? { out: { kind: 'event' } } : {};
  },
  create(ctx) {
    return sessionSource(ctx, (out) => new PubSubSession(ctx, out));
  },
});

/** One run of a `redis.subscribe` node: a subscribed connection whose messages go out in batches, one per turn of the event loop. */
class PubSubSession implements SourceSession {
  readonly #ctx: NodeContext<Settings>;
  readonly #out: Subscriber<Batch>;
  #client: Redis | undefined;
  #pending: (BytesItem | EventRecord)[] = [];
  #flushQueued = false;
  #stopped = false;

  constructor(ctx: NodeContext<Settings>, out: Subscriber<Batch>) {
    this.#ctx = ctx;
    this.#out = out;
  }

  async start(): Promise<void> {
    const s = this.#ctx.settings;
    const client = await connectRedis(this.#ctx, { url: s.url, purpose: 'subscribe', retryDelayMs: retryDelay });
    this.#client = client;
    if (this.#stopped) {
      client.disconnect();
      return;
    }
    client.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#receive(channel, message));
    client.on('pmessageBuffer', (pattern: Buffer, channel: Buffer, message: Buffer) => this.#receive(channel, message, pattern));
    // ioredis subscribes again by itself after a reconnection.
    const label = this.#ctx.label;
    if (s.channels.length > 0) client.subscribe(...s.channels).catch((error: Error) => this.#out.error(new Error(`${label}: SUBSCRIBE failed: ${error.message}`)));
    if (s.patterns.length > 0) client.psubscribe(...s.patterns).catch((error: Error) => this.#out.error(new Error(`${label}: PSUBSCRIBE failed: ${error.message}`)));
  }

  drain(): void {
    this.#flush();
    this.#stopped = true;
    this.#out.complete();
  }

  close(): void {
    this.#stopped = true;
    this.#client?.disconnect();
  }

  #flush = (): void => {
    this.#flushQueued = false;
    if (this.#pending.length === 0 || this.#stopped) return;
    const items = this.#pending;
    this.#pending = [];
    // A live source cannot wait: while downstream is full, messages are dropped and counted.
    if (this.#ctx.ready()) {
      this.#ctx.metrics.dropped(items.length, 'backpressure');
      return;
    }
    this.#out.next({ items, ack: this.#ctx.newAck() });
  };

  #receive(channel: Buffer, message: Buffer, pattern?: Buffer): void {
    const ctx = this.#ctx;
    if (this.#stopped) {
      ctx.metrics.dropped(1, 'stopped');
      return;
    }
    ctx.metrics.bytes(message.length);
    const channelName = channel.toString('utf8');
    if (ctx.settings.format === 'bytes') {
      this.#pending.push({ data: message, meta: pattern ? { channel: channelName, pattern: pattern.toString('utf8') } : { channel: channelName } });
    } else {
      try {
        const value: unknown = JSON.parse(message.toString('utf8'));
        if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError('expected a JSON object');
        const record = value as EventRecord;
        if (ctx.settings.channel_field !== false) record[ctx.settings.channel_field] = channelName;
        this.#pending.push(record);
      } catch (error) {
        ctx.fail({ channel: channelName, text: message.toString('utf8') }, error);
      }
    }
    if (this.#pending.length >= batchLimit) this.#flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flush);
    }
  }
}
