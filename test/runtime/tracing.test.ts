import { SpanKind, TraceFlags } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defineOperator, sinkBatches, z, type Batch } from '../../runtime/api.ts';
import { carrierOf, remoteContext } from '../../runtime/tracing/context.ts';
import { Tracing } from '../../runtime/tracing/provider.ts';
import { tracingSettings } from '../../runtime/tracing/settings.ts';
import { runYaml, take } from '../helpers/pipeline.ts';

/** What a sink saw of each batch: its trace, and whether `ctx.tracing` was on. */
const seen: { trace: Batch['trace']; enabled: boolean }[] = [];
const traceSink = defineOperator({
  name: 'test.trace-sink',
  summary: 'Test sink: note each batch\'s trace.',
  doc: 'Keeps the trace context of each batch it receives.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({}),
  create(ctx) {
    return sinkBatches(function noteTrace(_items, batch) {
      seen.push({ trace: batch.trace, enabled: ctx.tracing.enabled });
    });
  },
});

const pipeline = `
streams: 1
name: traced
nodes:
  src: { op: test.count, with: { count: 100, batch: 10 } }
  even: { op: filter, in: src, with: { where: "int(n) % 2 == 0" } }
  out: { op: test.trace-sink, in: even }
  copy: { op: test.collect, in: even, with: { into: traced-copy } }
`;

function tracingWith(exporter: InMemorySpanExporter, ratio: number, random?: () => number): Tracing {
  return new Tracing({ exporter, host: 'a', pipeline: 'traced', ratio, random });
}

function byName(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name);
}

afterEach(() => {
  seen.length = 0;
  take('traced-copy');
  vi.restoreAllMocks();
});

