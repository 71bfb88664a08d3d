/**
 * The PostgreSQL state store (`--state postgres://...`): the table
 * `streams_state(pipeline, node, snapshot jsonb, updated_at)`, created if
 * missing, one row per node; a save replaces a pipeline's rows in one
 * transaction.
 */
import type pg from 'pg';
import { openClient } from '../../native/postgres/client.ts';
import { redactUrl } from '../../native/redact-url.ts';
import { storeCommand, type PartitionSnapshot, type StateStore } from './store.ts';

/** The table the store keeps snapshots in. */
export const stateTable = 'streams_state';

const createTable = `create table if not exists ${stateTable} (
  pipeline text not null,
  node text not null,
  snapshot jsonb,
  updated_at timestamptz not null default now(),
  primary key (pipeline, node)
)`;

/** The table keyed nodes keep their partitions' states in. */
export const partitionStateTable = 'streams_partition_state';

const createPartitionTable = `create table if not exists ${partitionStateTable} (
  pipeline text not null,
  name text not null,
  position bigint not null,
  snapshot jsonb,
  updated_at timestamptz not null default now(),
  primary key (pipeline, name)
)`;

/** Snapshots in the `streams_state` table; open one with `PostgresStateStore.open(url)` or `openStateStore('postgres://...')`. */
export class PostgresStateStore implements StateStore {
  readonly url: string;
  readonly #client: pg.Client;

  /** Use `PostgresStateStore.open`, which connects and creates the table first. */
  constructor(url: string, client: pg.Client) {
    this.url = url;
    this.#client = client;
  }

  /** Connects to `url` and creates the table if missing; fails with the URL (password redacted) in the message. */
  static async open(url: string): Promise<PostgresStateStore> {
    let client: pg.Client | undefined;
    try {
      client = await openClient(url, 'ami-streams:state');
      await client.query(createTable);
      await client.query(createPartitionTable);
    } catch (error) {
      await client?.end().catch(() => undefined);
      throw new Error(`cannot open the PostgreSQL state store at ${redactUrl(url)}: ${(error as Error).message}`);
    }
    return new PostgresStateStore(url, client);
  }

  async load(pipeline: string): Promise<Map<string, unknown>> {
    const result = await storeCommand('load', this.url, () => this.#client.query<{ node: string; snapshot: unknown }>(`select node, snapshot from ${stateTable} where pipeline = $1`, [pipeline]));
    return new Map(result.rows.map((row) => [row.node, row.snapshot]));
  }

  async save(pipeline: string, snapshots: ReadonlyMap<string, unknown>): Promise<void> {
    const values: unknown[] = [pipeline];
    const tuples: string[] = [];
    for (const [node, snapshot] of snapshots) {
      values.push(node, JSON.stringify(snapshot ?? null));
      tuples.push(`($1, $${values.length - 1}, $${values.length}::jsonb, now())`);
    }
    await storeCommand('save', this.url, async () => {
      await this.#client.query('begin');
      try {
        await this.#client.query(`delete from ${stateTable} where pipeline = $1`, [pipeline]);
        if (tuples.length > 0) await this.#client.query(`insert into ${stateTable} (pipeline, node, snapshot, updated_at) values ${tuples.join(', ')}`, values);
        await this.#client.query('commit');
      } catch (error) {
        await this.#client.query('rollback').catch(() => undefined);
        throw error;
      }
    });
  }

  async loadPartition(pipeline: string, name: string): Promise<PartitionSnapshot | undefined> {
    const result = await storeCommand('load', this.url, () => this.#client.query<{ position: string; snapshot: unknown }>(`select position, snapshot from ${partitionStateTable} where pipeline = $1 and name = $2`, [pipeline, name]));
    const row = result.rows[0];
    return row && { position: Number(row.position), state: row.snapshot };
  }

  /** An upsert that leaves a row further along the partition as it is (the `where` of `on conflict`). */
  async savePartition(pipeline: string, name: string, snapshot: PartitionSnapshot): Promise<boolean> {
    const result = await storeCommand('save', this.url, () =>
      this.#client.query(
        `insert into ${partitionStateTable} (pipeline, name, position, snapshot, updated_at) values ($1, $2, $3, $4::jsonb, now())
         on conflict (pipeline, name) do update set position = excluded.position, snapshot = excluded.snapshot, updated_at = now()
         where ${partitionStateTable}.position <= excluded.position`,
        [pipeline, name, snapshot.position, JSON.stringify(snapshot.state ?? null)],
      ),
    );
    return (result.rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    await this.#client.end().catch(() => undefined);
  }

}

