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
 * A file a node will write: it must not be a folder, and its nearest
 * existing ancestor must be a folder (the missing ones are created).
 */
export function checkOutputFile(setting: string, path: string): PathProblem | undefined {
  const found = statOrUndefined(path);
  if (found?.isDirectory()) return { setting, message: `output \`${path}\` is a folder, not a file` };
  for (let parent = dirname(path); ; parent = dirname(parent)) {
    const above = statOrUndefined(parent);
    if (above) return above.isDirectory() ? undefined : { setting, message: `output \`${path}\` cannot be created: \`${parent}\` is a file, not a folder` };
    if (dirname(parent) === parent) return undefined;
  }
}
