/**
 * The Kafka control plane's format, without a broker: topic names, the
 * version a record takes from its offset, and the status topic's keys.
 */
import { describe, expect, it } from 'vitest';
import { parseRecord } from '../../cli/control-plane.ts';
import { kafkaControlTopics, planKey, splitStatus, versionOfOffset } from '../../cli/control-plane-kafka.ts';

const record = { format: 1, pipeline: 'g', file: 'g.yaml', text: 'streams: 1\nname: g\n', params: {}, capabilities: [], published_at: '2026-12-02T00:00:00Z' };

describe('the Kafka control plane', () => {
  it('names three topics per pipeline, apart from the edges\' `streams.GRAPH....` topics', () => {
    expect(kafkaControlTopics('g')).toEqual({ plan: 'streams-control.g.plan', capabilities: 'streams-control.g.capabilities', status: 'streams-control.g.status' });
    expect(planKey).toBe('record');
  });

  it('numbers versions by the record\'s offset: unique, increasing, from 1', () => {
    expect([0n, 1n, 41n].map(versionOfOffset)).toEqual([1, 2, 42]);
  });

  it('gives a record its version from the offset, whatever its text holds', () => {
    expect(parseRecord(JSON.stringify(record), 7).record).toEqual({ ...record, version: 7 });
    expect(parseRecord(JSON.stringify({ ...record, version: 3 }), 9).record?.version).toBe(9);
    // Without an offset's version, a record with none is malformed (the Redis record carries its own).
    expect(parseRecord(JSON.stringify(record)).error).toMatch(/malformed: `version`/);
    expect(parseRecord('[1]', 2).error).toMatch(/malformed: `\(record\)`/);
    expect(parseRecord('{', 2).error).toMatch(/not JSON/);
  });

  it('splits the status topic into applied reports and heartbeats by host, ignoring other keys', () => {
    const status = splitStatus([
      ['applied/a', '{"version":1}'],
      ['heartbeat/a', '1000'],
      ['heartbeat/b/c', '2000'],
      ['applied/', 'x'],
      ['other', 'y'],
      ['noise/a', 'z'],
    ]);
    expect(status).toEqual({ applied: { a: '{"version":1}' }, heartbeats: { a: '1000', 'b/c': '2000' } });
  });
});
