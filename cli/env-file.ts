/**
 * `--env-file FILE`: variables for `${env:NAME}` from a dotenv file
 * (`KEY=VALUE` lines, `#` comments, single, double or back quotes), so a
 * pipeline that needs secrets can be validated or run without exporting
 * them by hand. Values are never printed.
 */
import { parseEnv } from 'node:util';
import { readTextFile } from './text-file.ts';

/**
 * Reads each file in order and sets its variables in `env`, a later file
 * overriding an earlier one; a variable already set in the environment wins
 * over every file (as with `node --env-file` and dotenv). Returns the names
 * it set.
 */
export function loadEnvFiles(paths: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const fromFiles: Record<string, string> = {};
  for (const path of paths) Object.assign(fromFiles, parseEnv(readTextFile(path)));
  const set: string[] = [];
  for (const [name, value] of Object.entries(fromFiles)) {
    if (env[name] !== undefined) continue;
    env[name] = value;
    set.push(name);
  }
  return set;
}
