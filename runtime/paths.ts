/**
 * Paths in settings: creating the folders a node writes into, and the
 * static checks `streams validate` makes on paths before anything runs.
 */
import { statSync, type Stats } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Creates `folder` and its missing parents, one level at a time. Node's
 * `mkdir(..., { recursive: true })` never settles under a pseudo file
 * system such as `/proc` (it retries the same ENOENT forever); creating each
 * missing level ourselves fails at once with the real error instead.
 */
export async function ensureFolder(folder: string): Promise<void> {
  const missing: string[] = [];
  let current = resolve(folder);
  for (;;) {
    const found = await stat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (found) {
      if (!found.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${folder}'`), { code: 'ENOTDIR', path: current, syscall: 'mkdir' });
      break;
    }
    missing.push(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const level of missing.reverse()) {
    await mkdir(level).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
}

/** A problem with a path found before running, for the setting that names it. */
export interface PathProblem {
  /** The setting, as written under `with:`. */
  setting: string;
  message: string;
}

/** `undefined` where nothing can be found (a missing entry answers without building an error: validate stats every path). */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** A file a node will read must exist and be a file. */
export function checkInputFile(setting: string, path: string): PathProblem | undefined {
  const found = statOrUndefined(path);
  if (!found) return { setting, message: `input file \`${path}\` does not exist` };
  if (found.isDirectory()) return { setting, message: `input \`${path}\` is a folder, not a file` };
  return undefined;
}

/** A folder a node will read (serve) must exist and be a folder. */
export function checkInputFolder(setting: string, path: string): PathProblem | undefined {
  const found = statOrUndefined(path);
  if (!found) return { setting, message: `folder \`${path}\` does not exist` };
  if (!found.isDirectory()) return { setting, message: `\`${path}\` is a file, not a folder` };
  return undefined;
}

/**
 * What one pass of path checks ({@link withFolderMemo}) learnt of the
 * folders above the paths it checked: a large pipeline writes many outputs
 * into a few folders, which are then looked at once each, not once per output.
 */
let folderMemo: Map<string, 'folder' | 'other' | 'missing'> | undefined;

/**
 * Runs `checks` (synchronous: `streams validate` checking every node's
 * paths) with each folder above a checked output looked at once: the file
 * system is taken as it was when a folder was first asked about, for the
 * length of the pass.
 */
export function withFolderMemo<T>(checks: () => T): T {
  folderMemo = new Map();
  try {
    return checks();
  } finally {
    folderMemo = undefined;
  }
}

/** Whether `path` is a folder, something else, or nothing (remembered during a {@link withFolderMemo} pass). */
function folderState(path: string): 'folder' | 'other' | 'missing' {
  const known = folderMemo?.get(path);
  if (known) return known;
  const found = statOrUndefined(path);
  const state = !found ? 'missing' : found.isDirectory() ? 'folder' : 'other';
  folderMemo?.set(path, state);
  return state;
}

/**
 * A file a node will write: it must not be a folder, and its nearest
 * existing ancestor must be a folder (the missing ones are created).
 */
export function checkOutputFile(setting: string, path: string): PathProblem | undefined {
  const folder = dirname(path);
  for (let parent = folder; ; parent = dirname(parent)) {
    const state = folderState(parent);
    if (state === 'other') return { setting, message: `output \`${path}\` cannot be created: \`${parent}\` is a file, not a folder` };
    // Only in a folder that exists can the output exist already (and be a folder): the one stat of a file of its own.
    if (state === 'folder') return parent === folder && statOrUndefined(path)?.isDirectory() ? { setting, message: `output \`${path}\` is a folder, not a file` } : undefined;
    if (dirname(parent) === parent) return undefined;
  }
}
