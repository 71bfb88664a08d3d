import { Observable } from 'rxjs';
import { defineOperator, z, type Batch, type BytesItem, type EventRecord } from '../../runtime/api.ts';
import { connectRedis, type Redis } from '../../native/redis/client.ts';
import { backoffMs } from './redis/entries.ts';

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
    const s: Settings = ctx.settings;
    return function redisSubscribeNode() {
      return new Observable<Batch>((subscriber) => {
        let client: Redis | undefined;
        let pending: (BytesItem | EventRecord)[] = [];
        let flushQueued = false;
        let stopped = false;

        const flush = (): void => {
          flushQueued = false;
          if (pending.length === 0 || stopped) return;
          const items = pending;
          pending = [];
          // A live source cannot wait: while downstream is full, messages are dropped and counted.
          if (ctx.ready()) {
            ctx.metrics.dropped(items.length, 'backpressure');
            return;
          }
          subscriber.next({ items, ack: ctx.newAck() });
        };

        const receive = (channel: Buffer, message: Buffer, pattern?: Buffer): void => {
          if (stopped) {
            ctx.metrics.dropped(1, 'stopped');
            return;
          }
          ctx.metrics.bytes(message.length);
          const channelName = channel.toString('utf8');
          if (s.format === 'bytes') {
            pending.push({ data: message, meta: pattern ? { channel: channelName, pattern: pattern.toString('utf8') } : { channel: channelName } });
          } else {
            try {
              const value: unknown = JSON.parse(message.toString('utf8'));
              if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError('expected a JSON object');
              const record = value as EventRecord;
              if (s.channel_field !== false) record[s.channel_field] = channelName;
              pending.push(record);
            } catch (error) {
              ctx.fail({ channel: channelName, text: message.toString('utf8') }, error);
            }
          }
          if (pending.length >= batchLimit) flush();
          else if (!flushQueued) {
            flushQueued = true;
            setImmediate(flush);
          }
        };

        const subscribe = (opened: Redis): void => {
          client = opened;
          if (stopped) {
            opened.disconnect();
            return;
          }
          opened.on('messageBuffer', (channel: Buffer, message: Buffer) => receive(channel, message));
          opened.on('pmessageBuffer', (pattern: Buffer, channel: Buffer, message: Buffer) => receive(channel, message, pattern));
          // ioredis subscribes again by itself after a reconnection.
          if (s.channels.length > 0) opened.subscribe(...s.channels).catch((error: Error) => subscriber.error(new Error(`${ctx.label}: SUBSCRIBE failed: ${error.message}`)));
          if (s.patterns.length > 0) opened.psubscribe(...s.patterns).catch((error: Error) => subscriber.error(new Error(`${ctx.label}: PSUBSCRIBE failed: ${error.message}`)));
        };
        connectRedis(ctx, { url: s.url, purpose: 'subscribe', retryDelayMs: backoffMs }).then(subscribe, (error: unknown) => subscriber.error(error));

        const onAbort = (): void => {
          flush();
          stopped = true;
          subscriber.complete();
        };
        if (ctx.signal.aborted) queueMicrotask(onAbort);
        else ctx.signal.addEventListener('abort', onAbort, { once: true });

        return function closeRedisSubscribe() {
          stopped = true;
          ctx.signal.removeEventListener('abort', onAbort);
          client?.disconnect();
        };
      });
    };
  },
});
