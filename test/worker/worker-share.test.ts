/**
 * A worker's share of a record of format 4 (2 with packed edges): deploy's plan, where each node
 * is written, and the topics; the worker checks only its nodes, the nodes
 * they send to and what is upstream (the rest blanked, diagnostics at their
 * own line and column), and checks the whole file when the share does not
 * stand alone.
 */
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { nodeLines, shareNodes, shareText } from '../../graph/share-text.ts';
import { parseRecord, type DeployRecord } from '../../cli/control-plane.ts';
import { planRecord, recordPlan, shareOfRecord } from '../../cli/worker-share.ts';

const text = `streams: 1
name: g
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: worker }
transports:
  kafka: { brokers: "127.0.0.1:9092", partitions: 3 }
nodes:
  gen:
    op: generate
    place: { host: a }
    with: { count: 3, fields: { seq: i, device: '"dev-" + string(i % 2)' } }
  scaled:
    op: map
    in: gen
    place: { host: a }
    with: { set: { twice: "seq * 2" } }
  hot:
    # read on host b from a's topic
    op: filter
    in: scaled
    place: { host: b }
    with: { where: "twice > 1" }
  spare:
    op: map
    in: hot
    place: { host: b }
    with: { set: { half: "twice / 2" } }
  out:
    op: stdout
    in: hot
    place: { host: b }
  lone:
    op: generate
    place: { host: c }
    with: { count: 1, fields: { seq: i } }
  lone-out:
    op: stdout
    in: lone
    place: { host: c }
`;

