/**
 * The table side of `pg.write`: reading a table's columns, creating it with
 * inferred types, converting record values for their columns, and building
 * parameterised multi-row INSERT statements. Record values only ever travel
 * as parameters; identifiers are always quoted.
 */
import type pg from 'pg';
import { toPlain } from '../../../runtime/api.ts';
import { quoteIdent, quoteTable } from '../../../native/postgres/client.ts';
import { ConfigurationError } from './retry.ts';

/** A table's columns, name to SQL type as PostgreSQL prints it (`timestamp with time zone`, `text[]`). */
export type Columns = Map<string, string>;

/** Reads the columns of `table` (resolved through the search path); empty when the table does not exist. */
export async function readColumns(client: pg.PoolClient, table: string): Promise<Columns> {
  const result = await client.query<{ name: string; type: string }>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
       from pg_attribute a
      where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped
      order by a.attnum`,
    [quoteTable(table)],
  );
  return new Map(result.rows.map((row) => [row.name, row.type]));
}

/** SQL types a user may write in `types`: a name of words, an optional `(n[, m])`, optional `[]`s. */
export const sqlTypePattern = /^[A-Za-z_][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])*$/;

const isoTimestamp = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/** A record value made plain for a parameter: CEL integers as numbers, maps as objects, dates and bytes kept. */
export function plainValue(value: unknown): unknown {
  if (value instanceof Date || value instanceof Uint8Array) return value;
  return toPlain(value);
}

/** The column type for one value, or undefined for null. */
function typeOfValue(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'bigint') return 'bigint';
  if (typeof value === 'number') return Number.isSafeInteger(value) ? 'bigint' : 'double precision';
  if (typeof value === 'string') return isoTimestamp.test(value) ? 'timestamptz' : 'text';
  if (value instanceof Date) return 'timestamptz';
  if (Buffer.isBuffer(value)) return 'bytea';
  return 'jsonb';
}

/**
 * The type of a new column from the values a first batch holds for it:
 * `boolean`; `bigint` when every number is an integer, else `double
 * precision`; `timestamptz` for ISO 8601 date-time strings, else `text`;
 * `jsonb` for lists and maps and for values of mixed kinds; `text` when
 * every value is null.
 */
export function inferColumnType(values: readonly unknown[]): string {
  let found: string | undefined;
  for (const value of values) {
    const type = typeOfValue(value);
    if (!type || type === found) continue;
    if (!found) found = type;
    else if ((found === 'bigint' && type === 'double precision') || (found === 'double precision' && type === 'bigint')) found = 'double precision';
    else if ((found === 'timestamptz' && type === 'text') || (found === 'text' && type === 'timestamptz')) found = 'text';
    else found = 'jsonb';
  }
  return found ?? 'text';
}

/** `CREATE TABLE IF NOT EXISTS`, with a primary key on the upsert's conflict columns. */
export function createTableSql(table: string, columns: Columns, primaryKey: readonly string[]): string {
  const definitions = [...columns].map(([name, type]) => `${quoteIdent(name)} ${type}`);
  if (primaryKey.length > 0) definitions.push(`primary key (${primaryKey.map(quoteIdent).join(', ')})`);
  return `create table if not exists ${quoteTable(table)} (${definitions.join(', ')})`;
}

function isPlainObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value) && !(value instanceof Uint8Array);
}

/**
 * A record value as a query parameter for a column of `type`: JSON text for
 * `json`/`jsonb` (so a string stays a JSON string), epoch milliseconds as a
 * date for timestamp and date columns, lists as arrays for array columns
 * and as JSON text elsewhere, maps as JSON text.
 */
export function columnValue(value: unknown, type: string | undefined): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  const lower = type?.toLowerCase() ?? '';
  if (lower === 'json' || lower === 'jsonb') return JSON.stringify(value);
  if (typeof value === 'number' && (lower.startsWith('timestamp') || lower === 'date' || lower === 'timestamptz')) return new Date(value);
  if (Array.isArray(value)) return lower.endsWith('[]') ? value : JSON.stringify(value);
  if (isPlainObject(value)) return JSON.stringify(value);
  return value;
}

/** What to do when a row's conflict columns match an existing row. */
export interface OnConflict {
  columns: string[];
  action: 'update' | 'nothing';
}

/** One row to insert: its values by column; a column missing from `values` gets its default. */
export interface Row<T = unknown> {
  source: T;
  values: Map<string, unknown>;
}

/** PostgreSQL's limit on parameters in one statement, with room to spare. */
const maxParameters = 65_000;

/**
 * Parameterised `INSERT ... VALUES (...), (...)` statements for `rows`, split
 * so none passes the parameter limit; missing values are `DEFAULT`.
 */
export function insertStatements(table: string, columns: readonly string[], types: Columns, rows: readonly Row[], onConflict?: OnConflict): { text: string; values: unknown[] }[] {
  const head = `insert into ${quoteTable(table)} (${columns.map(quoteIdent).join(', ')}) values `;
  let tail = '';
  if (onConflict) {
    const target = `(${onConflict.columns.map(quoteIdent).join(', ')})`;
    const updated = columns.filter((c) => !onConflict.columns.includes(c));
    tail = onConflict.action === 'update' && updated.length > 0
      ? ` on conflict ${target} do update set ${updated.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}`
      : ` on conflict ${target} do nothing`;
  }
  const statements: { text: string; values: unknown[] }[] = [];
  let tuples: string[] = [];
  let values: unknown[] = [];
  const flush = (): void => {
    if (tuples.length === 0) return;
    statements.push({ text: head + tuples.join(', ') + tail, values });
    tuples = [];
    values = [];
  };
  for (const row of rows) {
    if (values.length + columns.length > maxParameters) flush();
    const cells: string[] = [];
    for (const column of columns) {
      if (!row.values.has(column) || row.values.get(column) === undefined) {
        cells.push('default');
        continue;
      }
      values.push(columnValue(row.values.get(column), types.get(column)));
      cells.push(`$${values.length}`);
    }
    tuples.push(`(${cells.join(', ')})`);
  }
  flush();
  return statements;
}

/**
 * For an upsert that updates: the last row of each conflict key, in order,
 * since one statement may not update the same row twice (later records win,
 * as they would one by one).
 */
export function lastPerKey<T>(rows: readonly Row<T>[], keyColumns: readonly string[]): Row<T>[] {
  const last = new Map<string, number>();
  rows.forEach((row, index) => last.set(JSON.stringify(keyColumns.map((c) => row.values.get(c) ?? null)), index));
  const keep = new Set(last.values());
  return rows.filter((_, index) => keep.has(index));
}

/** Checks that every column the node writes exists in the table. */
export function checkColumns(table: string, existing: Columns, wanted: readonly string[]): void {
  const missing = wanted.filter((c) => !existing.has(c));
  if (missing.length > 0) {
    throw new ConfigurationError(`table \`${table}\` has no column ${missing.map((c) => `\`${c}\``).join(', ')} (its columns: ${[...existing.keys()].map((c) => `\`${c}\``).join(', ')})`);
  }
}
