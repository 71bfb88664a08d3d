/**
 * Where node state goes between runs: the snapshots that stateful nodes
 * (windows, aggregates, dedupe) save when they drain, loaded again when the
 * pipeline starts. In memory by default; a file, Redis or PostgreSQL when
 * configured, so a restarted process resumes where it stopped.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { redactUrl } from '../../native/redact-url.ts';

export interface StateStore {
  /** The snapshots saved for a pipeline, by node name (empty when none). */
  load(pipeline: string): Promise<Map<string, unknown>>;
  /** Replaces the saved snapshots of a pipeline. */
  save(pipeline: string, snapshots: ReadonlyMap<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/** Keeps state for the life of the process (reloads carry state through it). */
export class MemoryStateStore implements StateStore {
  #saved = new Map<string, Map<string, unknown>>();

  async load(pipeline: string): Promise<Map<string, unknown>> {
    return new Map(this.#saved.get(pipeline) ?? []);
  }

  async save(pipeline: string, snapshots: ReadonlyMap<string, unknown>): Promise<void> {
    this.#saved.set(pipeline, new Map(snapshots));
  }

  async close(): Promise<void> {}
}

/** One JSON file, replaced atomically on each save. */
export class FileStateStore implements StateStore {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  async #read(): Promise<Record<string, Record<string, unknown>>> {
    try {
      const saved = JSON.parse(await readFile(this.path, 'utf8')) as { pipelines?: Record<string, Record<string, unknown>> };
      return saved.pipelines ?? {};
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new Error(`cannot read state file \`${this.path}\`: ${(error as Error).message}`);
    }
  }

  async load(pipeline: string): Promise<Map<string, unknown>> {
    return new Map(Object.entries((await this.#read())[pipeline] ?? {}));
  }

  async save(pipeline: string, snapshots: ReadonlyMap<string, unknown>): Promise<void> {
    const all = await this.#read();
    all[pipeline] = Object.fromEntries(snapshots);
    await writeFile(`${this.path}.tmp`, JSON.stringify({ pipelines: all }));
    await rename(`${this.path}.tmp`, this.path);
  }

  async close(): Promise<void> {}
}

/**
 * Opens the store `--state` names: a `redis://` (`rediss://`) or
 * `postgres://` (`postgresql://`) URL, or a file path. The Redis and
 * PostgreSQL stores, and their client libraries, load only when named.
 */
export async function openStateStore(target: string): Promise<StateStore> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target)?.[1]?.toLowerCase();
  if (!scheme) return new FileStateStore(target);
  if (scheme === 'redis' || scheme === 'rediss') return (await import('./redis-store.ts')).RedisStateStore.open(target);
  if (scheme === 'postgres' || scheme === 'postgresql') return (await import('./postgres-store.ts')).PostgresStateStore.open(target);
  throw new Error(`no state store for \`${scheme}://\` (use a file path, \`redis://\`, \`rediss://\` or \`postgres://\`)`);
}

/**
 * Runs one command of a remote store, turning its failure into an error
 * that names what failed and where (password redacted).
 */
export async function storeCommand<T>(what: string, url: string, command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (error) {
    throw new Error(`cannot ${what} state at ${redactUrl(url)}: ${(error as Error).message}`);
  }
}
