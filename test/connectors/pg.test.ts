/**
 * The PostgreSQL operators without a server: settings checks, and the SQL they build — parameterised, identifiers quoted, split
 * under the parameter limit — with the type inference of `create_table`.
 */
import { describe, expect, it } from 'vitest';
import pgQuery from '../../nodes/io/pg-query.ts';
import pgWrite from '../../nodes/io/pg-write.ts';
import { isConnectionBroken, isRecordError, quoteIdent, quoteTable } from '../../native/postgres/client.ts';
import { redactUrl } from '../../native/redact-url.ts';
import { columnValue, createTableSql, inferColumnType, insertStatements, lastPerKey, sqlTypePattern, type Columns, type Row } from '../../nodes/io/pg/table.ts';


describe('pg settings', () => {
  it('applies defaults', () => {
    expect(pgWrite.settings.parse({ url: 'postgres://h/db', table: 't', on_conflict: { columns: ['id'] } })).toMatchObject({ create_table: false, on_conflict: { columns: ['id'], action: 'update' } });
    expect(pgQuery.settings.parse({ url: 'postgres://h/db', query: 'select 1' })).toMatchObject({ params: [], cache_size: 10_000, cache_ttl: 60_000, connections: 4 });
  });

  it('refuses conflict columns and types for columns the mapping does not write', () => {
    const result = pgWrite.settings.safeParse({ url: 'u', table: 't', columns: { a: 'a' }, on_conflict: { columns: ['b'] }, types: { c: 'text' } });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.message)).toEqual(['conflict column `b` is not in `columns`', '`types` names `c`, which is not in `columns`']);
  });

  it.each([['double precision', true], ['numeric(10, 2)', true], ['text[]', true], ['timestamp with time zone', true], ['text; drop table x', false], ['int)', false]])('accepts %s as a SQL type: %s', (type, ok) => {
    expect(sqlTypePattern.test(type)).toBe(ok);
  });
});

describe('identifiers', () => {
  it('quotes every identifier, doubling embedded quotes', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('Robert\'); drop table students; --')).toBe('"Robert\'); drop table students; --"');
    expect(quoteTable('analytics.readings')).toBe('"analytics"."readings"');
  });
});

function row(values: Record<string, unknown>): Row {
  return { source: values, values: new Map(Object.entries(values)) };
}

describe('insertStatements', () => {
  const types: Columns = new Map([['id', 'bigint'], ['name', 'text'], ['meta', 'jsonb'], ['at', 'timestamp with time zone']]);

  it('builds one parameterised multi-row INSERT, with DEFAULT for missing values', () => {
    const [statement, ...rest] = insertStatements('t', ['id', 'name'], types, [row({ id: 1, name: "it's" }), row({ id: 2 })]);
    expect(rest).toEqual([]);
    expect(statement).toEqual({ text: 'insert into "t" ("id", "name") values ($1, $2), ($3, default)', values: [1, "it's", 2] });
  });

  it('never puts record values in the SQL text', () => {
    const evil = "x'); drop table t; --";
    const [statement] = insertStatements('t', ['name'], types, [row({ name: evil })]);
    expect(statement.text).not.toContain('drop');
    expect(statement.values).toEqual([evil]);
  });

  it('upserts: `update` sets the other columns from EXCLUDED, `nothing` skips', () => {
    expect(insertStatements('t', ['id', 'name'], types, [row({ id: 1, name: 'a' })], { columns: ['id'], action: 'update' })[0].text).toBe(
      'insert into "t" ("id", "name") values ($1, $2) on conflict ("id") do update set "name" = excluded."name"',
    );
    expect(insertStatements('t', ['id', 'name'], types, [row({ id: 1, name: 'a' })], { columns: ['id'], action: 'nothing' })[0].text).toBe(
      'insert into "t" ("id", "name") values ($1, $2) on conflict ("id") do nothing',
    );
    expect(insertStatements('t', ['id'], types, [row({ id: 1 })], { columns: ['id'], action: 'update' })[0].text).toBe('insert into "t" ("id") values ($1) on conflict ("id") do nothing');
  });

  it('splits a batch so no statement passes the parameter limit', () => {
    const columns = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const rows = Array.from({ length: 20_000 }, (_, i) => row(Object.fromEntries(columns.map((c) => [c, i]))));
    const statements = insertStatements('t', columns, new Map(), rows);
    expect(statements.length).toBe(4);
    expect(statements.every((s) => s.values.length <= 65_000)).toBe(true);
    expect(statements.reduce((n, s) => n + s.values.length, 0)).toBe(200_000);
  });

  it('converts values for their columns', () => {
    const [statement] = insertStatements('t', ['meta', 'at', 'name'], types, [row({ meta: 'text', at: 0, name: { a: [1] } })]);
    expect(statement.values).toEqual(['"text"', new Date(0), '{"a":[1]}']);
  });
});

