/**
 * A hosts file: checked by the hosts schema with its diagnostics located in
 * it, replacing the pipeline's hosts; what workers report wins over it.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { mergeReportedCapabilities, parseHostsFile } from '../../graph/hosts-file.ts';
import { registry } from '../../nodes/all.ts';

const hostsFile = `hosts:
  origin:
    role: origin
    offers: [listen, ffmpeg]
    listen: [10.0.0.1]
    url: http://10.0.0.1:7070
  gpu:
    role: gpu
    offers: [ffmpeg, gpu]
transports:
  kafka: { brokers: "a:9092,b:9092", partitions: 6 }
  objects: { url: "s3://me:secret@store/media", reachable_from: [origin] }
`;

describe('reading a hosts file', () => {
  it('gives the hosts with their listen addresses, url and places, and the transports', () => {
    const { deployment, diagnostics } = parseHostsFile('config/hosts.yaml', hostsFile);
    expect(diagnostics).toEqual([]);
    expect(deployment!.hosts.map((h) => [h.name, h.role, h.offers, h.listen, h.url])).toEqual([
      ['origin', 'origin', ['listen', 'ffmpeg'], ['10.0.0.1'], 'http://10.0.0.1:7070'],
      ['gpu', 'gpu', ['ffmpeg', 'gpu'], undefined, undefined],
    ]);
    expect(deployment!.hosts[1].at).toEqual({ file: 'config/hosts.yaml', line: 7, col: 3 });
    expect(deployment!.hosts[1].offersAt).toEqual({ file: 'config/hosts.yaml', line: 9, col: 13 });
    expect(deployment!.transports.kafka).toMatchObject({ brokers: ['a:9092', 'b:9092'], partitions: 6 });
    expect(deployment!.transports.objects).toMatchObject({ url: 's3://me:secret@store/media', reachableFrom: ['origin'] });
  });

  it('locates its mistakes in its own file, with the hosts schema\'s words', () => {
    const { deployment, diagnostics } = parseHostsFile('config/hosts.yaml', `hosts:
  gpu:
    offers: [ffmpg]
    rol: gpu
transports:
  kafka: { partitions: 0 }
  queue: {}
extra: 1
`);
    expect(deployment).toBeUndefined();
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      'config/hosts.yaml:3:14: error: unknown capability `ffmpg` (did you mean `ffmpeg`?)',
      'config/hosts.yaml:4:5: error: unknown field `rol` in host `gpu` (did you mean `role`?)',
      'config/hosts.yaml:6:3: error: `transports.kafka` needs `brokers`',
      'config/hosts.yaml:6:24: error: `partitions` of `transports.kafka` must be an integer from 1 to 10000, found `0`',
      'config/hosts.yaml:7:3: error: unknown transport `queue` (transports are `kafka` and `objects`)',
      'config/hosts.yaml:8:1: error: unknown field `extra` in a hosts file',
    ]);
  });

  it('refuses a file without hosts', () => {
    expect(parseHostsFile('h.yaml', 'transports: {}\n').diagnostics.map(formatDiagnostic)).toEqual(['h.yaml:1:1: error: a hosts file needs `hosts`, a map of host names to hosts, found nothing']);
    expect(parseHostsFile('h.yaml', '- a\n').diagnostics.map(formatDiagnostic)).toEqual(['h.yaml:1:1: error: a hosts file must be a map with `hosts` (and optionally `transports`), found a list']);
  });

  it('replaces the pipeline\'s hosts and transports when checking, so placement is checked against the file', () => {
    const { deployment } = parseHostsFile('config/hosts.yaml', hostsFile);
    const text = 'streams: 1\nname: p\nhosts:\n  solo: { offers: [listen] }\ntransports:\n  kafka: { brokers: [old:9092] }\nnodes:\n  gen:\n    op: generate\n    place: { role: edge }\n  out: { op: stdout, in: gen }\n';
    const result = checkPipeline({ file: 'p.yaml', text, registry, env: {}, deployment });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([expect.stringMatching(/^p\.yaml:10:5: error: no host satisfies the `place` of node `gen` \(role `edge`\) \(hosts: `origin`.*`gpu`/)]);
    const placed = checkPipeline({ file: 'p.yaml', text: text.replace('role: edge', 'role: gpu'), registry, env: {}, deployment });
    expect(placed.graph!.hosts.map((h) => h.name)).toEqual(['origin', 'gpu']);
    expect(placed.graph!.transports!.kafka!.brokers).toEqual(['a:9092', 'b:9092']);
  });
});

describe('transports in a pipeline', () => {
  it('are checked where they stand in the pipeline', () => {
    const text = 'streams: 1\nname: p\ntransports:\n  kafka: { brokers: [] }\n  object: { url: x }\nnodes:\n  gen: { op: generate }\n  out: { op: stdout, in: gen }\n';
    const result = checkPipeline({ file: 'p.yaml', text, registry, env: {} });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:4:21: error: `brokers` of `transports.kafka` must be a non-empty list of `host:port` or a comma-separated string, found a list',
      'p.yaml:5:3: error: unknown transport `object` (did you mean `objects`?)',
    ]);
  });
});

describe('what workers report', () => {
  const { deployment } = parseHostsFile('config/hosts.yaml', hostsFile);

  it('wins over the file, with a warning at the file\'s `offers` saying what differs', () => {
    const { hosts, diagnostics } = mergeReportedCapabilities(deployment!.hosts, [{ host: 'gpu', offers: ['ffmpeg', 'display'], listen: ['10.0.0.2'] }]);
    expect(hosts[1]).toMatchObject({ name: 'gpu', offers: ['ffmpeg', 'display'], listen: ['10.0.0.2'] });
    expect(hosts[0]).toBe(deployment!.hosts[0]);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      'config/hosts.yaml:9:13: warning: host `gpu` offers [ffmpeg, gpu] in this file but its worker reports [ffmpeg, display]: it lacks `gpu` and it also has `display`; the plan follows the report (update `offers` to what the host has)',
    ]);
    expect(deployment!.hosts[1].offers).toEqual(['ffmpeg', 'gpu']);
  });

  it('says nothing when the report agrees, or when the file declared no offers', () => {
    expect(mergeReportedCapabilities(deployment!.hosts, [{ host: 'origin', offers: ['ffmpeg', 'listen'] }]).diagnostics).toEqual([]);
    const bare = parseHostsFile('h.yaml', 'hosts:\n  box: {}\n').deployment!.hosts;
    const merged = mergeReportedCapabilities(bare, [{ host: 'box', offers: ['ffmpeg'] }]);
    expect(merged.diagnostics).toEqual([]);
    expect(merged.hosts[0].offers).toEqual(['ffmpeg']);
  });

  it('warns of a report from a host the file does not name', () => {
    const { diagnostics } = mergeReportedCapabilities(deployment!.hosts, [{ host: 'gpu2', offers: [] }]);
    expect(diagnostics.map(formatDiagnostic)).toEqual(['config/hosts.yaml:1:1: warning: a worker reports as host `gpu2`, which is not declared; it gets no share of the plan (did you mean `gpu`?)']);
  });
});
