/**
 * `streams plan`: which host runs each node of a pipeline and what the
 * edges between hosts run through, without running anything. Exit codes as
 * `validate`: 1 for an invalid pipeline, hosts file or plan (every problem
 * printed as FILE:LINE:COL), 2 for a usage error or an unreadable file.
 * With `--ui HOST:PORT` the plan is served in the visualiser instead of
 * printed, until the command is stopped.
 */
import { existsSync } from 'node:fs';
import { formatDiagnostic } from '../graph/diagnostics.ts';
import { parseHostsFile, type Deployment } from '../graph/hosts-file.ts';
import type { Graph } from '../graph/model.ts';
import { planGraph, type Plan } from '../graph/plan.ts';
import { renderPlanDot, renderPlanJson, renderPlanTable } from '../graph/render-plan.ts';
import { UsageError, checkAndReport, parseParams, readPipeline } from './pipeline-file.ts';
import { uiOptions } from './run-ui.ts';

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
  const ui = uiOptions(values, process.env);
  if (!(planFormats as readonly string[]).includes(format)) throw new UsageError(`unknown format \`${format}\` (use ${planFormats.join(', ')})`);
  const { file, text } = readPipeline(paths[0]);
  const hostsPath = (values.hosts as string | undefined) ?? (!/^hosts:/m.test(text) && existsSync(defaultHostsFile) ? defaultHostsFile : undefined);
  let deployment: Deployment | undefined;
  if (hostsPath !== undefined) {
    deployment = readHostsFile(hostsPath);
    if (!deployment) return 1;
  }
  const checked = await checkAndReport(file, text, parseParams(values.param as string[] | undefined), deployment);
  if (!checked.graph) return 1;
  const { plan, diagnostics } = planGraph({ graph: checked.graph, text });
  for (const diagnostic of diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
  if (!plan) return 1;
  if (ui) return servePlan(ui, { graph: checked.graph, plan });
  process.stdout.write(await renderPlan(plan, format as (typeof planFormats)[number]));
  return 0;
}

/** `--ui`: serves the plan in the visualiser, nothing running, until SIGINT or SIGTERM. */
async function servePlan(ui: NonNullable<ReturnType<typeof uiOptions>>, view: { graph: Graph; plan: Plan }): Promise<number> {
  const { startHostUi } = await import('./host-ui.ts');
  const served = await startHostUi({ ...ui, view });
  process.stderr.write(`streams: the plan of \`${view.plan.graph}\` at ${served.page}${ui.token ? '?token=<your --ui-token>' : ''} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await served.close();
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
