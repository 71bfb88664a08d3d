import type pg from 'pg';
import { Observable } from 'rxjs';
import { compileExpression, defineOperator, expression, redactUrl, sinkBatches, z, type Batch, type CompiledExpression, type EventRecord, type NodeContext } from '../../runtime/api.ts';
import { isConnectionBroken, isRecordError, openPool, retrying, type PostgresPool } from '../../native/postgres/client.ts';
import { ConfigurationError, retryOptions } from './pg/retry.ts';
import { checkColumns, createTableSql, inferColumnType, insertStatements, lastPerKey, plainValue, readColumns, sqlTypePattern, type Columns, type Row } from './pg/table.ts';

const settings = z
  .object({
    url: z.string().min(1).meta({ description: 'The database, `postgres://user:password@host:port/database`; put the password in `${env:...}`.', examples: ['postgres://streams:${env:PG_PASSWORD}@127.0.0.1:5432/streams'] }),
    table: z.string().min(1).meta({ description: 'The table to insert into, optionally schema-qualified with a dot (`analytics.readings`).', examples: ['readings'] }),
    columns: z.record(z.string().min(1), expression()).optional().meta({ description: 'Column name to CEL expression over the record. Absent: each record field goes to the column of the same name (fields with no such column are left out, with a warning).', examples: [{ device: 'device', value: 'value * 1.0', seen_at: 'ts' }] }),
    on_conflict: z
      .object({
        columns: z.array(z.string().min(1)).min(1).meta({ description: 'The columns of the unique key (primary key or unique index) that identifies a row.', examples: [['device', 'window_start']] }),
        action: z.enum(['update', 'nothing']).default('update').meta({ description: '`update` overwrites the other columns of the existing row with the new values; `nothing` keeps the existing row.' }),
      })
      .optional()
      .meta({ description: 'Turns inserts into upserts (`INSERT ... ON CONFLICT`).', examples: [{ columns: ['device'], action: 'update' }] }),
    create_table: z.boolean().default(false).meta({ description: 'Create the table (`CREATE TABLE IF NOT EXISTS`) from the first batch when it does not exist: one column per mapped column or record field, typed from `types` or inferred, with a primary key on `on_conflict.columns`.' }),
    types: z.record(z.string().min(1), z.string().regex(sqlTypePattern)).optional().meta({ description: 'For `create_table`: SQL types of columns, overriding inference (`bigint`, `double precision`, `text`, `boolean`, `timestamptz`, `jsonb`, `numeric(10,2)`, ...).', examples: [{ value: 'double precision', seen_at: 'timestamptz' }] }),
  })
  .superRefine(function columnsKnown(value, issues) {
    const mapped = value.columns ? Object.keys(value.columns) : undefined;
    if (!mapped) return;
    for (const column of value.on_conflict?.columns ?? []) {
      if (!mapped.includes(column)) issues.addIssue({ code: 'custom', path: ['on_conflict', 'columns'], message: `conflict column \`${column}\` is not in \`columns\``, params: { code: 'bad_setting' } });
    }
    for (const column of Object.keys(value.types ?? {})) {
      if (!mapped.includes(column)) issues.addIssue({ code: 'custom', path: ['types', column], message: `\`types\` names \`${column}\`, which is not in \`columns\``, params: { code: 'bad_setting' } });
    }
  });

type Settings = z.infer<typeof settings>;

/** A record that the database refused, with the reason, reported once the batch has committed. */
type Refused = [record: unknown, error: unknown];

/**
 * `pg.write`: batched, parameterised INSERTs (or upserts) into a PostgreSQL
 * table, one transaction per batch, acknowledged only after COMMIT.
 */
