/**
 * The tracer of one process: an OpenTelemetry TracerProvider exporting over
 * OTLP/HTTP (JSON), with the resource `service.name`, `host.name` and
 * `streams.pipeline`. Imported only when tracing is on (see `context.ts`).
 *
 * A source samples each batch it emits (`ratio`, per batch, not per
 * record); a sampled batch carries its parent span's context in
 * `Batch.trace`, and each node it passes through adds a span (see
 * `docs/tracing.md`).
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Link, type Span, type Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { reasonOf } from '../failure.ts';
import { carrierOf, remoteContext, type NodeTracing, type SpanRole, type TraceCarrier, type TraceContext, type TraceSpan } from './context.ts';

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

  /** A span under `parent` (or a new trace when `parent` is undefined), linked to the spans of `links`. */
  span(parent: TraceContext | undefined, name: string, role: SpanRole, attributes?: Attributes, links?: readonly TraceContext[]): TraceSpan {
    const context = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    const spanLinks: Link[] | undefined = links?.map((linked) => ({ context: linked }));
    return new OpenSpan(this.#tracer.startSpan(name, { kind: kinds[role], attributes, links: spanLinks, root: parent === undefined }, context));
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
        const remotes = remoteContexts(carrier);
        const parent = remotes.find(sampled) ?? remotes[0];
        if (parent ? !sampled(parent) : !tracing.sample()) return undefined;
        const links = remotes.filter((remote) => remote !== parent && sampled(remote));
        return tracing.span(parent, name, role, { 'streams.node': node, 'streams.operator': operator, ...attributes }, links.length > 0 ? links : undefined);
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

function sampled(context: TraceContext): boolean {
  return (context.traceFlags & TraceFlags.SAMPLED) !== 0;
}

/** The senders' spans named by one carrier or several, each once, in order; malformed ones left out. */
function remoteContexts(carrier: TraceCarrier | readonly TraceCarrier[] | undefined): TraceContext[] {
  if (carrier === undefined) return [];
  const carriers: readonly TraceCarrier[] = Array.isArray(carrier) ? carrier : [carrier as TraceCarrier];
  const seen = new Set<string>();
  const contexts: TraceContext[] = [];
  for (const one of carriers) {
    if (!one.traceparent || seen.has(one.traceparent)) continue;
    seen.add(one.traceparent);
    const context = remoteContext(one);
    if (context) contexts.push(context);
  }
  return contexts;
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
