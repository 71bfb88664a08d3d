import { Observable } from 'rxjs';
import { compileExpression, defineOperator, duration, expression, NodeError, redactUrl, retryDelay, sinkBatches, sleep, toPlain, z, type Batch, type CompiledExpression, type NodeContext } from '../../runtime/api.ts';
import { connectRedis, isReplyError, type Redis } from '../../native/redis/client.ts';
import { entryArgs, valueOf } from './redis/entries.ts';

const settings = z
  .object({
    url: z.string().min(1).default('redis://127.0.0.1:6379').meta({ description: 'The Redis server, `redis://[user:password@]host:port[/db]` (`rediss://` for TLS); put the password in `${env:...}`.', examples: ['redis://127.0.0.1:6379'] }),
    command: z.enum(['xadd', 'publish', 'set', 'lpush']).meta({ description: '`xadd` appends to a stream, `publish` sends on a pub/sub channel, `set` stores a string (with `ttl`), `lpush` prepends to a list.', examples: ['xadd'] }),
    key: z.string().min(1).optional().meta({ description: 'The key (stream, list or string key, or the channel for `publish`), the same for every record. Give this or `key_expr`.', examples: ['webhooks'] }),
    key_expr: expression().optional().meta({ description: 'A CEL expression over the record giving its key, for keys that vary per record. Give this or `key`.', examples: ['"device:" + device'] }),
    value: expression().optional().meta({ description: 'For `set`, `lpush` and `publish`: a CEL expression giving the value to write (a string is written as it is, anything else as JSON). Absent: the record as JSON, or a Bytes item\'s bytes.', examples: ['string(value)'] }),
    format: z.enum(['fields', 'json']).default('fields').meta({ description: 'For `xadd`: `fields` writes each record field as an entry field (strings as they are, other values as text or JSON); `json` writes the whole record as JSON in the entry field `field`. A Bytes item always goes in `field`.' }),
    field: z.string().min(1).default('data').meta({ description: 'For `xadd` with `format: json` or Bytes input: the entry field that holds the payload.', examples: ['payload'] }),
    maxlen: z.number().int().positive().optional().meta({ description: 'For `xadd`: trim the stream to about this many entries (`MAXLEN ~`, approximate trimming, cheap).', examples: [100_000] }),
    ttl: duration().optional().meta({ description: 'For `set`: the key expires after this long (`PX`).', examples: ['10m'] }),
  })
  .superRefine(function oneKey(value, issues) {
    if ((value.key === undefined) === (value.key_expr === undefined)) {
      issues.addIssue({ code: 'custom', path: ['key'], message: 'give exactly one of `key` (a fixed key) and `key_expr` (a CEL expression per record)', params: { code: 'bad_setting' } });
    }
    if (value.ttl !== undefined && value.command !== 'set') {
      issues.addIssue({ code: 'custom', path: ['ttl'], message: '`ttl` applies only to `command: set`', params: { code: 'bad_setting' } });
    }
    if (value.maxlen !== undefined && value.command !== 'xadd') {
      issues.addIssue({ code: 'custom', path: ['maxlen'], message: '`maxlen` applies only to `command: xadd`', params: { code: 'bad_setting' } });
    }
  });

type Settings = z.infer<typeof settings>;
type Args = (string | number | Buffer)[];

/**
 * `redis.write`: one Redis command per record (XADD, PUBLISH, SET, LPUSH),
 * pipelined per batch, the batch acknowledged once Redis has answered them all.
 */
export default defineOperator({
  name: 'redis.write',
  summary: 'Write records to Redis: XADD, PUBLISH, SET with a TTL, or LPUSH.',
  doc: 'Runs one command per record, all the records of a batch sent together in one pipeline, and acknowledges the batch once Redis has answered every command: `xadd` appends an entry to the stream `key` (the record\'s fields as entry fields with `format: fields`, or the record as JSON in the entry field `field` with `format: json`; `maxlen` trims the stream approximately), `publish` sends the record on the channel `key`, `set` stores it under `key` (expiring after `ttl`), `lpush` prepends it to the list `key`. The key is fixed (`key`) or computed per record by a CEL expression (`key_expr`); the value of `set`, `lpush` and `publish` is the record as JSON, a Bytes item\'s bytes, or the result of the `value` expression. A record whose expression fails, or that Redis refuses (a key of the wrong type), goes to the dead-letter port. While Redis is unreachable the batch waits (so backpressure holds upstream); each failed connection attempt is logged as an error naming the node and the URL (password redacted) and retried with backoff. A batch interrupted by a lost connection is sent again, so a record may be written twice (at-least-once). PUBLISH reaches only the subscribers connected at that moment.',
  inputs: { in: { type: 'Any', doc: 'Events or Bytes to write.' } },
  outputs: {},
  settings,
  example: { url: 'redis://127.0.0.1:6379', command: 'xadd', key: 'webhooks', maxlen: 100000 },
  create(ctx) {
    const expressions: RecordExpressions = {
      key: ctx.settings.key_expr ? compileExpression(ctx.settings.key_expr) : undefined,
      value: ctx.settings.value ? compileExpression(ctx.settings.value) : undefined,
    };
    return function redisWriteNode(input) {
      return new Observable<Batch>((subscriber) => {
        const session = new RedisWriteSession(ctx, expressions);
        const subscription = sinkBatches<unknown>(
          (items, batch) => session.write(items, batch),
          () => session.quit(),
        )(input).subscribe(subscriber);
        return function stopRedisWrite() {
          subscription.unsubscribe();
          session.disconnect();
        };
      });
    };
  },
});