export default defineOperator({
  name: 'pg.write',
  summary: 'Insert or upsert records into a PostgreSQL table, one transaction per batch.',
  doc: 'Writes each batch of records into `table` in one transaction, as parameterised multi-row INSERT statements (record values only ever travel as parameters; identifiers are quoted), and acknowledges the batch only after COMMIT, so a record is acknowledged only once it is in the table. The columns come from `columns` (column name to CEL expression over the record) or, by default, from the record\'s fields of the same names; a column a record lacks gets its default. Values are converted for their column: lists and maps to JSON (or to arrays for array columns), any value to JSON for `json`/`jsonb` columns, and numbers written to timestamp or date columns are read as epoch milliseconds. With `on_conflict`, rows whose key already exists update the other columns (`action: update`; within one batch the last record of a key wins) or are skipped (`nothing`). With `create_table: true` a missing table is created from the first batch: types from `types`, or inferred from the values (`boolean`; `bigint` when every number is an integer, else `double precision`; `timestamptz` for ISO 8601 date-time strings, else `text`; `jsonb` for lists, maps and mixed values) — declare `types` for columns whose first values could mislead, such as averages that happen to be whole. A record the database refuses (bad data, a violated constraint) goes to the dead-letter port while the rest of its batch commits. A lost connection, an unreachable server, a wrong password or a missing table is logged as an error naming the node and the URL (password redacted) and retried with backoff: the batch waits, so backpressure holds upstream, and nothing is acknowledged until it is written. A batch whose COMMIT was cut off may be written again (at-least-once; upserts make that harmless).',
  inputs: { in: { type: 'Event', doc: 'Records to write.' } },
  outputs: {},
  settings,
  example: { url: 'postgres://streams:${env:PG_PASSWORD}@127.0.0.1:5432/streams', table: 'readings', on_conflict: { columns: ['device'], action: 'update' } },
  create(ctx) {
    const mapping = ctx.settings.columns ? Object.entries(ctx.settings.columns).map(([column, text]) => [column, compileExpression(text)] as const) : undefined;
    return function pgWriteNode(input) {
      return new Observable<Batch>((subscriber) => {
        const session = new PgWriteSession(ctx, mapping);
        const subscription = sinkBatches<EventRecord>(
          (items, batch) => session.write(items, batch),
          () => session.end(),
        )(input).subscribe(subscriber);
        ctx.log.debug({ url: redactUrl(ctx.settings.url), table: ctx.settings.table }, 'pg.write started');
        return function stopPgWrite() {
          session.cancel();
          subscription.unsubscribe();
          void session.end();
        };
      });
    };
  },
});

/** Column name to its compiled expression, from `columns`. */
type Mapping = readonly (readonly [column: string, expr: CompiledExpression])[];

/**
 * One run of a `pg.write` node: a one-connection pool, the table's columns
 * once read (or created), and the batches written through it in transactions,
 * retried with backoff until written or cancelled.
 */
class PgWriteSession {
  readonly #ctx: NodeContext<Settings>;
  readonly #mapping: Mapping | undefined;
  readonly #pool: PostgresPool;
  // Ends the retries when this subscription ends, whether or not the node is being forced.
  readonly #stopped = new AbortController();
  readonly #signal: AbortSignal;
  readonly #startup: Promise<void>;
  #ended = false;
  /** The table's columns, once read; forgotten after a failure so a fixed table is read again. */
  #known: Columns | undefined;
  readonly #warned = new Set<string>();

  constructor(ctx: NodeContext<Settings>, mapping: Mapping | undefined) {
    this.#ctx = ctx;
    this.#mapping = mapping;
    this.#pool = openPool(ctx, ctx.settings.url, 1);
    this.#signal = AbortSignal.any([ctx.signal, this.#stopped.signal]);
    this.#startup = retrying(ctx, retryOptions(ctx, ctx.settings.url, this.#signal), `connecting to table \`${ctx.settings.table}\``, () => this.#connect());
    this.#startup.catch(() => undefined);
  }

