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
  /**
   * The state of one partition of a keyed node (`name` is
   * `NODE/TOPIC/pN`, see docs/keyed-state.md), or undefined when none was
   * saved. Kept apart from `save`'s snapshots: a save of the pipeline's
   * snapshots leaves it alone.
   */
  loadPartition(pipeline: string, name: string): Promise<PartitionSnapshot | undefined>;
  /**
   * Stores one partition's state unless the stored one is further along the
   * partition (a larger `position`), which a member that lost the partition
   * may not overwrite; resolves false then.
   */
  savePartition(pipeline: string, name: string, snapshot: PartitionSnapshot): Promise<boolean>;
  close(): Promise<void>;
}

/** The state of a keyed node for one partition, and how far along the partition it reaches. */
export interface PartitionSnapshot {
  /** The partition's next offset: the state holds every record below it and none above. */
  position: number;
  /** What the node's `snapshot` returned. */
  state: unknown;
}

/** Keeps state for the life of the process (reloads carry state through it). */
export class MemoryStateStore implements StateStore {
  #saved = new Map<string, Map<string, unknown>>();
  #partitions = new Map<string, PartitionSnapshot>();

  async load(pipeline: string): Promise<Map<string, unknown>> {
    return new Map(this.#saved.get(pipeline) ?? []);
  }

  async save(pipeline: string, snapshots: ReadonlyMap<string, unknown>): Promise<void> {
    this.#saved.set(pipeline, new Map(snapshots));
  }

  async loadPartition(pipeline: string, name: string): Promise<PartitionSnapshot | undefined> {
    const saved = this.#partitions.get(`${pipeline}/${name}`);
    // A copy, as a remote store would give: the node must not share objects with what is stored.
    return saved && structuredClone(saved);
  }

  async savePartition(pipeline: string, name: string, snapshot: PartitionSnapshot): Promise<boolean> {
    const key = `${pipeline}/${name}`;
    if ((this.#partitions.get(key)?.position ?? -1) > snapshot.position) return false;
    this.#partitions.set(key, structuredClone(snapshot));
    return true;
  }

  async close(): Promise<void> {}
}

/** What the state file holds: the pipelines' snapshots, and keyed nodes' partition states by `PIPELINE/NAME`. */
interface StateFile {
  pipelines: Record<string, Record<string, unknown>>;
  partitions: Record<string, PartitionSnapshot>;
}

/** One JSON file, replaced atomically on each save. */
export class FileStateStore implements StateStore {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  // Saves run one after another: two read-modify-writes at once would lose one.
  #writing: Promise<unknown> = Promise.resolve();

  async #read(): Promise<StateFile> {
    try {
      const saved = JSON.parse(await readFile(this.path, 'utf8')) as Partial<StateFile>;
      return { pipelines: saved.pipelines ?? {}, partitions: saved.partitions ?? {} };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { pipelines: {}, partitions: {} };
      throw new Error(`cannot read state file \`${this.path}\`: ${(error as Error).message}`);
    }
  }

  #update<T>(change: (file: StateFile) => T): Promise<T> {
    const next = this.#writing.then(async () => {
      const file = await this.#read();
      const result = change(file);
      await writeFile(`${this.path}.tmp`, JSON.stringify(file));
      await rename(`${this.path}.tmp`, this.path);
      return result;
    });
    this.#writing = next.catch(() => undefined);
    return next;
  }

  async load(pipeline: string): Promise<Map<string, unknown>> {
    return new Map(Object.entries((await this.#read()).pipelines[pipeline] ?? {}));
  }

  async save(pipeline: string, snapshots: ReadonlyMap<string, unknown>): Promise<void> {
    await this.#update((file) => {
      file.pipelines[pipeline] = Object.fromEntries(snapshots);
    });
  }

  async loadPartition(pipeline: string, name: string): Promise<PartitionSnapshot | undefined> {
    return (await this.#read()).partitions[`${pipeline}/${name}`];
  }

  async savePartition(pipeline: string, name: string, snapshot: PartitionSnapshot): Promise<boolean> {
    return this.#update((file) => {
      const key = `${pipeline}/${name}`;
      if ((file.partitions[key]?.position ?? -1) > snapshot.position) return false;
      file.partitions[key] = snapshot;
      return true;
    });
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
