/**
 * The trace context that travels with a sampled batch, and what operators
 * use to continue it and to pass it on: W3C `traceparent`/`tracestate`
 * headers in and out, and the SERVER span of an HTTP request.
 *
 * This file loads nothing of the OpenTelemetry SDK (type imports only), so
 * an engine with tracing off does not pay for loading it; the tracer itself
 * is in `provider.ts`, imported by the CLI only when tracing is on.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Attributes, SpanContext, TraceState } from '@opentelemetry/api';

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
   * new trace, sampled by the ratio. Given several carriers (a batch of
   * Kafka messages from several senders' batches), the span is a child of
   * the first sampled one and links to every other sampled one, so each
   * of their traces leads to it.
   */
  receive(carrier: TraceCarrier | readonly TraceCarrier[] | undefined, name: string, role: 'consumer' | 'server', attributes?: Attributes): TraceSpan | undefined;
}

/** `ctx.tracing` when tracing is off: allocates nothing. */
export const tracingOff: NodeTracing = {
  enabled: false,
  start: () => undefined,
  receive: () => undefined,
};

/** The W3C headers naming `context` as the parent. */
export function carrierOf(context: TraceContext): Required<Pick<TraceCarrier, 'traceparent'>> & TraceCarrier {
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
  const traceparent = `00-${context.traceId}-${context.spanId}-${flags}`;
  const state = context.traceState?.serialize();
  return state ? { traceparent, tracestate: state } : { traceparent };
}

/** `version-traceid-parentid-flags`, version 00 (a later version may add fields after a `-`). */
const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The sender's span from W3C headers (https://www.w3.org/TR/trace-context/);
 * undefined when `traceparent` is malformed or names no span.
 */
export function remoteContext(carrier: TraceCarrier): TraceContext | undefined {
  const match = carrier.traceparent ? traceparentPattern.exec(carrier.traceparent.trim()) : null;
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  const context: TraceContext = { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true };
  if (carrier.tracestate?.trim()) context.traceState = new CarriedTraceState(carrier.tracestate.trim());
  return context;
}

/**
 * A received `tracestate`, passed on as it came: the engine adds no entry
 * of its own, so it needs no more than reading and re-serialising it.
 */
class CarriedTraceState implements TraceState {
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  #entries(): [string, string][] {
    const entries: [string, string][] = [];
    for (const member of this.#text.split(',')) {
      const at = member.indexOf('=');
      if (at > 0) entries.push([member.slice(0, at).trim(), member.slice(at + 1).trim()]);
    }
    return entries;
  }

  get(key: string): string | undefined {
    return this.#entries().find(([name]) => name === key)?.[1];
  }

  set(key: string, value: string): TraceState {
    const rest = this.#entries().filter(([name]) => name !== key);
    return new CarriedTraceState([[key, value], ...rest].map(([k, v]) => `${k}=${v}`).join(','));
  }

  unset(key: string): TraceState {
    return new CarriedTraceState(this.#entries().filter(([name]) => name !== key).map(([k, v]) => `${k}=${v}`).join(','));
  }

  serialize(): string {
    return this.#text;
  }
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