  /** Writes one batch (after the start-up check), sending records that cannot become rows or that the database refuses to `ctx.fail`. */
  async write(items: EventRecord[], batch?: Batch): Promise<void> {
    const ctx = this.#ctx;
    const s = ctx.settings;
    await this.#startup;
    let rows: Row[] = [];
    for (const item of items) {
      try {
        rows.push(this.#rowOf(item));
      } catch (error) {
        ctx.fail(item, error, batch?.ack);
      }
    }
    if (rows.length === 0) return;
    if (s.on_conflict?.action === 'update') rows = lastPerKey(rows, s.on_conflict.columns);
    const refused = await retrying(ctx, retryOptions(ctx, s.url, this.#signal), `writing ${rows.length} rows to \`${s.table}\``, () => this.#attempt(rows));
    let bytes = 0;
    for (const row of rows) for (const value of row.values.values()) bytes += typeof value === 'string' ? value.length : 8;
    ctx.metrics.bytes(bytes);
    for (const [record, error] of refused) ctx.fail(record, error, batch?.ack);
  }

  /** Stops the retries in progress. */
  cancel(): void {
    this.#stopped.abort();
  }

  /** Closes the pool, once. */
  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#pool.end().catch(() => undefined);
  }

  /** The start-up check: reads the table's columns (or finds it missing). */
  async #connect(): Promise<void> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await this.#prepare(client);
    } catch (error) {
      if (isConnectionBroken(error)) broken = error as Error;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** A record as a row: its mapped values, or all its fields (filtered to the table's columns later). */
  #rowOf(record: EventRecord): Row {
    const values = new Map<string, unknown>();
    if (this.#mapping) for (const [column, expr] of this.#mapping) values.set(column, plainValue(expr(record)));
    else for (const [field, value] of Object.entries(record)) values.set(field, plainValue(value));
    return { source: record, values };
  }

  /** Reads (and with `create_table`, creates from `rows`) the table; undefined while it waits for rows to create it from. */
  async #prepare(client: pg.PoolClient, rows?: readonly Row[]): Promise<Columns | undefined> {
    if (this.#known) return this.#known;
    const ctx = this.#ctx;
    const mapping = this.#mapping;
    const s = ctx.settings;
    let columns = await readColumns(client, s.table);
    if (columns.size === 0) {
      if (!s.create_table) throw new ConfigurationError(`table \`${s.table}\` does not exist (create it, or set \`create_table: true\`)`);
      if (!rows) return undefined;
      const planned: Columns = new Map();
      const names = mapping ? mapping.map(([column]) => column) : [...new Set(rows.flatMap((row) => [...row.values.keys()]))];
      for (const name of names) planned.set(name, s.types?.[name] ?? inferColumnType(rows.map((row) => row.values.get(name))));
      await client.query(createTableSql(s.table, planned, s.on_conflict?.columns ?? []));
      ctx.log.info({ table: s.table, columns: Object.fromEntries(planned) }, `${ctx.label}: created table \`${s.table}\``);
      columns = await readColumns(client, s.table);
    }
    if (mapping) checkColumns(s.table, columns, mapping.map(([column]) => column));
    if (s.on_conflict) checkColumns(s.table, columns, s.on_conflict.columns);
    this.#known = columns;
    return columns;
  }

  /** The columns one statement writes: the mapped ones, or the table's columns some record of the batch has. */
  #statementColumns(table: Columns, rows: readonly Row[]): string[] {
    const ctx = this.#ctx;
    const mapping = this.#mapping;
    const s = ctx.settings;
    if (mapping) return mapping.map(([column]) => column);
    const present = new Set<string>();
    for (const row of rows) for (const field of row.values.keys()) present.add(field);
    for (const field of present) {
      if (table.has(field) || this.#warned.has(field)) continue;
      this.#warned.add(field);
      ctx.log.warn({ table: s.table, field }, `${ctx.label}: records carry field \`${field}\`, which table \`${s.table}\` has no column for; it is not written`);
    }
    return [...table.keys()].filter((column) => present.has(column));
  }

  /** One row at a time under savepoints, after a batch failed on some record's values: the good rows commit. */
  async #isolate(client: pg.PoolClient, table: Columns, columns: string[], rows: readonly Row[]): Promise<Refused[]> {
    const s = this.#ctx.settings;
    const refused: Refused[] = [];
    await client.query('begin');
    for (const row of rows) {
      const [statement] = insertStatements(s.table, columns, table, [row], s.on_conflict);
      await client.query('savepoint streams_row');
      try {
        await client.query(statement);
        await client.query('release savepoint streams_row');
      } catch (error) {
        if (!isRecordError(error)) throw error;
        await client.query('rollback to savepoint streams_row');
        refused.push([row.source, error]);
      }
    }
    await client.query('commit');
    return refused;
  }

  /** One attempt at the whole batch on one connection; throws what should be retried. */
  async #attempt(rows: readonly Row[]): Promise<Refused[]> {
    const s = this.#ctx.settings;
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    let open = false;
    try {
      const table = (await this.#prepare(client, rows))!;
      const columns = this.#statementColumns(table, rows);
      if (columns.length === 0) {
        return rows.map((row) => [row.source, new Error(`no field of the record matches a column of table \`${s.table}\``)] as Refused);
      }
      await client.query('begin');
      open = true;
      try {
        for (const statement of insertStatements(s.table, columns, table, rows, s.on_conflict)) await client.query(statement);
        await client.query('commit');
        open = false;
        return [];
      } catch (error) {
        if (!isRecordError(error)) throw error;
        await client.query('rollback');
        open = false;
        return await this.#isolate(client, table, columns, rows);
      }
    } catch (error) {
      this.#known = undefined;
      if (isConnectionBroken(error)) broken = error as Error;
      else if (open) await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
