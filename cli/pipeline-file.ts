/**
 * Reading and checking pipeline files for the CLI: usage errors and
 * unreadable files are exit code 2, invalid pipelines exit code 1.
 */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { checkPipeline, type CheckResult } from '../graph/check.ts';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { registry } from '../nodes/registry.ts';
import { readTextFile } from './text-file.ts';
import { UsageError } from './usage-error.ts';

export { UsageError } from './usage-error.ts';

/** Reads a pipeline file, naming it the way the user wrote it. */
export function readPipeline(file: string): { file: string; text: string } {
  const shown = relative(process.cwd(), file) || file;
  const name = shown.startsWith('..') ? file : shown;
  return { file: name, text: readTextFile(file, file) };
}

/** True when a text is a pipeline unit test file (`streams_test: 1`) rather than a pipeline. */
export function isTestFile(text: string): boolean {
  return /^streams_test:/m.test(text);
}

/**
 * Refuses a pipeline given to `streams test`, which takes test files: the
 * checker would otherwise report the pipeline's own keys as errors of a
 * test file. Names the test file beside it when there is one.
 */
export function requireTestFiles(paths: readonly string[]): void {
  for (const path of paths) {
    const { file, text } = readPipeline(path);
    if (isTestFile(text) || !/^streams:/m.test(text)) continue;
    const sibling = path.replace(/\.ya?ml$/, '.test.yaml');
    const example = sibling !== path && existsSync(sibling) ? ` such as \`${sibling}\`` : '';
    throw new UsageError(
      `\`${file}\` is a pipeline file; \`streams test\` takes test files (streams_test: 1)${example}. ` +
        `Run it with \`streams run ${path}\` or validate it with \`streams validate ${path}\``,
    );
  }
}

/** Parses `--param name=value` pairs; values are read as numbers or booleans when they spell one. */
export function parseParams(pairs: readonly string[] | undefined): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--param takes name=value, got \`${pair}\``);
    const value = pair.slice(eq + 1);
    params[pair.slice(0, eq)] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value === 'true' || value === 'false' ? value === 'true' : value;
  }
  return params;
}

/** Checks a pipeline text and prints its diagnostics to stderr. */
export function checkAndReport(file: string, text: string, params: Record<string, unknown>): CheckResult {
  const result = checkPipeline({ file, text, registry, env: process.env, params });
  for (const diagnostic of result.diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
  return result;
}
