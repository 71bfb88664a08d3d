/**
 * `--otlp URL` and `--trace-ratio R`, shared by `streams run` and
 * `streams worker`: OpenTelemetry traces (docs/tracing.md).
 */
import { tracingSettings, type TracingSettings } from '../runtime/tracing.ts';
import { UsageError } from './usage-error.ts';

/** Where traces go and how many, or undefined when tracing is off; a bad value is a usage error naming its flag. */
export function traceFlags(values: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): TracingSettings | undefined {
  try {
    return tracingSettings({ otlp: values.otlp, ratio: values['trace-ratio'] }, env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
