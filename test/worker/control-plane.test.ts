/**
 * The control plane's record read back (what a worker accepts and how it
 * names what is wrong), the `--control` URL, and the capability report a
 * worker makes of its host.
 */
import { describe, expect, it } from 'vitest';
import { parseApplied, parseCapabilities, parseRecord, recordFormat } from '../../cli/control-plane.ts';
import { controlKeys } from '../../cli/control-plane-redis.ts';
import { controlUrl, probeCapabilities, workerCommand } from '../../cli/worker.ts';
import { planRecord, shareOfRecord } from '../../cli/worker-share.ts';

const text = `streams: 1
name: g
hosts:
  a: { role: origin, offers: [listen, ffmpeg] }
  b: { role: worker }
transports:
  kafka: { brokers: "127.0.0.1:9092" }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: 3, fields: { seq: i } } }
  out: { op: stdout, in: gen, place: { host: b } }
`;
const record = { format: 1 as const, version: 3, pipeline: 'g', file: 'g.yaml', text, params: {}, capabilities: [], published_at: '2026-12-02T00:00:00Z' };

describe('the deployment record', () => {
  it('reads a well-formed record, and names what is wrong with a bad one', () => {
    expect(parseRecord(JSON.stringify(record)).record).toEqual(record);
    expect(parseRecord(null)).toEqual({});
    expect(parseRecord('{nope').error).toMatch(/^the deployment record is not JSON: /);
    expect(parseRecord(JSON.stringify({ ...record, version: 'x' })).error).toMatch(/malformed: `version`/);
    expect(parseRecord(JSON.stringify({ ...record, format: 2 })).error).toMatch(/malformed: `plan`/);
    expect(parseRecord(JSON.stringify({ ...record, format: 3 })).error).toMatch(/malformed: `plan`/);
    expect(parseRecord(JSON.stringify({ ...record, format: 4 })).error).toMatch(/malformed: `plan`/);
    expect(parseRecord(JSON.stringify({ ...record, format: 0 })).error).toMatch(/malformed: `format`/);
  });

  it('keys a deployment by its pipeline name', () => {
    expect(controlKeys('g')).toEqual({
      record: 'streams:deploy:g', version: 'streams:deploy:g:version', channel: 'streams:deploy:g:changed',
      applied: 'streams:deploy:g:applied', heartbeat: 'streams:deploy:g:heartbeat', capabilities: 'streams:deploy:g:capabilities',
    });
  });

  it('reads capability and applied reports, leaving malformed ones out', () => {
    const { reports, malformed } = parseCapabilities({ b: JSON.stringify({ host: 'b', offers: ['listen'] }), a: '{', c: JSON.stringify({ host: 'x', offers: [] }) });
    expect(reports).toEqual([{ host: 'b', offers: ['listen'] }]);
    expect(malformed).toEqual(['a', 'c']);
    expect(parseApplied(JSON.stringify({ version: 2, status: 'applied', at: 'now', nodes: [] }))?.version).toBe(2);
    expect(parseApplied('[]')).toBeUndefined();
  });

  it('plans with the workers\' reports over the declared offers, with a located warning where they differ', () => {
    const planned = planRecord({ ...record, capabilities: [{ host: 'a', offers: ['listen'] }] });
    expect(planned.plan).toBeDefined();
    expect(planned.diagnostics.map((d) => `${d.line}:${d.severity}:${d.code}`)).toEqual(['4:warning:capabilities_differ']);
    expect(shareOfRecord(record, 'b').graph!.nodes.has('out')).toBe(true);
  });
});

describe('the worker\'s options and report', () => {
  it('takes redis:// or kafka://BROKER[,BROKER] as the control plane, and names a bad address', () => {
    expect(controlUrl('redis://127.0.0.1:6379')).toEqual({ kind: 'redis', url: 'redis://127.0.0.1:6379' });
    expect(controlUrl('kafka://127.0.0.1:9092')).toEqual({ kind: 'kafka', brokers: ['127.0.0.1:9092'] });
    expect(controlUrl('kafka://k1:9092, k2:9093/')).toEqual({ kind: 'kafka', brokers: ['k1:9092', 'k2:9093'] });
    expect(() => controlUrl('kafka://k1:9092,k2')).toThrow(/`k2` is not a broker HOST:PORT \(in `kafka:\/\/k1:9092,k2`\)/);
    expect(() => controlUrl('kafka://')).toThrow(/`` is not a broker HOST:PORT/);
    expect(() => controlUrl('http://x')).toThrow(/redis:\/\/HOST:PORT or kafka:\/\/BROKER/);
    expect(() => controlUrl(undefined)).toThrow(/--control is required/);
  });

  it('refuses a --name that is no pipeline name before reaching the control plane', async () => {
    await expect(workerCommand({ host: 'a', name: 'a b', control: 'kafka://127.0.0.1:9' }, [])).rejects.toThrow(/--name `a b` is not a pipeline name/);
  });

  it('reports a display when DISPLAY is set, no ffmpeg when the binary is missing, and the newest record format it reads', async () => {
    const report = await probeCapabilities('h', { DISPLAY: ':99', STREAMS_FFMPEG: '/nonexistent/ffmpeg' });
    expect(report).toEqual({ host: 'h', offers: ['listen', 'display'], reads: recordFormat });
    const plain = await probeCapabilities('h', { STREAMS_FFMPEG: '/nonexistent/ffmpeg' });
    expect(plain.offers).toEqual(['listen']);
  });
});
