/**
 * `streams plan` and `streams graph --format svg` as a user runs them:
 * output formats, hosts files, exit codes and located errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function streams(args: string[], cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const bin = join(import.meta.dirname, '../../bin/streams.ts');
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000, cwd });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'streams-plan-'));
const bare = join(dir, 'bare.yaml');
writeFileSync(bare, `streams: 1
name: bare
nodes:
  gen: { op: generate, place: { role: edge }, with: { count: 1 } }
  seen:
    op: dedupe
    in: gen
    parallelism: 2
    with: { key: id }
  out: { op: stdout, in: seen, place: { role: origin } }
`);
const hosts = join(dir, 'hosts.yaml');
writeFileSync(hosts, 'hosts:\n  o: { role: origin }\n  e: { role: edge }\ntransports:\n  kafka: { brokers: [k:9092] }\n');

describe('streams plan', () => {
  it('prints the example pipeline\'s plan as a table: nodes with hosts, then edges between hosts with their transport', () => {
    const result = streams(['plan', 'pipelines/many-hosts.yaml']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^node\s+op\s+hosts\nrtmp\s+ingest\.rtmp\s+origin\nladder\s+encode\s+gpu\n/);
    expect(result.stdout).toMatch(/hls → cdn\s+Segment<cmaf>\s+object store s3:\/\/media\/live\/many-hosts\/hls\/ \(retained 1h\), pulled from http:\/\/10\.0\.0\.1:7070/);
    expect(result.stdout).toMatch(/rtmp → ladder\s+Media<\*\/\*>\s+kafka streams\.many-hosts\.rtmp\.out\.ladder\.in/);
  });

  it('prints JSON with nodes and their hosts, edges and their transport', () => {
    const result = streams(['plan', 'pipelines/many-hosts.yaml', '--format', 'json']);
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.version).toBe(1);
    expect(plan.nodes.find((n: { name: string }) => n.name === 'ladder')).toMatchObject({ op: 'encode', hosts: ['gpu'] });
    expect(plan.edges.find((e: { to: string }) => e.to === 'cdn').transport.kind).toBe('object-store+http-pull');
    expect(plan.hosts.map((h: { name: string }) => h.name)).toEqual(['origin', 'gpu', 'edge']);
  });

  it('draws DOT and SVG', () => {
    expect(streams(['plan', 'pipelines/many-hosts.yaml', '-f', 'dot']).stdout).toContain('subgraph "cluster_gpu"');
    const svg = streams(['plan', 'pipelines/many-hosts.yaml', '-f', 'svg']);
    expect(svg.code).toBe(0);
    expect(svg.stdout).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
  });

  it('takes hosts and transports from --hosts, and from config/hosts.yaml when the pipeline has none', () => {
    const given = streams(['plan', bare, '--hosts', hosts]);
    expect(given.stderr).toBe('');
    expect(given.stdout).toMatch(/seen\s+dedupe\s+o, e \(key id\)/);
    const cwd = mkdtempSync(join(tmpdir(), 'streams-plan-cwd-'));
    spawnSync('mkdir', [join(cwd, 'config')]);
    writeFileSync(join(cwd, 'config/hosts.yaml'), 'hosts:\n  o: { role: origin }\n  e: { role: edge }\ntransports:\n  kafka: { brokers: [k:9092] }\n');
    expect(streams(['plan', bare], cwd).stdout).toMatch(/gen\s+generate\s+e\n/);
  });

  it('exits 1 with the hosts file\'s errors located in it', () => {
    const broken = join(dir, 'broken-hosts.yaml');
    writeFileSync(broken, 'hosts:\n  o: { role: origin, offers: [gpus] }\n');
    const result = streams(['plan', bare, '--hosts', broken]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/broken-hosts\.yaml:2:31: error: unknown capability `gpus` \(did you mean `gpu`\?\)/);
  });

  it('exits 1 for a plan that cannot be made, located in the pipeline', () => {
    const noKafka = join(dir, 'no-kafka.yaml');
    writeFileSync(noKafka, 'hosts:\n  o: { role: origin }\n  e: { role: edge }\n');
    const result = streams(['plan', bare, '--hosts', noKafka]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/bare\.yaml:8:5: error: edge `gen` → `seen` crosses hosts \(e → o, e\) and needs a Kafka topic, but `transports.kafka` is not declared/);
  });

  it('refuses an unknown format and a missing file with exit code 2', () => {
    expect(streams(['plan', bare, '--format', 'png'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown format `png` \(use table, json, dot, svg\)/) });
    expect(streams(['plan', join(dir, 'nope.yaml')]).code).toBe(2);
    expect(streams(['plan', bare, '--hosts', join(dir, 'nope.yaml')]).code).toBe(2);
  });
});

describe('streams graph --format svg', () => {
  it('draws the pipeline as a standalone SVG with every node', () => {
    const result = streams(['graph', 'pipelines/demo.yaml', '--format', 'svg']);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(result.stdout).toContain('</svg>');
    expect(result.stdout).toContain('class="node"');
  });
});
