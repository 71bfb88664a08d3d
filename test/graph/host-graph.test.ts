/**
 * A host's share of a plan as the graph its engine runs: its nodes, its
 * local edges, and a kafka.produce / kafka.consume pair for each edge that
 * crosses hosts, with the plan's topic, the downstream node's key and group.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { hostGraph, transportNodeName } from '../../graph/host-graph.ts';
import { planGraph } from '../../graph/plan.ts';
import { readFileSync } from 'node:fs';
import { registry } from '../../nodes/all.ts';

const header = `streams: 1
name: g
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: worker }
transports:
  kafka: { brokers: "127.0.0.1:9092" }
nodes:
`;

function planned(text: string) {
  const checked = checkPipeline({ file: 'p.yaml', text, registry, env: {} });
  expect(checked.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  const result = planGraph({ graph: checked.graph!, text });
  expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
  return { graph: checked.graph!, plan: result.plan! };
}

const twoHosts = header + `  gen: { op: generate, place: { host: a }, with: { count: 10, fields: { seq: i } } }
  double: { op: map, in: gen, place: { host: b }, with: { set: { twice: "seq * 2" } } }
  out: { op: stdout, in: double }
`;

describe('a host graph', () => {
  it('sends a cross-host edge through a kafka.produce on the upstream host and a kafka.consume on the downstream one', () => {
    const { graph, plan } = planned(twoHosts);
    const a = hostGraph({ graph, plan, host: 'a', registry });
    const b = hostGraph({ graph, plan, host: 'b', registry });
    const edge = { from: 'gen', fromPort: 'out', to: 'double', toPort: 'in' };
    const send = transportNodeName('send', edge);
    const receive = transportNodeName('receive', edge);
    expect([...a.graph!.nodes.keys()]).toEqual(['gen', send]);
    expect([...b.graph!.nodes.keys()]).toEqual(['double', 'out', receive]);
    expect(a.graph!.nodes.get(send)!.rawSettings).toEqual({ brokers: ['127.0.0.1:9092'], topic: 'streams.g.gen.out.double.in', pack_bytes: 65536 });
    expect(b.graph!.nodes.get(receive)!.rawSettings).toEqual({ brokers: ['127.0.0.1:9092'], topics: ['streams.g.gen.out.double.in'], group: 'streams.g.double', from: 'committed', format: 'json', unpack: true, session_timeout: '6s' });
    expect(a.graph!.edges.map((e) => `${e.from}->${e.to}`)).toEqual([`gen->${send}`]);
    expect(b.graph!.edges.map((e) => `${e.from}->${e.to}`).sort()).toEqual(["double->out", `${receive}->double`]);
    // The checked graph's own node objects: a reload sees them unchanged.
    expect(b.graph!.nodes.get('double')).toBe(graph.nodes.get('double'));
  });

  it('gives a host with no share an empty graph', () => {
    const { graph, plan } = planned(twoHosts);
    const c = hostGraph({ graph, plan, host: 'c', registry });
    expect(c.graph!.nodes.size).toBe(0);
    expect(c.graph!.edges).toEqual([]);
  });

  it('keys a keyed node\'s topic and reads it in one group from every host of the node', () => {
    const { graph, plan } = planned(header + `  gen: { op: generate, place: { host: a }, with: { count: 10, rate: 100, fields: { seq: i } } }
  win: { op: window.tumbling, in: gen, parallelism: 2, place: { role: worker }, with: { size: 1s, key: "string(seq % 4)" } }
  agg: { op: aggregate, in: win, parallelism: 2, place: { role: worker }, with: { n: count() } }
  out: { op: stdout, in: agg, place: { role: worker } }
`);
    const shares = ['a', 'b', 'c'].map((host) => hostGraph({ graph, plan, host, registry }));
    const send = shares[0].transports.find((t) => t.edge.to === 'win')!;
    expect(send).toMatchObject({ end: 'send', topic: 'streams.g.gen.out.win.in', key: 'string(seq % 4)', partitions: 2 });
    for (const share of shares.slice(1)) {
      expect(share.transports.find((t) => t.edge.to === 'win')).toMatchObject({ end: 'receive', group: 'streams.g.win', topic: 'streams.g.gen.out.win.in' });
      expect(share.graph!.nodes.has('win') && share.graph!.nodes.has('agg')).toBe(true);
    }
  });

  it('is deterministic: the same record gives the same host graph', () => {
    const first = planned(twoHosts);
    const second = planned(twoHosts);
    const names = (x: typeof first) => ['a', 'b', 'c'].map((h) => {
      const g = hostGraph({ ...x, host: h, registry }).graph!;
      return { nodes: [...g.nodes.values()].map((n) => [n.name, n.op, n.rawSettings]), edges: g.edges.map((e) => [e.from, e.fromPort, e.to, e.toPort]) };
    });
    expect(names(second)).toEqual(names(first));
  });

  it('carries media packets between hosts as Bytes, packed: media.pack before the producer, media.unpack after the consumer', () => {
    const text = readFileSync(new URL('../../pipelines/many-hosts.yaml', import.meta.url), 'utf8');
    const checked = checkPipeline({ file: 'many-hosts.yaml', text, registry, env: {} });
    const { plan } = planGraph({ graph: checked.graph!, text });
    const origin = hostGraph({ graph: checked.graph!, plan: plan!, host: 'origin', registry });
    const gpu = hostGraph({ graph: checked.graph!, plan: plan!, host: 'gpu', registry });
    expect(gpu.diagnostics).toEqual([]);
    const edge = { from: 'rtmp', fromPort: 'out', to: 'ladder', toPort: 'in' };
    const pack = transportNodeName('pack', edge);
    const unpack = transportNodeName('unpack', edge);
    expect(origin.graph!.nodes.get(pack)!.op).toBe('media.pack');
    expect(origin.graph!.nodes.get(transportNodeName('send', edge))!.rawSettings).toEqual({ brokers: ['127.0.0.1:9092'], topic: 'streams.many-hosts.rtmp.out.ladder.in', key: 'stream', pack_bytes: 64 * 1024 });
    expect(origin.graph!.edges.filter((e) => e.from === 'rtmp' && e.fromPort === 'out').map((e) => e.to)).toContain(pack);
    expect(gpu.graph!.nodes.get(transportNodeName('receive', edge))!.rawSettings).toMatchObject({ topics: ['streams.many-hosts.rtmp.out.ladder.in'], format: 'bytes', unpack: true });
    expect(gpu.graph!.nodes.get(unpack)!.op).toBe('media.unpack');
    expect(gpu.graph!.edges.find((e) => e.to === 'ladder')).toMatchObject({ from: unpack, type: { kind: 'media' } });
  });

  it('sends media packets one a message when the record predates packed media, and unpacks what arrives either way', () => {
    const text = readFileSync(new URL('../../pipelines/many-hosts.yaml', import.meta.url), 'utf8');
    const checked = checkPipeline({ file: 'many-hosts.yaml', text, registry, env: {} });
    const { plan } = planGraph({ graph: checked.graph!, text });
    const edge = { from: 'rtmp', fromPort: 'out', to: 'ladder', toPort: 'in' };
    const origin = hostGraph({ graph: checked.graph!, plan: plan!, host: 'origin', registry, packed: { events: true, media: false } });
    const gpu = hostGraph({ graph: checked.graph!, plan: plan!, host: 'gpu', registry, packed: { events: true, media: false } });
    expect(origin.graph!.nodes.get(transportNodeName('send', edge))!.rawSettings).not.toHaveProperty('pack_bytes');
    expect(origin.graph!.nodes.get(transportNodeName('send', edge))!.settings).toMatchObject({ pack_bytes: 0 });
    expect(gpu.graph!.nodes.get(transportNodeName('receive', edge))!.rawSettings).toMatchObject({ unpack: true });
  });
});
