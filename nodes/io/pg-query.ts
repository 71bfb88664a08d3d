import { LRUCache } from 'lru-cache';
import { Observable } from 'rxjs';
import { compileExpression, defineOperator, duration, expression, perBatchAsync, z, type Batch, type CompiledExpression, type EventRecord, type NodeContext } from '../../runtime/api.ts';
import { isConnectionBroken, isRecordError, openPool, retrying, type PostgresPool } from '../../native/postgres/client.ts';
import { retryOptions } from './pg/retry.ts';
import { columnValue, plainValue } from './pg/table.ts';

const settings = z.object({
  url: z.string().min(1).meta({ description: 'The database, `postgres://user:password@host:port/database`; put the password in `${env:...}`.', examples: ['postgres://streams:${env:PG_PASSWORD}@127.0.0.1:5432/streams'] }),
  query: z.string().min(1).meta({ description: 'The SQL to run per record, with `$1`, `$2`, ... standing for `params`.', examples: ['select name, site from devices where id = $1'] }),
  params: z.array(expression()).default([]).meta({ description: 'CEL expressions over the record giving `$1`, `$2`, ... in order.', examples: [['device']] }),
  into: z.string().min(1).optional().meta({ description: 'The field that receives every row, as a list of maps. Absent: the first row\'s columns are merged into the record (a record with no row passes unchanged).', examples: ['device_info'] }),
  cache_size: z.number().int().nonnegative().default(10_000).meta({ description: 'Results kept for repeated parameters, least recently used dropped first; 0 turns the cache off.', examples: [100_000] }),
  cache_ttl: duration().prefault('1m').meta({ description: 'How long a cached result stays valid.', examples: ['10m'] }),
  connections: z.number().int().min(1).max(64).default(4).meta({ description: 'Queries run at the same time at most (the connection pool\'s size).', examples: [8] }),
});

type Settings = z.infer<typeof settings>;

/** A cached result: the rows (possibly none) for one set of parameters. */
interface Cached {
  rows: Record<string, unknown>[];
}

/**
 * `pg.query`: enriches each record with the result of a parameterised
 * query, with a bounded LRU cache of results.
 */
export default defineOperator({
  name: 'pg.query',
  summary: 'Enrich records with the result of a PostgreSQL query, with an LRU cache.',
  doc: 'Runs `query` for each record, with `$1..$n` bound to the values of the `params` expressions over the record (always as parameters, never spliced into the SQL), and merges the result into the record: the first row\'s columns (a record with no row passes unchanged), or every row as a list of maps in the field `into`. Results are cached by their parameters in a least-recently-used cache of at most `cache_size` entries, each valid for `cache_ttl`, and one batch runs one query per distinct set of parameters, at most `connections` at a time; each batch is handled whole before the next comes in, so the input channel, not memory, holds what waits. Column values come as the `pg` driver returns them: `bigint` and `numeric` as strings (exact), timestamps as dates, `json`/`jsonb` parsed. A record whose parameter expression fails, or whose values the database refuses (bad input for a type), goes to the dead-letter port. A lost connection, an unreachable server, a wrong password or a broken query is logged as an error naming the node and the URL (password redacted) and retried with backoff while the batch waits.',
  inputs: { in: { type: 'Event', doc: 'Records to enrich.' } },
  outputs: { out: { type: 'Event', doc: 'The records with the query\'s result merged in.' } },
  settings,
  paced: true,
  example: { url: 'postgres://streams:${env:PG_PASSWORD}@127.0.0.1:5432/streams', query: 'select name, site from devices where id = $1', params: ['device'] },
  create(ctx) {
    const params = ctx.settings.params.map((text) => compileExpression(text));
    return function pgQueryNode(input) {
      return new Observable<Batch>((subscriber) => {
        const session = new PgQuerySession(ctx, params);
        const subscription = perBatchAsync<EventRecord, EventRecord>(ctx, (items, batch) => session.enrich(items, batch))(input).subscribe(subscriber);
        return function stopPgQuery() {
          session.cancel();
          subscription.unsubscribe();
          session.end();
        };
      });
    };
  },
});

