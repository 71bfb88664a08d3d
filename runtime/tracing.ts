/**
 * OpenTelemetry traces that follow a batch of records through the graph and
 * across hosts, exported over OTLP/HTTP (JSON).
 *
 * Off by default: without an endpoint there is no `Tracing`, the runtime's
 * hot path tests one field per batch, and no span object is ever made.
 * When on, a source samples each batch it emits (`ratio`, per batch, not per
 * record); a sampled batch carries its parent span's context in
 * `Batch.trace`, and each node it passes through adds a span (see
 * `docs/tracing.md`). Transports write the W3C `traceparent`/`tracestate`
 * of their span into what they send (Kafka headers, HTTP headers), and the
 * receiving host continues the trace from them.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { TraceState, parseTraceParent } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { reasonOf } from './failure.ts';

/** The context a sampled batch carries: its parent span (W3C trace id, span id, flags, state). */
export type TraceContext = SpanContext;

/** What a span stands for, as OpenTelemetry's span kinds. */
export type SpanRole = 'internal' | 'producer' | 'consumer' | 'client' | 'server';

/** The W3C trace context headers, as read from or written to a message or a request. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

/** A span an operator opened; `end` it once (with the error, if the work failed). */
export interface TraceSpan {
  /** This span's context: the parent of what follows from it. */
  readonly context: TraceContext;
  /** The headers that make a receiver's span a child of this one. */
  headers(): Required<Pick<TraceCarrier, 'traceparent'>> & TraceCarrier;
  /** Adds an attribute known only later (a response's status). */
  set(key: string, value: string | number | boolean): void;
  end(error?: unknown): void;
}

/**
 * Tracing as an operator sees it (`ctx.tracing`). Every method is cheap
 * when tracing is off or the batch is not sampled: it returns undefined.
 */
export interface NodeTracing {
  /** Whether this process exports traces at all: operators skip reading carriers when not. */
  readonly enabled: boolean;
  /**
   * A child span of `parent` (a batch's `trace`), or undefined when the
   * batch is not sampled.
   */
  start(parent: TraceContext | null | undefined, name: string, role: SpanRole, attributes?: Attributes): TraceSpan | undefined;
  /**
   * The span of something that arrived from elsewhere (a Kafka message, an
   * HTTP request): a child of the sender's span when `carrier` names a
   * sampled one, not traced when it names one not sampled, and otherwise a
   * new trace, sampled by the ratio.
   */
  receive(carrier: TraceCarrier | undefined, name: string, role: 'consumer' | 'server', attributes?: Attributes): TraceSpan | undefined;
}

/** `ctx.tracing` when tracing is off: allocates nothing. */
export const tracingOff: NodeTracing = {
  enabled: false,
  start: () => undefined,
  receive: () => undefined,
};

const kinds: Record<SpanRole, SpanKind> = {
  internal: SpanKind.INTERNAL,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
  client: SpanKind.CLIENT,
  server: SpanKind.SERVER,
};

/** How tracing is set up for one process. */
export interface TracingOptions {
  /** The OTLP/HTTP traces URL (`http://collector:4318/v1/traces`). */
  url?: string;
  /** An exporter of one's own instead of OTLP (tests). */
  exporter?: SpanExporter;
  /** `service.name`; default `ami-streams`. */
  serviceName?: string;
  /** `host.name`: the worker's `--host`, or this machine's name. */
  host: string;
  /** The pipeline's `name` (`streams.pipeline`). */
  pipeline: string;
  /** The share of source batches traced, 0 to 1. */
  ratio: number;
  /** How often finished spans are sent, in ms (default 1000). */
  exportDelayMs?: number;
  /** Chooses whether a batch is sampled; default `Math.random() < ratio`. */
  random?: () => number;
}

/** The tracer of one process: the engine's nodes share it. */
export class Tracing {
  readonly ratio: number;
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;
  readonly #random: () => number;