/** The compiled `key_expr` and `value`, when given. */
interface RecordExpressions {
  key: CompiledExpression | undefined;
  value: CompiledExpression | undefined;
}

/** A record to write and its command's arguments. */
interface Command {
  item: unknown;
  args: Args;
}

/**
 * One run of a `redis.write` node: one connection, and each batch sent on it
 * as one pipeline, the commands that fail for want of a connection sent
 * again with backoff until Redis answers them.
 */
class RedisWriteSession {
  readonly #ctx: NodeContext<Settings>;
  readonly #expressions: RecordExpressions;
  readonly #connecting: Promise<Redis>;
  readonly #where: string;

  constructor(ctx: NodeContext<Settings>, expressions: RecordExpressions) {
    this.#ctx = ctx;
    this.#expressions = expressions;
    this.#where = redactUrl(ctx.settings.url);
    this.#connecting = connectRedis(ctx, { url: ctx.settings.url, purpose: 'write', retryDelayMs: retryDelay });
  }

  /** Writes one batch: records that cannot become a command or that Redis refuses go to `ctx.fail`; the rest are sent until answered. */
  async write(items: unknown[], batch?: Batch): Promise<void> {
    const ctx = this.#ctx;
    let todo: Command[] = [];
    for (const item of items) {
      try {
        todo.push({ item, args: this.#argsOf(item) });
      } catch (error) {
        ctx.fail(item, error, batch?.ack);
      }
    }
    const client = await this.#connecting;
    let attempt = 0;
    while (todo.length > 0) {
      const results = await this.#send(client, todo);
      todo = this.#settle(todo, results, batch);
      if (todo.length > 0) {
        if (ctx.signal.aborted) throw new NodeError('stopped', `${ctx.label}: stopped with ${todo.length} records unwritten`);
        attempt += 1;
        const delay = retryDelay(attempt);
        const where = this.#where;
        const reason = results.find(([error]) => error && !isReplyError(error))?.[0]?.message ?? 'no reply';
        ctx.log.error({ url: where, error: reason, records: todo.length, retryInMs: delay }, `${ctx.label}: writing to ${where} failed: ${reason}; retrying in ${delay} ms`);
        await sleep(delay, ctx.signal, ctx);
      }
    }
  }

  /** Closes the connection politely once the input has ended. */
  async quit(): Promise<void> {
    const client = await this.#connecting;
    await client.quit().catch(() => client.disconnect());
  }

  /** Drops the connection at once (once it is made). */
  disconnect(): void {
    void this.#connecting.then((client) => client.disconnect(), () => undefined);
  }

  /** The command's arguments for one record (throws for a record that cannot be written). */
  #argsOf(item: unknown): Args {
    const s = this.#ctx.settings;
    const { key: keyOf, value: valueExpr } = this.#expressions;
    const key = keyOf ? String(toPlain(keyOf(item as Record<string, unknown>))) : s.key!;
    if (s.command === 'xadd') {
      const trim: Args = s.maxlen ? ['MAXLEN', '~', s.maxlen] : [];
      return [key, ...trim, '*', ...entryArgs(item, s.format, s.field)];
    }
    const value = valueExpr ? valueOf(toPlain(valueExpr(item as Record<string, unknown>))) : valueOf(item);
    if (s.command === 'set' && s.ttl !== undefined) return [key, value, 'PX', Math.max(1, Math.round(s.ttl))];
    return [key, value];
  }

  /** Sends the commands in one pipeline: one [error, reply] per command (all the same error when the pipeline itself failed). */
  async #send(client: Redis, todo: readonly Command[]): Promise<[Error | null, unknown][]> {
    const pipeline = client.pipeline();
    for (const { args } of todo) pipeline.call(this.#ctx.settings.command, ...args);
    try {
      return ((await pipeline.exec()) ?? []) as [Error | null, unknown][];
    } catch (error) {
      return todo.map(() => [error as Error, undefined]);
    }
  }

  /** Counts what was written, dead-letters what Redis refused, and returns what must be sent again. */
  #settle(todo: readonly Command[], results: [Error | null, unknown][], batch?: Batch): Command[] {
    const ctx = this.#ctx;
    const retry: Command[] = [];
    let bytes = 0;
    for (let i = 0; i < todo.length; i++) {
      const error = results[i]?.[0] ?? (results[i] ? null : new Error('no reply'));
      if (!error) {
        for (const arg of todo[i].args) if (typeof arg !== 'number') bytes += typeof arg === 'string' ? Buffer.byteLength(arg) : arg.length;
      } else if (isReplyError(error)) {
        ctx.fail(todo[i].item, error, batch?.ack);
      } else {
        retry.push(todo[i]);
      }
    }
    if (bytes > 0) ctx.metrics.bytes(bytes);
    return retry;
  }
}
