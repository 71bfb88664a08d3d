#!/usr/bin/env node
/**
 * `npm run docs`: writes `docs/operators.md` and `config/pipeline.schema.json`
 * from the operator registry. With `--check`, writes nothing and exits 1 when
 * either file is stale.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../cli/docs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

async function current(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function main(args: string[]): Promise<number> {
  const check = args.includes('--check');
  let stale = 0;
  for (const file of generatedFiles()) {
    const path = join(root, file.path);
    if ((await current(path)) === file.text) continue;
    stale++;
    if (check) {
      process.stderr.write(`${file.path}: stale (run \`npm run docs\`)\n`);
      continue;
    }
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, file.text);
    process.stdout.write(`wrote ${file.path}\n`);
  }
  if (stale === 0) process.stdout.write('docs are current\n');
  return check && stale > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