  constructor(options: TracingOptions) {
    this.ratio = options.ratio;
    this.#random = options.random ?? Math.random;
    const exporter = options.exporter ?? new OTLPTraceExporter({ url: options.url });
    const processor: SpanProcessor = new BatchSpanProcessor({ exporter, scheduledDelayMillis: options.exportDelayMs ?? 1000 });
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({
        'service.name': options.serviceName ?? 'ami-streams',
        'host.name': options.host,
        'streams.pipeline': options.pipeline,
      }),
      spanProcessors: [processor],
    });
    this.#tracer = this.#provider.getTracer('ami-streams');
  }

  /** Whether the next batch from a source is traced. */
  sample(): boolean {
    return this.ratio > 0 && (this.ratio >= 1 || this.#random() < this.ratio);
  }

  /** A span under `parent` (or a new trace when `parent` is undefined). */
  span(parent: TraceContext | undefined, name: string, role: SpanRole, attributes?: Attributes): TraceSpan {
    const context = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    return new OpenSpan(this.#tracer.startSpan(name, { kind: kinds[role], attributes, root: parent === undefined }, context));
  }

  /** `ctx.tracing` for one node. */
  forNode(node: string, operator: string): NodeTracing {
    const tracing = this;
    return {
      enabled: true,
      start(parent, name, role, attributes) {
        if (!parent) return undefined;
        return tracing.span(parent, name, role, { 'streams.node': node, 'streams.operator': operator, ...attributes });
      },
      receive(carrier, name, role, attributes) {
        const remote = carrier?.traceparent ? remoteContext(carrier) : undefined;
        if (remote ? (remote.traceFlags & TraceFlags.SAMPLED) === 0 : !tracing.sample()) return undefined;
        return tracing.span(remote, name, role, { 'streams.node': node, 'streams.operator': operator, ...attributes });
      },
    };
  }

  /** Sends what is finished and stops (at the end of a run or a worker). */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }

  /** Sends what is finished now. */
  async flush(): Promise<void> {
    await this.#provider.forceFlush();
  }
}

class OpenSpan implements TraceSpan {
  readonly context: TraceContext;
  readonly #span: Span;

  constructor(span: Span) {
    this.#span = span;
    this.context = span.spanContext();
  }

  headers() {
    return carrierOf(this.context);
  }

  set(key: string, value: string | number | boolean): void {
    this.#span.setAttribute(key, value);
  }

  end(error?: unknown): void {
    if (error !== undefined) this.#span.setStatus({ code: SpanStatusCode.ERROR, message: reasonOf(error) });
    this.#span.end();
  }
}

/** The W3C headers naming `context` as the parent. */
export function carrierOf(context: TraceContext): Required<Pick<TraceCarrier, 'traceparent'>> & TraceCarrier {
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
  const traceparent = `00-${context.traceId}-${context.spanId}-${flags}`;
  const state = context.traceState?.serialize();
  return state ? { traceparent, tracestate: state } : { traceparent };
}

/** The sender's span from W3C headers; undefined when `traceparent` is malformed. */
export function remoteContext(carrier: TraceCarrier): TraceContext | undefined {
  const parsed = carrier.traceparent ? parseTraceParent(carrier.traceparent.trim()) : null;
  if (!parsed) return undefined;
  const context: TraceContext = { ...parsed, isRemote: true };
  if (carrier.tracestate) context.traceState = new TraceState(carrier.tracestate);
  return context;
}

/** The W3C trace context headers of an HTTP request, if it has them. */
export function headerCarrier(headers: IncomingHttpHeaders): TraceCarrier | undefined {
  const traceparent = headers.traceparent;
  if (typeof traceparent !== 'string') return undefined;
  const tracestate = headers.tracestate;
  return { traceparent, tracestate: Array.isArray(tracestate) ? tracestate.join(',') : tracestate };
}

/**
 * The SERVER span of an HTTP request a node answers: the child of the
 * caller's span when the request has a sampled `traceparent`, else a new
 * trace at the ratio. It ends when the response is finished (or the
 * connection closes), with the status. The request's `traceparent` and
 * `tracestate` are replaced with this span's, so that a request the node
 * makes on its behalf (an edge to its origin) continues from it.
 * Undefined, at no cost, when tracing is off or the request is not sampled.
 */
export function traceRequest(tracing: NodeTracing, request: IncomingMessage, response: ServerResponse): TraceSpan | undefined {
  if (!tracing.enabled) return undefined;
  const method = request.method ?? 'GET';
  // The path only: a query may hold a signature or a token.
  const path = (request.url ?? '/').split('?')[0];
  const span = tracing.receive(headerCarrier(request.headers), method, 'server', { 'http.request.method': method, 'url.path': path });
  if (!span) return undefined;
  const carrier = span.headers();
  request.headers.traceparent = carrier.traceparent;
  if (carrier.tracestate === undefined) delete request.headers.tracestate;
  else request.headers.tracestate = carrier.tracestate;
  response.once('close', function endServerSpan() {
    span.set('http.response.status_code', response.statusCode);
    span.end(response.statusCode >= 500 ? new Error(`answered ${response.statusCode}`) : undefined);
  });
  return span;
}

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
