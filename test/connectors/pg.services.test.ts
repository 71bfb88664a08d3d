/**
 * The PostgreSQL operators and state store against a real PostgreSQL on
 * loopback (`npm run services:start`), run through the engine: inserts,
 * upserts, table creation, acknowledgement after COMMIT, an outage under
 * backpressure, bad credentials, an unreachable server, and the cached
 * enrichment lookup.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pgQuery from '../../nodes/io/pg-query.ts';
import pgWrite from '../../nodes/io/pg-write.ts';
import { PostgresStateStore, stateTable } from '../../runtime/state/postgres-store.ts';
import { openStateStore } from '../../runtime/state/store.ts';
import type { EventRecord } from '../../runtime/api.ts';
import { capturingLogger, collector, service, serviceSetting, sleep, sources, startPipeline, unique, waitFor, checkCarriesAcrossRuns, checkSavesAndLoads } from './redis-pg-harness.ts';

const url = serviceSetting('STREAMS_PG_URL');
const operators = [pgWrite, pgQuery];
let db: pg.Pool;

beforeAll(async () => {
  db = new pg.Pool({ connectionString: url, max: 4 });
  // This test stops PostgreSQL: the test's own pool reconnects quietly.
  db.on('error', () => undefined);
  await db.query('select 1');
});

afterAll(async () => {
  await db.end();
});

async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query<T>(text, values)).rows;
}

async function count(table: string): Promise<number> {
  const [row] = await sql<{ n: string }>(`select count(*) as n from ${table}`);
  return Number(row.n);
}

/** A url with the password replaced. */
function withPassword(password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

function writePipeline(options: { table: string; source: string; count: number; batch?: number; rate?: number; keys?: number; with?: string; capacity?: number; url?: string; dlq?: string }): string {
  return `streams: 1
name: pg-write-test
nodes:
  src:
    op: test.source
    with: { name: ${options.source}, count: ${options.count}, batch: ${options.batch ?? 100}${options.rate ? `, rate: ${options.rate}` : ''}${options.keys ? `, keys: ${options.keys}` : ''} }
  out:
    op: pg.write
    in: src
    ${options.capacity ? `capacity: ${options.capacity}` : ''}
    with: { url: "${options.url ?? url}", table: ${options.table}${options.with ?? ''} }
${options.dlq ? `  dead:
    op: test.collect
    in: out.dlq
    with: { name: ${options.dlq} }
` : ''}`;
}

describe('pg.write', () => {
  it('inserts every record into an existing table, fields to columns of the same name', async () => {
    const table = unique('insert');
    await sql(`create table ${table} (i bigint primary key, key text, payload text, extra jsonb default '{"default": true}')`);
    const source = unique('src');
    const engine = startPipeline(writePipeline({ table, source, count: 2000 }), operators);
    await engine.done;
    expect(sources.get(source)!.acked).toBe(2000);
    expect(await count(table)).toBe(2000);
    const [row] = await sql(`select * from ${table} where i = 1234`);
    expect(row).toEqual({ i: '1234', key: 'k1234', payload: 'record 1234', extra: { default: true } });
    await sql(`drop table ${table}`);
  });

  it('upserts with on_conflict: `update` keeps the last record of each key, `nothing` the first', async () => {
    const latest = unique('latest');
    const first = unique('first');
    await sql(`create table ${latest} (key text primary key, last_i bigint, half double precision)`);
    await sql(`create table ${first} (key text primary key, last_i bigint, half double precision)`);
    const columns = `, columns: { key: key, last_i: i, half: "double(i) / 2.0" }`;
    for (const [table, action] of [[latest, 'update'], [first, 'nothing']]) {
      const source = unique('src');
      const engine = startPipeline(writePipeline({ table, source, count: 1000, keys: 10, with: `${columns}, on_conflict: { columns: [key], action: ${action} }` }), operators);
      await engine.done;
      expect(sources.get(source)!.acked).toBe(1000);
    }
    const last = await sql<{ key: string; last_i: string; half: number }>(`select * from ${latest} order by key`);
    expect(last).toHaveLength(10);
    expect(last.map((r) => Number(r.last_i)).sort((a, b) => a - b)).toEqual([990, 991, 992, 993, 994, 995, 996, 997, 998, 999]);
    expect(last.find((r) => r.key === 'k7')).toEqual({ key: 'k7', last_i: '997', half: 498.5 });
    const kept = await sql<{ last_i: string }>(`select * from ${first} order by key`);
    expect(kept.map((r) => Number(r.last_i)).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await sql(`drop table ${latest}, ${first}`);
  });

  it('creates a missing table with create_table, typed from `types` or inferred, keyed on the conflict columns', async () => {
    const table = unique('created');
    const source = unique('src');
    const engine = startPipeline(`streams: 1
name: pg-create
nodes:
  src:
    op: test.source
    with: { name: ${source}, count: 300 }
  shaped:
    op: map
    in: src
    with:
      set:
        even: "i % 2 == 0"
        third: "double(i) / 3.0"
        price: "double(i) / 4.0"
        at: '"2026-01-01T00:00:00Z"'
        tags: '["a", "b"]'
        meta: '{"x": i}'
  out:
    op: pg.write
    in: shaped
    with:
      url: "${url}"
      table: ${table}
      create_table: true
      types: { price: "numeric(10,2)" }
      on_conflict: { columns: [i] }
`, operators);
    await engine.done;
    expect(await count(table)).toBe(300);
    const types = await sql<{ column_name: string; data_type: string }>(
      `select column_name, data_type from information_schema.columns where table_name = $1 order by ordinal_position`,
      [table],
    );
    expect(Object.fromEntries(types.map((t) => [t.column_name, t.data_type]))).toEqual({
      i: 'bigint',
      key: 'text',
      payload: 'text',
      even: 'boolean',
      third: 'double precision',
      price: 'numeric',
      at: 'timestamp with time zone',
      tags: 'jsonb',
      meta: 'jsonb',
    });
    const [key] = await sql<{ column: string }>(
      `select a.attname as column from pg_index x join pg_attribute a on a.attrelid = x.indrelid and a.attnum = any(x.indkey) where x.indrelid = $1::regclass and x.indisprimary`,
      [table],
    );
    expect(key.column).toBe('i');
    const [row] = await sql(`select * from ${table} where i = 9`);
    expect(row).toMatchObject({ even: false, third: 3, price: '2.25', tags: ['a', 'b'], meta: { x: 9 } });
    expect((row.at as Date).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    await sql(`drop table ${table}`);
  });

  it('sends a record the database refuses to the dead-letter port while the rest of its batch commits', async () => {
    const table = unique('checked');
    await sql(`create table ${table} (i bigint check (i <> 13), key text, payload text)`);
    const source = unique('src');
    const dlq = unique('dlq');
    const engine = startPipeline(writePipeline({ table, source, count: 50, batch: 25, dlq }), operators);
    await engine.done;
    expect(await count(table)).toBe(49);
    const dead = collector(dlq).items as EventRecord[];
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ node: 'out', record: { i: 13 } });
    expect(dead[0].error).toContain('violates check constraint');
    expect(sources.get(source)!.acked).toBe(50);
    await sql(`drop table ${table}`);
  });

  it('makes a batch visible only at COMMIT, and acknowledges it only after', async () => {
    const table = unique('slow');
    await sql(`create table ${table} (i bigint, key text, payload text)`);
    // A statement trigger that sleeps holds the transaction open after the rows are inserted.
    await sql(`create function ${table}_sleep() returns trigger language plpgsql as $$ begin perform pg_sleep(1.5); return null; end $$`);
    await sql(`create trigger ${table}_sleep after insert on ${table} for each statement execute function ${table}_sleep()`);
    const source = unique('src');
    const engine = startPipeline(writePipeline({ table, source, count: 100, batch: 100 }), operators);
    const record = () => sources.get(source)!;
    let sawInsertRunning = false;
    const violations: string[] = [];
    while (record().acked === 0) {
      const ackedBefore = record().acked > 0;
      const visible = await count(table);
      const [activity] = await sql<{ n: string }>(`select count(*) as n from pg_stat_activity where application_name = 'ami-streams:out' and state = 'active' and query ilike 'insert into%'`);
      const running = Number(activity.n) > 0;
      if (visible !== 0 && visible !== 100) violations.push(`saw ${visible} of 100 rows: a batch must appear whole`);
      if (ackedBefore && visible !== 100) violations.push('acknowledged before the rows were committed');
      if (running) {
        sawInsertRunning = true;
        if (visible !== 0) violations.push('rows visible while the transaction was open');
      }
      await sleep(50);
    }
    await engine.done;
    expect(violations).toEqual([]);
    expect(sawInsertRunning).toBe(true);
    expect(await count(table)).toBe(100);
    await sql(`drop table ${table}`);
    await sql(`drop function ${table}_sleep`);
  });

  it('holds backpressure while PostgreSQL is stopped for 10 s, then writes everything', async () => {
    const table = unique('outage');
    await sql(`create table ${table} (i bigint, key text, payload text)`);
    const source = unique('src');
    const log = capturingLogger();
    const capacity = 1000;
    const total = 8000;
    const engine = startPipeline(writePipeline({ table, source, count: total, batch: 100, rate: 500, capacity }), operators, { log });
    const record = () => sources.get(source)!;
    await waitFor('a first thousand records written', () => record().acked >= 1000);
    const channel = engine.channels.find((c) => c.to === 'out')!;
    await service('stop', 'postgres');
    const stoppedAt = Date.now();
    const emittedAtStop = record().emitted;
    let maxDepth = 0;
    let emittedLate = 0;
    while (Date.now() - stoppedAt < 10_000) {
      maxDepth = Math.max(maxDepth, channel.depth);
      if (Date.now() - stoppedAt > 5_000 && !emittedLate) emittedLate = record().emitted;
      await sleep(100);
    }
    const emittedAtEnd = record().emitted;
    await service('start', 'postgres');
    await engine.done;
    const [{ rows, distinct }] = await sql<{ rows: string; distinct: string }>(`select count(*) as rows, count(distinct i) as distinct from ${table}`);
    console.info(
      `pg.write across a 10 s outage: ${total} in, ${distinct} distinct rows, ${Number(rows) - Number(distinct)} duplicates; ` +
        `channel depth at most ${maxDepth} of ${capacity}; the source emitted ${emittedAtEnd - emittedAtStop} records during the outage`,
    );
    // The source was paused: the channel stayed within its capacity, and after the first seconds nothing more came.
    expect(maxDepth).toBeLessThanOrEqual(capacity);
    expect(emittedAtEnd - emittedAtStop).toBeLessThanOrEqual(capacity + 200);
    expect(emittedAtEnd).toBe(emittedLate);
    expect(Number(distinct)).toBe(total);
    expect(record().acked).toBe(total);
    const errors = log.entries.filter((e) => e.level === 'error');
    expect(errors.length).toBeGreaterThan(2);
    expect(errors[0].message).toContain('node `out` (test.yaml:');
    expect(errors[0].message).toContain('postgres://streams:***@127.0.0.1:5432/streams');
    expect(JSON.stringify(log.entries)).not.toContain('streams:streams@');
    await sql(`drop table ${table}`);
  }, 120_000);

  for (const [name, target, reason] of [
    ['a wrong password', withPassword('hunter2'), 'password authentication failed'],
    ['an unreachable server at start', `postgres://streams:hunter2@127.0.0.1:5499/streams`, 'ECONNREFUSED'],
  ] as const) {
    it(`reports ${name} with the node and the redacted URL, retries with backoff, and does not crash`, async () => {
      const table = unique('never');
      const source = unique('src');
      const log = capturingLogger();
      const engine = startPipeline(writePipeline({ table, source, count: 100, url: target }), operators, { log });
      await waitFor('four failed attempts', () => log.entries.filter((e) => e.level === 'error').length >= 4, 15_000);
      const errors = log.entries.filter((e) => e.level === 'error');
      const redacted = target.replace('hunter2', '***');
      for (const error of errors) {
        expect(error.message).toContain('node `out` (test.yaml:7)');
        expect(error.message).toContain(redacted);
        expect(error.message).toContain(reason);
      }
      expect(JSON.stringify(log.entries)).not.toContain('hunter2');
      const delays = errors.map((e) => Number(e.fields.retryInMs));
      expect(delays[3]).toBeGreaterThan(delays[0]);
      const runner = engine.runners.get('out')!;
      expect(runner.stats.state).toBe('running');
      expect(runner.stats.restarts).toBe(0);
      expect(sources.get(source)!.acked).toBe(0);
      await engine.drain({ deadlineMs: 1_000 });
    });
  }
});

describe('pg.query', () => {
  let devices: string;
  let calls: string;

  beforeAll(async () => {
    devices = unique('devices');
    calls = unique('calls');
    await sql(`create table ${devices} (id text primary key, name text, site text)`);
    await sql(`insert into ${devices} select 'k' || n, 'device ' || n, 'site ' || (n % 3) from generate_series(0, 9) n`);
    await sql(`create sequence ${calls}`);
  });

  afterAll(async () => {
    await sql(`drop table ${devices}`);
    await sql(`drop sequence ${calls}`);
  });

  async function queriesRun(): Promise<number> {
    const [row] = await sql<{ last_value: string; is_called: boolean }>(`select last_value, is_called from ${calls}`);
    return row.is_called ? Number(row.last_value) : 0;
  }

  function queryPipeline(sink: string, settings: string): string {
    return `streams: 1
name: pg-query-test
nodes:
  src:
    op: test.source
    with: { name: ${unique('src')}, count: 1000, batch: 100, keys: 10 }
  lookup:
    op: pg.query
    in: src
    with: { url: "${url}", query: "select name, site, nextval('${calls}') as call from ${devices} where id = $1", params: [key]${settings} }
  sink:
    op: test.collect
    in: lookup
    with: { name: ${sink} }
`;
  }

  it('merges the first row into each record, querying each key once thanks to the cache', async () => {
    await sql(`alter sequence ${calls} restart`);
    const sink = unique('sink');
    const engine = startPipeline(queryPipeline(sink, ''), operators);
    await engine.done;
    const items = collector(sink).items as EventRecord[];
    expect(items).toHaveLength(1000);
    expect(items[123]).toMatchObject({ i: 123, key: 'k3', name: 'device 3', site: 'site 0' });
    const queries = await queriesRun();
    console.info(`pg.query: 1000 records over 10 keys took ${queries} queries with the cache`);
    expect(queries).toBe(10);
  });

  it('without a cache, queries once per distinct key per batch', async () => {
    await sql(`alter sequence ${calls} restart`);
    const sink = unique('sink');
    const engine = startPipeline(queryPipeline(sink, ', cache_size: 0'), operators);
    await engine.done;
    expect(collector(sink).items).toHaveLength(1000);
    expect(await queriesRun()).toBe(100);
  });

  it('puts every row in `into`, and sends a record whose parameter the database refuses to the dead-letter port', async () => {
    const sink = unique('sink');
    const dlq = unique('dlq');
    const engine = startPipeline(`streams: 1
name: pg-query-into
nodes:
  src:
    op: test.source
    with: { name: ${unique('src')}, count: 3, batch: 3 }
  lookup:
    op: pg.query
    in: src
    with: { url: "${url}", query: "select n from generate_series(1, $1::int) n", params: ["i == 1 ? 'x' : string(i + 1)"], into: rows }
  sink:
    op: test.collect
    in: lookup
    with: { name: ${sink} }
  dead:
    op: test.collect
    in: lookup.dlq
    with: { name: ${dlq} }
`, operators);
    await engine.done;
    expect((collector(sink).items as EventRecord[]).map((r) => r.rows)).toEqual([[{ n: 1 }], [{ n: 1 }, { n: 2 }, { n: 3 }]]);
    const dead = collector(dlq).items as EventRecord[];
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ record: { i: 1 } });
    expect(dead[0].error).toContain('invalid input syntax');
  });
});

