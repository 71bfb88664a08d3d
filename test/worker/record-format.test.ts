/**
 * Deploy writes the newest format every planned host reads (its worker's
 * capability report says which), so a host on an older version is never
 * sent packs it cannot read.
 * The deployment record's format says which Kafka edges between hosts pack
 * several records a message: events and Bytes from format 3, media packets
 * too from format 4 (what deploy writes); formats 1 and 2 were written
 * before packing. A current worker runs each as it was written, so a mix of
 * hosts reading one record agrees.
 * A record of a format above the worker's is refused, named and reported,
 * never run as an older one (its packs would be lost as dead letters).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { oldestPlanFormat, parseCapabilities, parseRecord, recordFormat, recordFormatFor, type AppliedReport, type ControlPlane, type DeployRecord } from '../../cli/control-plane.ts';
import { planRecord, recordPlan, shareOfRecord } from '../../cli/worker-share.ts';
import { HostWorker } from '../../cli/worker.ts';
import type { Logger } from '../../runtime/types.ts';

const text = `streams: 1
name: g
hosts:
  a: { role: origin }
  b: { role: worker }
transports:
  kafka: { brokers: "127.0.0.1:9092", partitions: 3 }
nodes:
  gen:
    op: generate
    place: { host: a }
    with: { count: 3, fields: { seq: i } }
  raw:
    op: map
    in: gen
    place: { host: a }
    with: { set: { twice: "seq * 2" } }
  out:
    op: stdout
    in: raw
    place: { host: b }
`;

/** The pipeline of `pipelines/many-hosts.yaml`: an RTMP ingest on the origin, its media packets encoded on the gpu host. */
const media = { file: 'many-hosts.yaml', text: readFileSync(new URL('../../pipelines/many-hosts.yaml', import.meta.url), 'utf8') };

/** The record deploy publishes for `text`, in `format`. */
function recordIn(format: 1 | 2 | 3 | 4, pipeline = { file: 'g.yaml', text }): DeployRecord {
  const made = planRecord({ file: pipeline.file, text: pipeline.text, params: {}, capabilities: [] });
  expect(made.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  const fields = { version: 4, pipeline: made.graph!.name, file: pipeline.file, text: pipeline.text, params: {}, capabilities: [], published_at: '2026-12-03T00:00:00Z' };
  if (format === 1) return { format, ...fields };
  return { format, ...fields, ...recordPlan({ graph: made.graph!, plan: made.plan! }, pipeline.text) };
}

/** The settings of the sending host's producer and the receiving host's consumer of the edge `edge` between hosts `from` and `to`. */
function edgeEnds(record: DeployRecord, { from = 'a', to = 'b', edge = 'raw:out:out:in' } = {}): { produce: Record<string, unknown>; consume: Record<string, unknown> } {
  const sender = shareOfRecord(record, from);
  const receiver = shareOfRecord(record, to);
  expect([...sender.diagnostics, ...receiver.diagnostics].filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  return {
    produce: sender.graph!.nodes.get(`~send:${edge}`)!.settings as Record<string, unknown>,
    consume: receiver.graph!.nodes.get(`~receive:${edge}`)!.settings as Record<string, unknown>,
  };
}

/** The media packets' edge of `pipelines/many-hosts.yaml`: `rtmp` on the origin to `ladder` on the gpu host. */
const mediaEdge = { from: 'origin', to: 'gpu', edge: 'rtmp:out:ladder:in' };

describe('the deployment record\'s format and packed edges', () => {
  it('is format 4 in this version, and a format 4 record reads back as it was written', () => {
    expect(recordFormat).toBe(4);
    const record = recordIn(4);
    expect(parseRecord(JSON.stringify(record)).record).toEqual(record);
  });

  it('packs the edges between hosts of a record of format 4, those of media packets included', () => {
    const { produce, consume } = edgeEnds(recordIn(4));
    expect(produce.pack_bytes).toBe(64 * 1024);
    expect(consume.unpack).toBe(true);
    const packets = edgeEnds(recordIn(4, media), mediaEdge);
    expect(packets.produce).toMatchObject({ pack_bytes: 64 * 1024, key: 'stream' });
    expect(packets.consume).toMatchObject({ unpack: true, format: 'bytes' });
  });

  it('packs events but sends media packets one a message for a record of format 3, as workers of format 3 read them, and unpacks what arrives', () => {
    expect(edgeEnds(recordIn(3)).produce.pack_bytes).toBe(64 * 1024);
    const packets = edgeEnds(recordIn(3, media), mediaEdge);
    expect(packets.produce.pack_bytes).toBe(0);
    // A host on this version reads what a host already on a format 4 record sends.
    expect(packets.consume.unpack).toBe(true);
  });

  it('sends one record a message for a record of format 2 or 1, as workers before packing did, and still unpacks what arrives', () => {
    for (const format of [2, 1] as const) {
      const { produce, consume } = edgeEnds(recordIn(format));
      expect(produce.pack_bytes, `format ${format}`).toBe(0);
      // A host still on an older record reads what a host on a newer one sends (unpacked messages pass as they are).
      expect(consume.unpack, `format ${format}`).toBe(true);
    }
  });

  it('refuses a record of a newer format, naming its file and version, and what to do', () => {
    const { error, record } = parseRecord(JSON.stringify({ ...recordIn(4), format: recordFormat + 1, something: 'new' }));
    expect(record).toBeUndefined();
    expect(error).toBe(`\`g.yaml\` version 4: the deployment record has format ${recordFormat + 1}, newer than this worker reads (formats 1 to ${recordFormat}): upgrade \`streams\` on this host to the version deploy runs`);
    // On Kafka the version is the record's offset, given beside its text.
    expect(parseRecord(JSON.stringify({ format: 9, file: 'g.yaml' }), 12).error).toMatch(/^`g\.yaml` version 12: the deployment record has format 9, /);
  });

  it('keeps the running version and reports the refusal, so deploy names the host and why', async () => {
    const published = JSON.stringify({ ...recordIn(4), format: recordFormat + 1 });
    const reports: AppliedReport[] = [];
    const plane = {
      address: 'test',
      latest: async () => 4,
      current: async () => parseRecord(published),
      reportApplied: async (_host: string, report: AppliedReport) => void reports.push(report),
    } as unknown as ControlPlane;
    const errors: string[] = [];
    const log = { error: (_fields: unknown, message: string) => errors.push(message), warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;
    const worker = new HostWorker({ host: 'b', plane, log, drainMs: 100, pipeline: 'g' });
    await worker.consider();
    await worker.consider();
    expect(worker.version).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^`g\.yaml` version 4: the deployment record has format 5, newer than this worker reads .*; keeping the running version$/);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ version: 4, status: 'rejected', nodes: [], error: expect.stringMatching(/has format 5, newer than this worker reads/) });
  });
});