/** What one distinct set of parameters gave: its rows, or a record-level error to dead-letter. */
type Outcome = Cached | { error: unknown };

/**
 * One run of a `pg.query` node: a connection pool, the result cache, and
 * the lookups that enrich each batch, retried with backoff until they
 * answer or the run is cancelled.
 */
class PgQuerySession {
  readonly #ctx: NodeContext<Settings>;
  readonly #params: readonly CompiledExpression[];
  readonly #pool: PostgresPool;
  readonly #stopped = new AbortController();
  readonly #signal: AbortSignal;
  readonly #cache: LRUCache<string, Cached> | undefined;
  readonly #startup: Promise<void>;

  constructor(ctx: NodeContext<Settings>, params: readonly CompiledExpression[]) {
    const s = ctx.settings;
    this.#ctx = ctx;
    this.#params = params;
    this.#pool = openPool(ctx, s.url, s.connections);
    this.#signal = AbortSignal.any([ctx.signal, this.#stopped.signal]);
    this.#cache = s.cache_size > 0 ? new LRUCache<string, Cached>({ max: s.cache_size, ttl: s.cache_ttl > 0 ? s.cache_ttl : undefined }) : undefined;
    // Connect at start, so an unreachable server or a wrong password is reported before the first record.
    this.#startup = retrying(ctx, retryOptions(ctx, s.url, this.#signal), 'connecting', async () => {
      const client = await this.#pool.connect();
      client.release();
    });
    this.#startup.catch(() => undefined);
  }

  /** The batch's records with their results merged in; one query per distinct set of parameters not in the cache. */
  async enrich(items: EventRecord[], batch: Batch): Promise<EventRecord[]> {
    const ctx = this.#ctx;
    const s = ctx.settings;
    const cache = this.#cache;
    await this.#startup;
    const keys: (string | undefined)[] = new Array(items.length);
    const wanted = new Map<string, unknown[]>();
    const results = new Map<string, Outcome>();
    for (let i = 0; i < items.length; i++) {
      let values: unknown[];
      try {
        values = this.#params.map((expr) => columnValue(plainValue(expr(items[i])), undefined));
      } catch (error) {
        ctx.fail(items[i], error, batch.ack);
        continue;
      }
      const key = JSON.stringify(values);
      keys[i] = key;
      if (results.has(key) || wanted.has(key)) continue;
      const hit = cache?.get(key);
      if (hit) results.set(key, hit);
      else wanted.set(key, values);
    }
    await Promise.all(
      [...wanted].map(async ([key, values]) => {
        const result = await this.#lookup(values);
        results.set(key, result);
        if ('rows' in result) cache?.set(key, result);
      }),
    );
    const out: EventRecord[] = [];
    for (let i = 0; i < items.length; i++) {
      const key = keys[i];
      if (key === undefined) continue;
      const result = results.get(key)!;
      if ('error' in result) {
        ctx.fail(items[i], result.error, batch.ack);
        continue;
      }
      if (s.into !== undefined) out.push({ ...items[i], [s.into]: result.rows.map((row) => ({ ...row })) });
      else out.push(result.rows.length > 0 ? { ...items[i], ...result.rows[0] } : items[i]);
    }
    return out;
  }

  /** Stops the retries in progress. */
  cancel(): void {
    this.#stopped.abort();
  }

  /** Closes the pool. */
  end(): void {
    void this.#pool.end().catch(() => undefined);
  }

  /** Runs the query once for `values`: the rows, or a record-level error to dead-letter. */
  #lookup(values: unknown[]): Promise<Outcome> {
    const ctx = this.#ctx;
    return retrying(ctx, retryOptions(ctx, ctx.settings.url, this.#signal), 'the lookup query', async () => {
      const client = await this.#pool.connect();
      let broken: Error | undefined;
      try {
        const result = await client.query(ctx.settings.query, values);
        return { rows: result.rows as Record<string, unknown>[] };
      } catch (error) {
        if (isRecordError(error)) return { error };
        if (isConnectionBroken(error)) broken = error as Error;
        throw error;
      } finally {
        client.release(broken);
      }
    });
  }
}
