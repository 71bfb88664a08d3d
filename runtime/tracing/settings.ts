/**
 * Where traces go and how many: `--otlp`, `--trace-ratio` and the standard
 * OpenTelemetry environment variables.
 */

/** Where to send traces and how many, from the command line and the standard environment. */
export interface TracingSettings {
  url: string;
  ratio: number;
  serviceName: string;
}

/**
 * Reads `--otlp URL` (the collector's base URL, as
 * `OTEL_EXPORTER_OTLP_ENDPOINT`; `/v1/traces` is added unless given) and
 * `--trace-ratio`, falling back on `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the
 * full URL), `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME`.
 * Undefined when no endpoint is set (tracing off) or `OTEL_SDK_DISABLED` is
 * `true`; throws an Error naming the flag for a bad value.
 */
export function tracingSettings(flags: { otlp?: unknown; ratio?: unknown }, env: NodeJS.ProcessEnv): TracingSettings | undefined {
  const ratioText = flags.ratio === undefined ? '0.01' : String(flags.ratio);
  const ratio = Number(ratioText);
  if (ratioText.trim() === '' || !Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new Error(`--trace-ratio takes a number from 0 to 1 (the share of source batches traced), got \`${ratioText}\``);
  }
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' && flags.otlp === undefined) return undefined;
  let url: string | undefined;
  let from = '--otlp';
  if (flags.otlp !== undefined) url = tracesUrl(String(flags.otlp));
  else if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    from = 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
    url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  } else if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    from = 'OTEL_EXPORTER_OTLP_ENDPOINT';
    url = tracesUrl(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  }
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${from} takes an http:// or https:// URL of an OTLP/HTTP collector, got \`${url}\``);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`${from} takes an http:// or https:// URL of an OTLP/HTTP collector (OTLP over gRPC is not supported), got \`${parsed.protocol}\``);
  }
  return { url: parsed.href, ratio, serviceName: env.OTEL_SERVICE_NAME?.trim() || 'ami-streams' };
}

/** A collector's base URL made its traces URL, as the OTLP exporters do with `OTEL_EXPORTER_OTLP_ENDPOINT`. */
function tracesUrl(base: string): string {
  const trimmed = base.trim();
  if (/\/v1\/traces\/?$/.test(trimmed)) return trimmed;
  return `${trimmed.replace(/\/+$/, '')}/v1/traces`;
}