describe('the PostgreSQL state store', () => {
  it('saves, loads and overwrites snapshots, keeping pipelines apart', async () => {
    const store = await PostgresStateStore.open(url);
    const a = unique('pipeline');
    const b = unique('pipeline');
    await checkSavesAndLoads(store, a, b);
    const [row] = await sql<{ updated_at: Date }>(`select updated_at from ${stateTable} where pipeline = $1`, [a]);
    expect(row.updated_at).toBeInstanceOf(Date);
    await store.close();
    await sql(`delete from ${stateTable} where pipeline = any($1)`, [[a, b]]);
  });

  it('carries a stateful node across runs through openStateStore, as `streams run --state postgres://...` does', async () => {
    const store = await openStateStore(url.replace(/^postgres:/, 'postgresql:'));
    const pipeline = unique('pipeline');
    await checkCarriesAcrossRuns(store, pipeline);
    await store.close();
    await sql(`delete from ${stateTable} where pipeline = $1`, [pipeline]);
  });

  it('fails to open with the URL, password redacted, on a wrong password', async () => {
    await expect(openStateStore(withPassword('hunter2'))).rejects.toThrow(/cannot open the PostgreSQL state store at postgres:\/\/streams:\*\*\*@127\.0\.0\.1:5432\/streams: password authentication failed/);
  });
});
