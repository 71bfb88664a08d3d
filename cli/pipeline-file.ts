/**
 * Reading and checking pipeline files for the CLI: usage errors and
 * unreadable files are exit code 2, invalid pipelines exit code 1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { checkPipeline, type CheckResult } from '../graph/check.ts';
import { formatDiagnostic, sortDiagnostics, type Diagnostic } from '../graph/diagnostics.ts';
import { parseSource } from '../graph/source.ts';
import type { Deployment } from '../graph/hosts-file.ts';
import { operatorsNamedIn } from '../graph/operator-names.ts';
import { loadOperators, registry } from '../nodes/registry.ts';
import { withFolderMemo } from '../runtime/paths.ts';
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
export function requireTestFiles(files: readonly { path: string; file: string; text: string }[]): void {
  for (const { path, file, text } of files) {
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

/**
 * Checks a pipeline text and prints its diagnostics to stderr. The
 * operators it names are loaded first ({@link loadOperatorsOf}). After the
 * (pure) checker, operators that name paths check them on disk
 * (`checkPaths`), relative to the pipeline file's folder. A deployment (a
 * hosts file's hosts and transports) replaces the pipeline's own.
 */
export async function checkAndReport(file: string, text: string, params: Record<string, unknown>, deployment?: Deployment): Promise<CheckResult> {
  const result = await checkPipelineTextLoaded(file, text, params, deployment);
  for (const diagnostic of result.diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
  return result;
}

/** {@link checkPipelineText} once the operators the text names are loaded: what a command checking a new text calls. */
export async function checkPipelineTextLoaded(file: string, text: string, params: Record<string, unknown>, deployment?: Deployment): Promise<CheckResult> {
  await loadOperatorsOf(text);
  return checkPipelineText(file, text, params, deployment);
}

/**
 * Loads into the registry the operators a pipeline text names (all of them
 * when it names one that is no operator's, so the checker can suggest the
 * nearest): to await before {@link checkPipelineText} checks a new text.
 */
async function loadOperatorsOf(text: string): Promise<void> {
  await loadOperators(operatorsNamedIn(text));
}

/**
 * Checks a pipeline text as `checkAndReport` does, printing nothing (the
 * admin API answers with the diagnostics). Synchronous: the operators the
 * text names must be loaded ({@link loadOperatorsOf}, or `nodes/all.ts`).
 */
export function checkPipelineText(file: string, text: string, params: Record<string, unknown>, deployment?: Deployment): CheckResult {
  const result = checkPipeline({ file, text, registry, env: process.env, params, deployment });
  const pathProblems = result.graph ? checkPaths(result, file, text) : [];
  return pathProblems.length > 0 ? { diagnostics: sortDiagnostics([...result.diagnostics, ...pathProblems]) } : result;
}

/** Path problems of a checked graph, located at the setting that names the path. */
function checkPaths(result: CheckResult, file: string, text: string): Diagnostic[] {
  const base = dirname(resolve(file));
  const resolvePath = (path: string): string => resolve(base, path);
  const found: { node: string; setting: string; message: string }[] = [];
  // The folders above the outputs are looked at once each, not once per node.
  withFolderMemo(() => {
    for (const node of result.graph!.nodes.values()) {
      const check = registry.get(node.op)?.checkPaths;
      if (!check) continue;
      for (const problem of check(node.settings, resolvePath)) found.push({ node: node.name, ...problem });
    }
  });
  if (found.length === 0) return [];
  // Parsed again only when something is wrong, to locate it.
  const { source } = parseSource(file, text);
  return found.map(({ node, setting, message }) => {
    // A nested setting (`tls.cert`) is located at its own value.
    const at = source.locate(['nodes', node, 'with', ...setting.split('.')], 'value');
    return { file, line: at.line, col: at.col, severity: 'error', code: 'bad_setting', message: `node \`${node}\`, setting \`${setting}\`: ${message}` };
  });
}