describe('the format deploy writes, from what the planned hosts read', () => {
  const report = (host: string, reads?: number) => ({ host, offers: ['listen' as const], ...(reads !== undefined && { reads }) });

  it('is the newest format when every planned host reads it; reports of hosts outside the plan do not count', () => {
    expect(recordFormatFor(['a', 'b'], [report('a', 4), report('b', recordFormat), report('old', 2)])).toEqual({ format: recordFormat, behind: [] });
    // A worker newer than deploy reads this one's format too.
    expect(recordFormatFor(['a'], [report('a', recordFormat + 3)])).toEqual({ format: recordFormat, behind: [] });
  });

  it('is the oldest that a planned host reads, naming the hosts that hold it back', () => {
    expect(recordFormatFor(['a', 'b', 'c'], [report('a', 4), report('b', 3), report('c', 4)])).toEqual({ format: 3, behind: ['b'] });
    expect(recordFormatFor(['a', 'b'], [report('a', 2), report('b', 3)])).toEqual({ format: 2, behind: ['a', 'b'] });
  });

  it('takes a worker that does not say what it reads (older than the report\'s `reads`), or that never reported, as reading the oldest format with a plan', () => {
    expect(oldestPlanFormat).toBe(2);
    expect(recordFormatFor(['a', 'b'], [report('a', 4), report('b')])).toEqual({ format: 2, behind: ['b'] });
    expect(recordFormatFor(['a', 'b'], [report('a', 4)])).toEqual({ format: 2, behind: ['b'] });
  });

  it('refuses, naming the host, when a planned host reads no format with a plan', () => {
    expect(recordFormatFor(['a', 'b'], [report('a', 4), report('b', 1)])).toEqual({ error: 'host `b`\'s worker reads deployment records of format 1 at most, and deploy writes format 2 or newer: upgrade `streams` on host `b`' });
  });

  it('sends media packets one a message while a host of format 3 runs among upgraded ones, so its consumer (no unpack) reads them', () => {
    const hosts = ['origin', 'gpu', 'edge'];
    const chosen = recordFormatFor(hosts, [report('origin', recordFormat), report('gpu', 3), report('edge', recordFormat)]);
    expect(chosen).toEqual({ format: 3, behind: ['gpu'] });
    if (!('format' in chosen)) return;
    expect(edgeEnds(recordIn(chosen.format, media), mediaEdge).produce.pack_bytes).toBe(0);
    // Events still pack: format 3 workers read those packs.
    expect(edgeEnds(recordIn(chosen.format)).produce.pack_bytes).toBe(64 * 1024);
  });
});

describe('the capability report', () => {
  it('says which record formats the worker reads, and an older worker\'s report without it still reads', () => {
    const { reports, malformed } = parseCapabilities({ a: JSON.stringify({ host: 'a', offers: ['listen'], reads: recordFormat }), b: JSON.stringify({ host: 'b', offers: ['listen'] }) });
    expect(malformed).toEqual([]);
    expect(reports).toEqual([{ host: 'a', offers: ['listen'], reads: recordFormat }, { host: 'b', offers: ['listen'] }]);
    expect(parseCapabilities({ c: JSON.stringify({ host: 'c', offers: [], reads: 'four' }) }).malformed).toEqual(['c']);
  });
});
