/**
 * The object store as a folder: the default when no S3 server is
 * configured, and what hosts sharing a file system (NFS, a bind mount) can
 * use between them. A key is a path below the folder; content types come
 * from the key's extension (a folder keeps no metadata) and the ETag from
 * the file's size and modification time.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { contentTypeOf, keyProblem, normalisePrefix } from './object-key.ts';
import { ObjectStoreError, type ByteRange, type ObjectBody, type ObjectInfo, type ObjectStore, type PutOptions } from './object-store.ts';

/** Files being written are named so; `list` skips them and a reader never opens one. */
const partialMark = '.partial-';

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: unknown) => {
      if (errnoOf(error) === 'ENOENT') return false;
      throw error;
    },
  );
}

/**
 * Opens the folder `path` (relative paths from `base`, the current folder
 * by default) as an object store. The folder is created on the first write.
 */
export function openFolderStore(path: string, { base = process.cwd(), prefix = '' }: { base?: string; prefix?: string } = {}): ObjectStore {
  const root = resolve(base, path);
  const below = normalisePrefix(prefix);
  // Messages name the folder the keys are relative to, prefix included.
  const where = `folder ${below === '' ? root : join(root, ...below.split('/').filter(Boolean))}`;

  function fileOf(key: string): string {
    const problem = keyProblem(key);
    if (problem !== undefined) throw new ObjectStoreError('bad_object_key', `${where}: ${problem}`);
    return join(root, ...`${below}${key}`.split('/'));
  }

  function failure(action: string, key: string, error: unknown): ObjectStoreError {
    if (error instanceof ObjectStoreError) return error;
    const code = errnoOf(error);
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return new ObjectStoreError('object_not_found', `${where}: no object \`${key}\``, { cause: error });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new ObjectStoreError('object_access_denied', `${where}: cannot ${action} \`${key}\`: permission denied`, { cause: error });
    return new ObjectStoreError('object_store_failed', `${where}: cannot ${action} \`${key}\`: ${(error as Error).message}`, { cause: error });
  }

  /** The folder below which keys live; `delete` prunes emptied folders up to it, never it. */
  const top = join(root, ...below.split('/').filter(Boolean));

  /**
   * Opens `partial` for writing, making its folder. A `delete` may prune
   * that folder between the two (it was empty), so a vanished folder is
   * made again, a few times.
   */
  async function openBeside(partial: string) {
    for (let attempt = 0; ; attempt++) {
      await mkdir(dirname(partial), { recursive: true });
      try {
        return await open(partial, 'w');
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT' || attempt >= 3) throw error;
      }
    }
  }

  /** Removes the folders of `file` that its removal left empty, up to the store's own. */
  async function pruneAbove(file: string): Promise<void> {
    for (let folder = dirname(file); folder !== top && folder.startsWith(top + sep); folder = dirname(folder)) {
      try {
        await rmdir(folder);
      } catch (error) {
        // Not empty (another object, or a write just made it) or already gone: nothing more to prune.
        if (['ENOTEMPTY', 'EEXIST', 'ENOENT'].includes(errnoOf(error) ?? '')) return;
        throw error;
      }
    }
  }

  function infoOf(key: string, size: number, mtimeMs: number): ObjectInfo {
    return { key, size, etag: `${size.toString(16)}-${Math.floor(mtimeMs * 1000).toString(16)}`, contentType: contentTypeOf(key), modified: mtimeMs };
  }

  return {
    where,
    async put(key: string, body: Uint8Array, _options?: PutOptions): Promise<ObjectInfo> {
      const file = fileOf(key);
      // Written aside, then renamed: a reader sees the old object or the whole new one, never a part.
      const partial = join(dirname(file), `${partialMark}${randomBytes(6).toString('hex')}`);
      try {
        const handle = await openBeside(partial);
        try {
          await handle.writeFile(body);
        } finally {
          await handle.close();
        }
        await rename(partial, file);
        const stats = await stat(file);
        return infoOf(key, stats.size, stats.mtimeMs);
      } catch (error) {
        await rm(partial, { force: true });
        throw failure('write', key, error);
      }
    },

    async get(key: string, options: { range?: ByteRange } = {}): Promise<ObjectBody> {
      const file = fileOf(key);
      try {
        const stats = await stat(file);
        if (!stats.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
        const info = infoOf(key, stats.size, stats.mtimeMs);
        const range = options.range;
        let start = 0;
        let end = stats.size - 1;
        if (range !== undefined) {
          if (range.start >= stats.size || (range.end !== undefined && range.end < range.start)) {
            throw new ObjectStoreError('bad_object_range', `${where}: range ${range.start}-${range.end ?? ''} is outside \`${key}\` (${stats.size} bytes)`);
          }
          start = range.start;
          end = Math.min(range.end ?? end, end);
        }
        const length = Math.max(0, end - start + 1);
        // An empty file has no byte to read: createReadStream with end -1 would read it all.
        const stream = length === 0 ? undefined : createReadStream(file, { start, end });
        const empty = (async function* emptyBody() {})();
        return { ...info, length, body: stream ?? empty, cancel: () => stream?.destroy() };
      } catch (error) {
        throw failure('read', key, error);
      }
    },

    async head(key: string): Promise<ObjectInfo | undefined> {
      const file = fileOf(key);
      try {
        const stats = await stat(file);
        return stats.isFile() ? infoOf(key, stats.size, stats.mtimeMs) : undefined;
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return undefined;
        throw failure('read', key, error);
      }
    },

    async list(prefix = ''): Promise<ObjectInfo[]> {
      const found: ObjectInfo[] = [];
      let entries;
      for (let attempt = 0; entries === undefined; attempt++) {
        try {
          entries = await readdir(top, { recursive: true, withFileTypes: true });
        } catch (error) {
          if (errnoOf(error) !== 'ENOENT') throw failure('list', prefix, error);
          if (!(await exists(top))) return [];
          // A folder below was pruned (its last object deleted) while being read: read again.
          if (attempt >= 3) throw failure('list', prefix, error);
        }
      }
      for (const entry of entries) {
        if (!entry.isFile() || entry.name.startsWith(partialMark)) continue;
        const path = join(entry.parentPath, entry.name);
        const key = relative(top, path).split(sep).join('/');
        if (!key.startsWith(prefix)) continue;
        try {
          const stats = await stat(path);
          found.push(infoOf(key, stats.size, stats.mtimeMs));
        } catch (error) {
          // Deleted between the listing and the stat: it is simply no longer there.
          if (errnoOf(error) !== 'ENOENT') throw failure('list', key, error);
        }
      }
      return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async delete(key: string): Promise<void> {
      const file = fileOf(key);
      try {
        await rm(file, { force: true });
        await pruneAbove(file);
      } catch (error) {
        throw failure('delete', key, error);
      }
    },

    close(): void {},
  };
}
