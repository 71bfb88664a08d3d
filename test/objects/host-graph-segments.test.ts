/**
 * An edge of media segments between hosts, cut in two: `objects.put` then
 * `kafka.produce` of references on the packager's host, `kafka.consume`
 * then `objects.get` on the origin's, both naming the plan's store.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { hostGraph, transportNodeName } from '../../graph/host-graph.ts';
import { planGraph } from '../../graph/plan.ts';
import { describeTransport } from '../../graph/render-plan.ts';
import { registry } from '../../nodes/all.ts';

function pipeline(transports: string): string {
  return `streams: 1
name: seg
hosts:
  origin: { role: origin, offers: [listen], url: "http://10.0.0.1:7070" }
  edge: { role: edge, offers: [listen], url: "http://10.0.0.3:7070" }
transports:
${transports}
nodes:
  rtmp: { op: ingest.rtmp, place: { host: origin }, with: { listen: "127.0.0.1:7701", keys: [k] } }
  hls: { op: segment.hls, in: rtmp, place: { host: origin }, with: { segment: 1s } }
  cdn: { op: serve.http, in: hls, place: { host: edge }, with: { listen: "127.0.0.1:7702" } }
`;
}

function shares(text: string) {
  const checked = checkPipeline({ file: 'seg.yaml', text, registry, env: {} });
  expect(checked.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  const planned = planGraph({ graph: checked.graph!, text });
  expect(planned.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  return ['origin', 'edge'].map((host) => hostGraph({ graph: checked.graph!, plan: planned.plan!, host, registry }));
}

const edge = { from: 'hls', fromPort: 'out', to: 'cdn', toPort: 'in' };

describe('a segment edge between hosts', () => {
  it('stores segments and sends references on the packager\'s host, receives and fetches them on the origin\'s', () => {
    const [origin, edgeHost] = shares(pipeline('  kafka: { brokers: "127.0.0.1:9092" }\n  objects: { url: "s3://media/live" }'));
    const store = transportNodeName('store', edge);
    const send = transportNodeName('send', edge);
    const receive = transportNodeName('receive', edge);
    const fetch = transportNodeName('fetch', edge);
    expect(origin.diagnostics).toEqual([]);
    expect([...origin.graph!.nodes.keys()]).toEqual(['rtmp', 'hls', store, send]);
    expect([...edgeHost.graph!.nodes.keys()]).toEqual(['cdn', receive, fetch]);
    expect(origin.graph!.nodes.get(store)!.op).toBe('objects.put');
    expect(origin.graph!.nodes.get(store)!.rawSettings).toEqual({ store: 's3://media/live', prefix: 'seg/hls/' });
    expect(origin.graph!.nodes.get(send)!.rawSettings).toEqual({ brokers: ['127.0.0.1:9092'], topic: 'streams.seg.hls.out.cdn.in', key: 'stream' });
    expect(edgeHost.graph!.nodes.get(receive)!.rawSettings).toMatchObject({ topics: ['streams.seg.hls.out.cdn.in'], group: 'streams.seg.cdn', format: 'json' });
    expect(edgeHost.graph!.nodes.get(fetch)!.op).toBe('objects.get');
    expect(edgeHost.graph!.nodes.get(fetch)!.rawSettings).toEqual({ store: 's3://media/live', prefix: 'seg/hls/' });
    expect(origin.graph!.edges.map((e) => `${e.from}->${e.to}`)).toEqual(['rtmp->hls', `hls->${store}`, `${store}->${send}`]);
    expect(edgeHost.graph!.edges.map((e) => `${e.from}->${e.to}`)).toEqual([`${receive}->${fetch}`, `${fetch}->cdn`]);
    expect(edgeHost.graph!.edges.at(-1)!.type).toEqual({ kind: 'segment', format: 'cmaf' });
    // The worker creates the references' topic from these, and learns which store carries the bytes.
    expect(origin.transports).toEqual([expect.objectContaining({ name: send, end: 'send', topic: 'streams.seg.hls.out.cdn.in', key: 'stream', objects: { store: 's3://media/live', prefix: 'seg/hls/', node: store } })]);
    expect(edgeHost.transports).toEqual([expect.objectContaining({ name: receive, end: 'receive', group: 'streams.seg.cdn', objects: { store: 's3://media/live', prefix: 'seg/hls/', node: fetch } })]);
  });

  it('hands `transports.objects.retain` to the writer alone, and shows it in the plan', () => {
    const text = pipeline('  kafka: { brokers: "127.0.0.1:9092" }\n  objects: { url: "s3://media/live", retain: 10m }');
    const [origin, edgeHost] = shares(text);
    expect(origin.graph!.nodes.get(transportNodeName('store', edge))!.rawSettings).toEqual({ store: 's3://media/live', prefix: 'seg/hls/', retain: '10m' });
    expect(edgeHost.graph!.nodes.get(transportNodeName('fetch', edge))!.rawSettings).toEqual({ store: 's3://media/live', prefix: 'seg/hls/' });
    const checked = checkPipeline({ file: 'seg.yaml', text, registry, env: {} });
    const planned = planGraph({ graph: checked.graph!, text });
    expect(describeTransport(planned.plan!.edges.find((e) => e.to === 'cdn')!.transport)).toBe('object store s3://media/live/seg/hls/ (retained 10m), pulled from http://10.0.0.1:7070');
  });

  it('refuses a retention that is not a duration of at least a second, at its place', () => {
    for (const [retain, found] of [['5', '`5`'], ['500ms', '`500ms`']]) {
      const checked = checkPipeline({ file: 'seg.yaml', text: pipeline(`  kafka: { brokers: "127.0.0.1:9092" }\n  objects: { url: "s3://media/live", retain: "${retain}" }`), registry, env: {} });
      expect(checked.diagnostics.map(formatDiagnostic)).toEqual([`seg.yaml:8:46: error: \`retain\` of \`transports.objects\` must be a duration of at least \`1s\`, such as \`10m\`, found ${found}`]);
    }
  });

  it('uses the folder `objects` when no store is declared', () => {
    const [origin] = shares(pipeline('  kafka: { brokers: "127.0.0.1:9092" }'));
    expect(origin.graph!.nodes.get(transportNodeName('store', edge))!.rawSettings).toEqual({ store: 'objects', prefix: 'seg/hls/' });
  });

  it('needs Kafka for the references, located at the downstream node', () => {
    const [origin, edgeHost] = shares(pipeline('  objects: { url: "s3://media/live" }'));
    expect(origin.graph).toBeUndefined();
    expect(edgeHost.diagnostics.map(formatDiagnostic).join('\n')).toMatch(/^seg\.yaml:11:\d+: error: edge `hls` → `cdn` carries Segment<cmaf> between hosts: the segments go through the object store and their references through Kafka, but `transports.kafka` is not declared/);
  });
});