describe('tracing', () => {
  it('makes no span and puts no trace on batches when off', async () => {
    const span = vi.spyOn(Tracing.prototype, 'span');
    const sample = vi.spyOn(Tracing.prototype, 'sample');
    await runYaml(pipeline, { extra: [traceSink] });
    expect(seen).toHaveLength(10);
    expect(seen.every((s) => s.trace === undefined && !s.enabled)).toBe(true);
    expect(span).not.toHaveBeenCalled();
    expect(sample).not.toHaveBeenCalled();
  });

  it('with ratio 0, samples but makes no span', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = tracingWith(exporter, 0);
    const span = vi.spyOn(tracing, 'span');
    await runYaml(pipeline, { extra: [traceSink], tracing });
    await tracing.flush();
    expect(seen).toHaveLength(10);
    expect(seen.every((s) => !s.trace && s.enabled)).toBe(true);
    expect(span).not.toHaveBeenCalled();
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('gives each sampled batch a span per node, each the child of the node upstream, in one trace', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = tracingWith(exporter, 1);
    await runYaml(pipeline, { extra: [traceSink], tracing });
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    const sources = byName(spans, 'src');
    expect(sources).toHaveLength(10);
    expect(sources.every((s) => s.kind === SpanKind.INTERNAL && s.parentSpanContext === undefined)).toBe(true);
    expect(sources[0].resource.attributes).toMatchObject({ 'service.name': 'ami-streams', 'host.name': 'a', 'streams.pipeline': 'traced' });
    for (const source of sources) {
      const traceId = source.spanContext().traceId;
      const even = spans.filter((s) => s.name === 'even' && s.parentSpanContext?.spanId === source.spanContext().spanId);
      expect(even).toHaveLength(1);
      expect(even[0].spanContext().traceId).toBe(traceId);
      expect(even[0].attributes).toMatchObject({ 'streams.node': 'even', 'streams.operator': 'filter', 'streams.records': 10 });
      // Fan-out: both consumers of `even` are children of its span, not of each other.
      const below = spans.filter((s) => s.parentSpanContext?.spanId === even[0].spanContext().spanId).map((s) => s.name).sort();
      expect(below).toEqual(['copy', 'out']);
    }
    // The sink's operator sees its own node span as the batch's parent, for the spans of its own work.
    const outIds = new Set(byName(spans, 'out').map((s) => s.spanContext().spanId));
    expect(seen.every((s) => s.trace && outIds.has(s.trace.spanId))).toBe(true);
    expect(take('traced-copy')).toHaveLength(50);
  });

  it('samples whole batches at the ratio', async () => {
    const exporter = new InMemorySpanExporter();
    let call = 0;
    const tracing = tracingWith(exporter, 0.5, () => (call++ % 2 === 0 ? 0.2 : 0.8));
    await runYaml(pipeline, { extra: [traceSink], tracing });
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    expect(byName(spans, 'src')).toHaveLength(5);
    expect(byName(spans, 'out')).toHaveLength(5);
    expect(seen.filter((s) => !s.trace)).toHaveLength(5);
  });

  it('continues a sampled remote trace, drops an unsampled one, and samples a new one without', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = tracingWith(exporter, 0);
    const node = tracing.forNode('in', 'kafka.consume');
    const remote = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=x' };
    const span = node.receive(remote, 't receive', 'consumer');
    expect(span?.context.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    span!.end();
    expect(span!.headers().traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(span!.headers().tracestate).toBe('vendor=x');
    expect(node.receive({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' }, 'x', 'consumer')).toBeUndefined();
    expect(node.receive(undefined, 'x', 'consumer')).toBeUndefined();
    expect(node.receive({ traceparent: 'garbage' }, 'x', 'consumer')).toBeUndefined();
    expect(node.start(undefined, 'x', 'producer')).toBeUndefined();
    expect(node.start(null, 'x', 'producer')).toBeUndefined();
    await tracing.flush();
    const [finished] = exporter.getFinishedSpans();
    expect(finished.kind).toBe(SpanKind.CONSUMER);
    expect(finished.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
  });

  it('continues the first sampled trace of a mixed batch and links to every other sampled one, once each', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = tracingWith(exporter, 0);
    const node = tracing.forNode('in', 'kafka.consume');
    const carrier = (trace: string, span: string, flags = '01') => ({ traceparent: `00-${trace.repeat(32)}-${span.repeat(16)}-${flags}` });
    const unsampled = carrier('a', '1', '00');
    const [first, second, third] = [carrier('b', '2'), carrier('c', '3'), carrier('d', '4')];
    const span = node.receive([unsampled, first, second, first, third, second, { traceparent: 'garbage' }], 't receive', 'consumer');
    expect(span?.context.traceId).toBe('b'.repeat(32));
    span!.end();
    // A batch whose senders all chose not to trace stays untraced, even with a ratio.
    expect(tracingWith(exporter, 1).forNode('in', 'kafka.consume').receive([unsampled], 'x', 'consumer')).toBeUndefined();
    await tracing.flush();
    const [finished] = exporter.getFinishedSpans();
    expect(finished.parentSpanContext?.spanId).toBe('2'.repeat(16));
    expect(finished.links.map((link) => `${link.context.traceId}/${link.context.spanId}`)).toEqual([`${'c'.repeat(32)}/${'3'.repeat(16)}`, `${'d'.repeat(32)}/${'4'.repeat(16)}`]);
  });

  it('writes and reads W3C traceparent headers', () => {
    const context = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };
    expect(carrierOf(context)).toEqual({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01' });
    expect(remoteContext(carrierOf(context))).toMatchObject({ ...context, isRemote: true });
    expect(remoteContext({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' })).toBeUndefined();
  });

  it('reads --otlp, --trace-ratio and the OTEL environment, and names the flag of a bad value', () => {
    expect(tracingSettings({}, {})).toBeUndefined();
    expect(tracingSettings({ otlp: 'http://127.0.0.1:4318' }, {})).toEqual({ url: 'http://127.0.0.1:4318/v1/traces', ratio: 0.01, serviceName: 'ami-streams' });
    expect(tracingSettings({ otlp: 'http://c:4318/v1/traces', ratio: '1' }, { OTEL_SERVICE_NAME: 'edge' })).toEqual({ url: 'http://c:4318/v1/traces', ratio: 1, serviceName: 'edge' });
    expect(tracingSettings({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })?.url).toBe('http://c:4318/v1/traces');
    expect(tracingSettings({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:9/traces' })?.url).toBe('http://c:9/traces');
    expect(tracingSettings({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(() => tracingSettings({ otlp: 'http://c', ratio: '2' }, {})).toThrow('--trace-ratio takes a number from 0 to 1 (the share of source batches traced), got `2`');
    expect(() => tracingSettings({ otlp: 'grpc://c:4317' }, {})).toThrow('--otlp takes an http:// or https:// URL of an OTLP/HTTP collector (OTLP over gRPC is not supported), got `grpc:`');
    expect(() => tracingSettings({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow('OTEL_EXPORTER_OTLP_ENDPOINT takes an http:// or https:// URL');
  });
});
