/**
 * Trace context through a Kafka hop when `kafka.produce` gathers several
 * sampled batches into one request, against the real Kafka of
 * `test/services/start.sh kafka`: every record keeps its own batch's
 * context in its headers, and the consumer's span of a fetched batch that
 * mixes them continues one trace and links to every other.
 */
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { Tracing } from '../../runtime/tracing/provider.ts';
import { collected, runYaml, startYaml, take } from '../helpers/pipeline.ts';
import { topicsOfThisFile, unique, until } from './kafka-harness.ts';

const topics = topicsOfThisFile();

describe('traces through kafka.produce requests that mix batches', () => {
  it('keeps each record\'s own trace context, and links the consumer span to every trace of a mixed batch', async () => {
    const topic = await topics.topic('traces');
    const exporter = new InMemorySpanExporter();
    const tracing = new Tracing({ exporter, host: 'a', pipeline: 'traces', ratio: 1 });
    const batches = 20;
    // A long linger: the 20 batches of 5 go out in one request or very few.
    await runYaml(
      `streams: 1
name: traces-send
nodes:
  src: { op: test.count, with: { count: ${batches * 5}, batch: 5 } }
  out: { op: kafka.produce, in: src, with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topic: ${topic}, linger: 300ms } }
`,
      { tracing },
    );
    const into = unique('traced');
    const receiving = startYaml(
      `streams: 1
name: traces-receive
nodes:
  in: { op: kafka.consume, with: { brokers: "\${env:STREAMS_KAFKA_BROKERS}", topics: [${topic}], group: ${unique('g')}, from: earliest, format: json, kafka_field: _kafka } }
  keep: { op: test.collect, in: in, with: { into: ${into} } }
`,
      { tracing },
    );
    await until('every record', () => (collected.get(into)?.length ?? 0) >= batches * 5);
    await receiving.drain();
    const got = take(into) as { n: number; _kafka: { headers: Record<string, string> } }[];
    await tracing.flush();
    const spans = exporter.getFinishedSpans();

    const producers = spans.filter((s) => s.kind === SpanKind.PRODUCER);
    expect(producers).toHaveLength(batches);
    const producerIds = new Set(producers.map((s) => s.spanContext().spanId));
    // Each record carries the context of its own batch's PRODUCER span: the 5 records of a batch share one, no two batches do.
    const byParent = new Map<string, number[]>();
    for (const record of got) {
      const spanId = record._kafka.headers.traceparent.split('-')[2];
      expect(producerIds.has(spanId)).toBe(true);
      byParent.set(spanId, [...(byParent.get(spanId) ?? []), record.n]);
    }
    expect(byParent.size).toBe(batches);
    for (const numbers of byParent.values()) {
      const first = Math.floor(numbers[0] / 5) * 5;
      expect(numbers).toEqual([first, first + 1, first + 2, first + 3, first + 4]);
    }

    // The consumer spans: each the child of one producer span and linked to the others of its fetched batch; together they reach all 20.
    const consumers = spans.filter((s) => s.kind === SpanKind.CONSUMER);
    expect(consumers.some((s) => s.links.length > 0)).toBe(true);
    const reached = new Set<string>();
    for (const consumer of consumers) {
      reached.add(consumer.parentSpanContext!.spanId);
      for (const link of consumer.links) {
        expect(link.context.traceId).not.toBe(consumer.spanContext().traceId);
        reached.add(link.context.spanId);
      }
    }
    expect(reached).toEqual(producerIds);
    await tracing.shutdown();
  });
});
