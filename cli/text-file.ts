/**
 * Reading a file the user named that must be text (a pipeline, a test file,
 * an env file). A binary file is refused with a message instead of being
 * handed to a parser whose error would echo its bytes to the terminal.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './usage-error.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Why a file could not be read, in the words `cannot read FILE: ...` ends with. */
function reason(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return error.code ?? error.message;
  }
}

/**
 * Reads `path` as UTF-8 text; throws a {@link UsageError} (exit code 2)
 * naming the file when it cannot be read or is not text (it holds a NUL
 * byte or is not valid UTF-8).
 */
export function readTextFile(path: string, shown = path): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read \`${shown}\`: ${reason(error as NodeJS.ErrnoException)}`);
  }
  // NUL never appears in YAML or dotenv text; invalid UTF-8 cannot be shown.
  if (bytes.includes(0)) throw new UsageError(`cannot read \`${shown}\`: is not a text file (it holds NUL bytes)`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UsageError(`cannot read \`${shown}\`: is not a text file (it is not valid UTF-8)`);
  }
}