describe('columnValue', () => {
  it.each([
    [null, 'text', null],
    [[1, 2], 'integer[]', [1, 2]],
    [[1, 2], 'text', '[1,2]'],
    [{ a: 1 }, 'json', '{"a":1}'],
    [1700000000000, 'date', new Date(1700000000000)],
    ['2026-01-01', 'timestamp without time zone', '2026-01-01'],
    [true, undefined, true],
  ])('%j for %s', (value, type, expected) => {
    expect(columnValue(value, type)).toEqual(expected);
  });

  it('sends big integers as exact text', () => {
    expect(columnValue(2n ** 70n, 'numeric')).toBe('1180591620717411303424');
  });
});

describe('inferColumnType', () => {
  it.each([
    [[true, false], 'boolean'],
    [[1, 2, null], 'bigint'],
    [[1, 2.5], 'double precision'],
    [['a'], 'text'],
    [['2026-01-01T10:00:00Z', '2026-01-01 10:00:00.123+02:00'], 'timestamptz'],
    [['2026-01-01T10:00:00Z', 'later'], 'text'],
    [[[1]], 'jsonb'],
    [[{ a: 1 }], 'jsonb'],
    [[1, 'a'], 'jsonb'],
    [[new Date()], 'timestamptz'],
    [[Buffer.from('x')], 'bytea'],
    [[null, undefined], 'text'],
  ])('%j -> %s', (values, type) => {
    expect(inferColumnType(values)).toBe(type);
  });

  it('creates the table with quoted names and a primary key', () => {
    expect(createTableSql('s.t', new Map([['id', 'bigint'], ['a"b', 'text']]), ['id'])).toBe('create table if not exists "s"."t" ("id" bigint, "a""b" text, primary key ("id"))');
  });
});

describe('lastPerKey', () => {
  it('keeps the last row of each key, in order', () => {
    const rows = [row({ k: 'a', v: 1 }), row({ k: 'b', v: 2 }), row({ k: 'a', v: 3 })];
    expect(lastPerKey(rows, ['k']).map((r) => r.values.get('v'))).toEqual([2, 3]);
  });
});

describe('errors', () => {
  it('tells record errors from connection and configuration errors', () => {
    expect(isRecordError({ code: '23505' })).toBe(true);
    expect(isRecordError({ code: '22P02' })).toBe(true);
    expect(isRecordError({ code: '42P01' })).toBe(false);
    expect(isRecordError({ code: '28P01' })).toBe(false);
    expect(isRecordError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isConnectionBroken(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionBroken({ code: '57P01' })).toBe(true);
    expect(isConnectionBroken({ code: '23505' })).toBe(false);
  });

  it('redacts the password of a URL', () => {
    expect(redactUrl('postgres://streams:secret@127.0.0.1:5432/streams')).toBe('postgres://streams:***@127.0.0.1:5432/streams');
  });
});