/** A record as deploy publishes it for `published` (the plan made from `planned`, the same text unless a test says otherwise). */
function recordOf(published: string, planned = published): Extract<DeployRecord, { format: 4 }> {
  const made = planRecord({ file: 'g.yaml', text: planned, params: {}, capabilities: [] });
  expect(made.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  const { plan, lines, topics } = recordPlan({ graph: made.graph!, plan: made.plan! }, planned);
  return { format: 4, version: 4, pipeline: 'g', file: 'g.yaml', text: published, params: {}, capabilities: [], plan, ...(lines && { lines }), topics, published_at: '2026-12-03T00:00:00Z' };
}

describe('the plan deploy publishes', () => {
  it('records each node\'s lines, up to the next node or the end of `nodes`, and the topic of each cross-host edge once', () => {
    const record = recordOf(text);
    expect(record.lines).toMatchObject({ gen: [10, 13], scaled: [14, 18], hot: [19, 24], lone: [34, 37], 'lone-out': [38, 41] });
    expect(record.topics).toEqual([{ topic: 'streams.g.scaled.out.hot.in', partitions: 3, brokers: ['127.0.0.1:9092'] }]);
    // The record reads back as it was written.
    expect(parseRecord(JSON.stringify(record)).record).toEqual(record);
  });

  it('reads back a segment edge\'s retention (the writer on the origin sweeps with it)', () => {
    const record = recordOf(text);
    const [edge] = record.plan.edges;
    const segments = { ...edge, transport: { kind: 'object-store+http-pull' as const, store: 's3://media/live', prefix: 'g/hls/', pullFrom: ['http://10.0.0.1:7070'], retain: '10m' } };
    const withSegments = { ...record, plan: { ...record.plan, edges: [...record.plan.edges, segments] } };
    const read = parseRecord(JSON.stringify(withSegments)).record;
    expect(read?.format === 4 && read.plan.edges.at(-1)?.transport).toEqual(segments.transport);
  });

  it('records no lines for nodes written as one flow map, so that workers check such a file whole', () => {
    const flow = text.replace(/nodes:[\s\S]*/, 'nodes: { gen: { op: generate, place: { host: a }, with: { count: 3, fields: { seq: i } } }, out: { op: stdout, in: gen, place: { host: b } } }\n');
    const record = recordOf(flow);
    expect(record.lines).toBeUndefined();
    const share = shareOfRecord(record, 'b');
    expect(share.checked).toBe('whole');
    expect([...share.graph!.nodes.keys()].filter((n) => !n.startsWith('~'))).toEqual(['out']);
  });
});

describe('a worker\'s share of a record of format 4', () => {
  it('keeps the host\'s nodes, the nodes they send to and everything upstream, blanking the rest line for line', () => {
    const record = recordOf(text);
    expect([...shareNodes(record.plan, 'b')].sort()).toEqual(['gen', 'hot', 'out', 'scaled', 'spare']);
    expect([...shareNodes(record.plan, 'a')].sort()).toEqual(['gen', 'hot', 'scaled']);
    expect([...shareNodes(record.plan, 'c')].sort()).toEqual(['lone', 'lone-out']);
    const cut = shareText(text, record.lines!, shareNodes(record.plan, 'c'));
    expect(cut.split('\n')).toHaveLength(text.split('\n').length);
    expect(cut).not.toContain('op: filter');
    expect(cut.split('\n')[33]).toBe('  lone:');
  });

  it('runs the same graph as a check of the whole file would, checking only its share', () => {
    const record = recordOf(text);
    for (const host of ['a', 'b', 'c']) {
      const share = shareOfRecord(record, host);
      const whole = shareOfRecord(record, host, { whole: true });
      expect(share.checked).toBe('share');
      expect(whole.checked).toBe('whole');
      expect(share.whole).toBeUndefined();
      expect(share.graph!.nodes.size).toBe(whole.graph!.nodes.size);
      for (const [name, node] of whole.graph!.nodes) {
        const mine = share.graph!.nodes.get(name)!;
        expect({ op: mine.op, settings: mine.settings, at: mine.at, outputTypes: mine.outputTypes }).toEqual({ op: node.op, settings: node.settings, at: node.at, outputTypes: node.outputTypes });
      }
      expect(share.graph!.edges).toEqual(whole.graph!.edges);
      expect(share.transports).toEqual(whole.transports);
    }
  });

  it('reports warnings at their own line and column, leaving out the unread outputs that only cutting made', () => {
    const record = recordOf(text);
    const warnings = (host: string, options = {}) => shareOfRecord(record, host, options).diagnostics.map(formatDiagnostic);
    // `spare` (host b) is read by nobody: the share and the whole file say so at the same place.
    expect(warnings('b')).toEqual(warnings('b', { whole: true }));
    expect(warnings('b')).toEqual([expect.stringMatching(/^g\.yaml:25:3: warning: .*`spare`/)]);
    // In a's share, `hot`'s readers (on b) are blanked; its output is read in the whole graph.
    expect(warnings('a')).toEqual([]);
  });

  it('checks the whole file when the share does not stand alone (an alias of an anchor in a blanked node)', () => {
    const anchored = text.replace('with: { count: 3, fields: { seq: i, device:', 'with: &three { count: 3, fields: { seq: i, device:').replace('with: { count: 1, fields: { seq: i } }', 'with: *three');
    const record = recordOf(anchored);
    const share = shareOfRecord(record, 'c');
    expect(share.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
    expect(share.checked).toBe('whole');
    expect(share.graph!.nodes.get('lone')!.settings).toMatchObject({ count: 3 });
  });

  it('refuses a record whose plan does not match its pipeline, naming it', () => {
    const record = recordOf(text.replace('  lone-out:', '  lone-sink:'), text);
    const share = shareOfRecord(record, 'c');
    expect(share.graph).toBeUndefined();
    expect(share.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual(['g.yaml:1:1: error: the deployment record\'s plan does not match its pipeline (version 4) (deploy it again with `streams deploy`)']);
    // A node the plan does not know, or an input it does not know, is not dropped silently either.
    const extraNode = recordOf(text + '  extra: { op: stdout, in: lone, place: { host: c } }\n', text);
    const extraInput = recordOf(text.replace('    in: lone\n', '    in: [lone, gen]\n'), text);
    for (const bad of [extraNode, extraInput]) expect(shareOfRecord(bad, 'c').diagnostics.map((d) => d.message)).toContain('the deployment record\'s plan does not match its pipeline (version 4)');
  });

  it('still checks and plans a record of format 1 itself', () => {
    const { plan: _plan, lines: _lines, topics: _topics, ...rest } = recordOf(text);
    const share = shareOfRecord({ ...rest, format: 1 }, 'b');
    expect(share.checked).toBe('whole and planned');
    expect(share.graph!.nodes.has('hot')).toBe(true);
  });
});
