/**
 * `streams plan`: which host runs each node of a pipeline and what the
 * edges between hosts run through, without running anything. Exit codes as
 * `validate`: 1 for an invalid pipeline, hosts file or plan (every problem
 * printed as FILE:LINE:COL), 2 for a usage error or an unreadable file.
 */
import { existsSync } from 'node:fs';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { parseHostsFile, type Deployment } from '../graph/hosts-file.ts';
import { planGraph, type Plan } from '../graph/plan.ts';
import { renderPlanDot, renderPlanJson, renderPlanTable } from '../graph/render-plan.ts';
import { UsageError, checkAndReport, parseParams, readPipeline } from './pipeline-file.ts';

export const planFormats = ['table', 'json', 'dot', 'svg'] as const;

/** The hosts file read when `--hosts` is not given and the pipeline declares no `hosts:`. */
export const defaultHostsFile = 'config/hosts.yaml';

/**
 * Reads and checks a hosts file; its diagnostics go to stderr, located in
 * it. Returns nothing when it has errors.
 */
export function readHostsFile(path: string): Deployment | undefined {
  const { file, text } = readPipeline(path);
  const { deployment, diagnostics } = parseHostsFile(file, text);
  for (const diagnostic of diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
  return deployment;
}

/** Prints the plan of one pipeline in the format asked for. */
export async function planCommand(values: Record<string, unknown>, paths: string[]): Promise<number> {
  if (paths.length !== 1) throw new UsageError('plan takes one pipeline file');
  const format = values.format as string;
  if (!(planFormats as readonly string[]).includes(format)) throw new UsageError(`unknown format \`${format}\` (use ${planFormats.join(', ')})`);
  const { file, text } = readPipeline(paths[0]);
  const hostsPath = (values.hosts as string | undefined) ?? (!/^hosts:/m.test(text) && existsSync(defaultHostsFile) ? defaultHostsFile : undefined);
  let deployment: Deployment | undefined;
  if (hostsPath !== undefined) {
    deployment = readHostsFile(hostsPath);
    if (!deployment) return 1;
  }
  const checked = checkAndReport(file, text, parseParams(values.param as string[] | undefined), deployment);
  if (!checked.graph) return 1;
  const { plan, diagnostics } = planGraph({ graph: checked.graph, text });
  for (const diagnostic of diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
  if (!plan) return 1;
  process.stdout.write(await renderPlan(plan, format as (typeof planFormats)[number]));
  return 0;
}

async function renderPlan(plan: Plan, format: (typeof planFormats)[number]): Promise<string> {
  switch (format) {
    case 'table':
      return renderPlanTable(plan);
    case 'json':
      return renderPlanJson(plan);
    case 'dot':
      return renderPlanDot(plan);
    case 'svg': {
      const { planDrawing, renderSvg } = await import('../graph/render-svg.ts');
      return renderSvg(planDrawing(plan));
    }
  }
}
