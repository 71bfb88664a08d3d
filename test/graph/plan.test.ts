/**
 * The planner: nodes to hosts from `place` and requirements, `parallelism`
 * spread round-robin, edges between hosts given their transport, and every
 * error located in the pipeline or the hosts file.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline, type CheckInput } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { planGraph, shareOf, type Plan } from '../../graph/plan.ts';
import { topicFor, withoutCredentials } from '../../graph/plan-edges.ts';
import { registry } from '../../nodes/all.ts';

const hosts = `hosts:
  origin: { role: origin, offers: [listen, ffmpeg], url: "http://10.0.0.1:7070" }
  gpu: { role: gpu, offers: [ffmpeg, gpu], url: "http://10.0.0.2:7070" }
  edge: { role: edge, offers: [listen], url: "http://10.0.0.3:7070" }
`;
const kafka = 'transports:\n  kafka: { brokers: "k1:9092, k2:9092" }\n  objects: { url: "s3://media/live" }\n';

function pipeline(nodes: string, extra = hosts + kafka): string {
  return `streams: 1\nname: g\n${extra}nodes:\n${nodes}`;
}

function check(text: string, input: Partial<CheckInput> = {}) {
  const checked = checkPipeline({ file: 'p.yaml', text, registry, env: {}, ...input });
  expect(checked.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  return checked.graph!;
}

function plan(text: string, input: Partial<CheckInput> = {}): Plan {
  const result = planGraph({ graph: check(text, input), text });
  expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
  return result.plan!;
}

function planErrors(text: string): string[] {
  const result = planGraph({ graph: check(text), text });
  expect(result.plan).toBeUndefined();
  return result.diagnostics.map(formatDiagnostic);
}

const hostsOf = (p: Plan) => Object.fromEntries(p.nodes.map((n) => [n.name, n.instances.join(',')]));

describe('placing nodes on hosts', () => {
  it('follows `place`, and puts an unplaced node with its input so the edge stays in the process', () => {
    const p = plan(pipeline(`  gen: { op: generate, place: { role: edge }, with: { count: 1 } }
  keep: { op: filter, in: gen, with: { where: "i > 0" } }
  out: { op: stdout, in: keep, place: { host: origin } }
`));
    expect(hostsOf(p)).toEqual({ gen: 'edge', keep: 'edge', out: 'origin' });
    expect(p.edges.map((e) => e.transport.kind)).toEqual(['local', 'kafka']);
  });

  it('honours what an operator requires: an encode with a hardware encoder goes to the host offering a gpu', () => {
    const p = plan(pipeline(`  rtmp: { op: ingest.rtmp, with: { listen: 127.0.0.1:1935, app: live } }
  ladder: { op: encode, in: rtmp, with: { ladder: sd, hw: nvenc } }
`));
    expect(hostsOf(p)).toEqual({ rtmp: 'origin', ladder: 'gpu' });
  });

  it('puts a listener that names its address on the host that lists it, and refuses one no host lists', () => {
    const listed = hosts.replace('role: edge, offers: [listen]', 'role: edge, offers: [listen], listen: [10.0.0.3]').replace('role: origin, offers: [listen, ffmpeg]', 'role: origin, offers: [listen, ffmpeg], listen: [10.0.0.1]');
    const p = plan(pipeline('  web: { op: http.server, with: { listen: "10.0.0.3:8080" } }\n  out: { op: stdout, in: web }\n', listed + kafka));
    expect(p.nodes[0].hosts).toEqual(['edge']);
    const anywhere = plan(pipeline('  web: { op: http.server, with: { listen: "0.0.0.0:8080" } }\n  out: { op: stdout, in: web }\n', listed + kafka));
    expect(anywhere.nodes[0].hosts).toEqual(['origin']);
    expect(planErrors(pipeline('  web: { op: http.server, with: { listen: "10.9.9.9:8080" } }\n  out: { op: stdout, in: web }\n', listed + kafka))).toEqual([
      expect.stringMatching(/^p\.yaml:11:35: error: node `web` listens on `10\.9\.9\.9`, which no host lists in its `listen` addresses \(hosts: `origin` \(listen 10\.0\.0\.1\); `edge` \(listen 10\.0\.0\.3\)\)/),
    ]);
  });

  it('spreads `parallelism` round-robin over the matching hosts, the same way every time', () => {
    const text = pipeline(`  gen: { op: generate, place: { host: origin }, with: { count: 1 } }
  shape: { op: map, in: gen, parallelism: 4, with: { set: { j: "i" } } }
`);
    const first = plan(text);
    expect(first.nodes[1].instances).toEqual(['gpu', 'edge', 'origin', 'gpu']);
    expect(first.nodes[1].hosts).toEqual(['gpu', 'edge', 'origin']);
    expect(plan(text)).toEqual(first);
  });

  it('with no `hosts:` runs everything on the one local host, every edge in the process', () => {
    const p = plan(pipeline('  gen: { op: generate, with: { count: 1 } }\n  out: { op: stdout, in: gen }\n', ''));
    expect(hostsOf(p)).toEqual({ gen: 'local', out: 'local' });
    expect(p.edges[0].transport).toEqual({ kind: 'local' });
  });

  it('plans over reported hosts when given them, and reports a node none of them can run at its `place`', () => {
    const text = pipeline('  ladder: { op: encode, in: rtmp, place: { role: gpu }, with: { ladder: sd, hw: nvenc } }\n  rtmp: { op: ingest.rtmp, with: { listen: 127.0.0.1:1935, app: live } }\n');
    const graph = check(text);
    const withoutGpu = graph.hosts.map((h) => (h.name === 'gpu' ? { ...h, offers: ['ffmpeg' as const] } : h));
    const result = planGraph({ graph, text, hosts: withoutGpu });
    expect(result.plan).toBeUndefined();
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      expect.stringMatching(/^p\.yaml:11:35: error: node `ladder` \(`encode`\) needs `ffmpeg`, `gpu` but no host its `place` selects offers them all/),
    ]);
  });
});

describe('keys and parallelism', () => {
  it('partitions a keyed window by its key, on a Kafka topic with a partition per instance', () => {
    const p = plan(pipeline(`  gen: { op: generate, place: { host: origin }, with: { count: 1 } }
  win: { op: window.tumbling, in: gen, parallelism: 3, with: { size: 1s, key: device } }
`));
    expect(p.nodes[1]).toMatchObject({ key: 'device', hosts: ['gpu', 'edge', 'origin'] });
    expect(p.edges[0].transport).toEqual({ kind: 'kafka', carries: 'events', topic: 'streams.g.gen.out.win.in', partitions: 3, key: 'device', brokers: ['k1:9092', 'k2:9092'] });
  });

  it('keys an aggregate after a window by the panes\' `key`', () => {
    const p = plan(pipeline(`  gen: { op: generate, place: { host: origin }, with: { count: 1 } }
  win: { op: window.tumbling, in: gen, place: { host: origin }, with: { size: 1s, key: device } }
  sums: { op: aggregate, in: win, parallelism: 2, with: { n: count() } }
`));
    expect(p.nodes[2].key).toBe('key');
    expect(p.edges[1].transport).toMatchObject({ kind: 'kafka', key: 'key', partitions: 2 });
  });

  it('keeps an aggregate with its window\'s parallelism on the window\'s instances, reading the one beside it', () => {
    const p = plan(pipeline(`  gen: { op: generate, place: { host: origin }, with: { count: 1 } }
  win: { op: window.tumbling, in: gen, parallelism: 2, with: { size: 1s, key: device } }
  sums: { op: aggregate, in: win, parallelism: 2, with: { n: count() } }
`));
    expect(p.nodes[2].instances).toEqual(p.nodes[1].instances);
    expect(p.edges[1].transport).toEqual({ kind: 'local' });
  });

  it('refuses a keyed node with parallelism but no key, at its `parallelism`', () => {
    expect(planErrors(pipeline(`  gen: { op: generate, with: { count: 1 } }
  seen:
    op: dedupe
    in: gen
    parallelism: 2
`))).toEqual([expect.stringMatching(/^p\.yaml:15:5: error: node `seen` \(`dedupe`\) keeps state per key and runs with `parallelism: 2` but has no `key`.*\(set `key` under `with:`, or remove `parallelism`\)$/)]);
  });

  it('refuses a running aggregate (no window before it) with parallelism', () => {
    expect(planErrors(pipeline(`  gen: { op: generate, with: { count: 1 } }
  sums:
    op: aggregate
    in: gen
    parallelism: 2
    with: { n: count() }
`))).toEqual([expect.stringMatching(/^p\.yaml:15:5: error: node `sums` \(`aggregate`\) runs with `parallelism: 2` but its input has no `key` field/)]);
  });

  it('keeps an unkeyed node spread like its input on the same hosts, each instance reading the one beside it', () => {
    const p = plan(pipeline(`  gen: { op: generate, parallelism: 2, place: { role: edge }, with: { count: 1 } }
  shape: { op: map, in: gen, parallelism: 2, place: { role: edge }, with: { set: { j: "i" } } }
`));
    expect(p.edges[0].transport).toEqual({ kind: 'local' });
  });
});

describe('transports between hosts', () => {
  const media = `  rtmp: { op: ingest.rtmp, place: { role: origin }, with: { listen: 127.0.0.1:1935, app: live } }
  ladder: { op: encode, in: rtmp, place: { role: gpu }, with: { ladder: sd } }
  hls: { op: segment.hls, in: ladder, place: { role: gpu }, with: { segment: 1s, window: 4 } }
  cdn: { op: serve.http, in: hls, place: { role: edge }, with: { listen: 127.0.0.1:8080 } }
`;

  it('carries media packets on a Kafka topic keyed by stream, and segments through the object store pulled from the upstream host', () => {
    const p = plan(pipeline(media));
    expect(p.edges.map((e) => e.transport)).toEqual([
      { kind: 'kafka', carries: 'media', topic: 'streams.g.rtmp.out.ladder.in', partitions: 1, key: 'stream', brokers: ['k1:9092', 'k2:9092'] },
      { kind: 'local' },
      { kind: 'object-store+http-pull', store: 's3://media/live', prefix: 'g/hls/', pullFrom: ['http://10.0.0.2:7070'] },
    ]);
  });

  it('reports an edge that needs Kafka when no `transports.kafka` is declared, at the node it feeds', () => {
    expect(planErrors(pipeline(media, hosts))).toEqual([
      expect.stringMatching(/^p\.yaml:9:25: error: edge `rtmp` → `ladder` crosses hosts \(origin → gpu\) and needs a Kafka topic, but `transports.kafka` is not declared \(declare `transports: \{kafka:/),
      expect.stringMatching(/^p\.yaml:11:26: warning: edge `hls` → `cdn` crosses hosts \(gpu → edge\) and carries media segments, but `transports.objects` is not declared/),
    ]);
  });

  it('reports a host that a transport does not reach, at its `reachable_from`', () => {
    const declared = 'transports:\n  kafka: { brokers: [k1:9092], reachable_from: [origin, edge] }\n  objects: { url: /srv/objects }\n';
    const errors = planErrors(pipeline(media, hosts + declared));
    expect(errors).toEqual([expect.stringMatching(/^p\.yaml:8:48: error: edge `rtmp` → `ladder` crosses hosts \(origin → gpu\) through `transports.kafka`, which host `gpu` cannot reach/)]);
  });

  it('reports a host segments are pulled from that has no `url`, at the host', () => {
    const noUrl = hosts.replace(', url: "http://10.0.0.2:7070"', '');
    expect(planErrors(pipeline(media, noUrl + kafka))).toEqual([expect.stringMatching(/^p\.yaml:5:3: error: edge `hls` → `cdn` crosses hosts \(gpu → edge\): the edge pulls segments from host `gpu`, which has no `url`/)]);
  });

  it('names topics deterministically and keeps them within Kafka\'s limit', () => {
    expect(topicFor('g', { from: 'a', fromPort: 'stats', to: 'b', toPort: 'in' })).toBe('streams.g.a.stats.b.in');
    const long = topicFor('g', { from: 'a'.repeat(200), fromPort: 'out', to: 'b'.repeat(100), toPort: 'in' });
    expect(long.length).toBe(249);
    expect(long).toBe(topicFor('g', { from: 'a'.repeat(200), fromPort: 'out', to: 'b'.repeat(100), toPort: 'in' }));
    expect(long).not.toBe(topicFor('g', { from: 'a'.repeat(200), fromPort: 'out', to: 'b'.repeat(99), toPort: 'in' }));
  });

  it('keeps credentials out of the object store URL the plan shows', () => {
    expect(withoutCredentials('s3://KEY:SECRET@minio:9000/media')).toBe('s3://minio:9000/media');
    expect(withoutCredentials('/srv/objects')).toBe('/srv/objects');
  });
});

describe('a host\'s share', () => {
  it('lists the instances a host runs and the transports it reads and writes', () => {
    const p = plan(pipeline(`  gen: { op: generate, place: { host: origin }, with: { count: 1 } }
  win: { op: window.tumbling, in: gen, parallelism: 2, place: { role: gpu }, with: { size: 1s, key: device } }
  out: { op: stdout, in: win, place: { host: edge } }
`));
    const share = shareOf(p, 'gpu');
    expect(share.nodes).toEqual([{ name: 'win', instances: [0, 1] }]);
    expect(share.inbound.map((e) => e.from)).toEqual(['gen']);
    expect(share.outbound.map((e) => e.to)).toEqual(['out']);
    expect(shareOf(p, 'origin').nodes).toEqual([{ name: 'gen', instances: [0] }]);
  });
});
