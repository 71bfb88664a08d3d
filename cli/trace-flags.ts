/**
 * `--otlp URL` and `--trace-ratio R`, shared by `streams run` and
 * `streams worker`: OpenTelemetry traces (docs/tracing.md).
 */
import type { Tracing } from '../runtime/tracing/provider.ts';
import { tracingSettings, type TracingSettings } from '../runtime/tracing/settings.ts';
import { UsageError } from './usage-error.ts';

/** Where traces go and how many, or undefined when tracing is off; a bad value is a usage error naming its flag. */
export function traceFlags(values: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): TracingSettings | undefined {
  try {
    return tracingSettings({ otlp: values.otlp, ratio: values['trace-ratio'] }, env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * The process's tracer, or undefined when tracing is off. The OpenTelemetry
 * SDK is loaded only here, so a run without tracing does not load it.
 */
export async function openTracing(settings: TracingSettings | undefined, where: { host: string; pipeline: string }): Promise<Tracing | undefined> {
  if (!settings) return undefined;
  const { Tracing } = await import('../runtime/tracing/provider.ts');
  return new Tracing({ ...settings, ...where });
}
