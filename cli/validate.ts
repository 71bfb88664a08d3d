/**
 * `streams validate` and `streams graph`: check pipeline files without
 * running them. Loaded by `cli/main.ts` only when one of them runs, so
 * neither loads the runtime.
 */
import { formatDiagnostic, hasErrors } from '../graph/diagnostics.ts';
import { renderGraph, type GraphFormat } from '../graph/render.ts';
import { UsageError, checkAndReport, isTestFile, parseParams, readPipeline } from './pipeline-file.ts';
import { holdYoungGeneration } from './young-generation.ts';

/**
 * Checks every file and reports on each, even after one fails. Exit code:
 * 2 when any file could not be read, else 1 when any is invalid, else 0.
 */
export async function validateCommand(values: Record<string, unknown>, paths: string[]): Promise<number> {
  if (paths.length === 0) throw new UsageError('validate needs at least one pipeline file');
  const params = parseParams(values.param as string[] | undefined);
  // What a check allocates lives to the end: a young generation grown large would only hold copies of it.
  holdYoungGeneration();
  let unreadable = false;
  let invalid = false;
  for (const path of paths) {
    let read: { file: string; text: string };
    try {
      read = readPipeline(path);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      process.stderr.write(`streams: ${error.message}\n`);
      unreadable = true;
      continue;
    }
    const { file, text } = read;
    if (isTestFile(text)) {
      // A pipeline unit test file: check its own shape (its tests run with `streams test`).
      const { parseTestFile } = await import('./pipeline-test.ts');
      const { diagnostics, tests } = parseTestFile(file, text);
      for (const diagnostic of diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
      if (hasErrors(diagnostics)) invalid = true;
      else process.stdout.write(`${file}: ok (a test file with ${count(tests.length, 'test')}; run them with \`streams test\`)\n`);
      continue;
    }
    const result = await checkAndReport(file, text, params);
    if (hasErrors(result.diagnostics)) invalid = true;
    else process.stdout.write(`${file}: ok (${count(result.graph!.nodes.size, 'node')}, ${count(result.graph!.edges.length, 'edge')})\n`);
  }
  return unreadable ? 2 : invalid ? 1 : 0;
}

/** Draws one pipeline as Graphviz DOT, Mermaid or SVG on stdout. */
export async function graphCommand(values: Record<string, unknown>, paths: string[]): Promise<number> {
  if (paths.length !== 1) throw new UsageError('graph takes one pipeline file');
  const format = values.format as string;
  if (format !== 'dot' && format !== 'mermaid' && format !== 'svg') throw new UsageError(`unknown format \`${format}\` (use dot, mermaid or svg)`);
  const { file, text } = readPipeline(paths[0]);
  const result = await checkAndReport(file, text, parseParams(values.param as string[] | undefined));
  if (!result.graph) return 1;
  if (format === 'svg') {
    // ELK is loaded only for a drawing.
    const { graphDrawing, renderSvg } = await import('../graph/render-svg.ts');
    process.stdout.write(await renderSvg(graphDrawing(result.graph)));
  } else {
    process.stdout.write(renderGraph(result.graph, format as GraphFormat));
  }
  return 0;
}

/** `1 node`, `3 nodes`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
