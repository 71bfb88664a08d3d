/**
 * Valid graphs: what the checker makes of them (edges and their types,
 * substituted references, settings parsed), with no diagnostics.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline, type CheckInput } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { formatPortType } from '../../graph/port-types.ts';
import type { Graph } from '../../graph/model.ts';
import { registry } from '../../nodes/all.ts';
import { testRegistry } from '../checker/test-registry.ts';

/** Checks a pipeline that must be valid, failing with its diagnostics when it is not. */
function valid(text: string, extra: Partial<CheckInput> = {}): Graph {
  const result = checkPipeline({ file: 'p.yaml', text, registry, env: {}, ...extra });
  expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
  expect(result.graph).toBeDefined();
  return result.graph!;
}

/** Edges as `from.port -> to.port: Type`, in the order the checker found them. */
function edges(graph: Graph): string[] {
  return graph.edges.map((e) => `${e.from}.${e.fromPort} -> ${e.to}.${e.toPort}: ${formatPortType(e.type)}`);
}

describe('checking valid graphs', () => {
  it('types every edge: events from a generator, bytes after encoding', () => {
    const graph = valid(`streams: 1
name: typed
nodes:
  gen:
    op: generate
    with: { count: 3 }
  keep:
    op: filter
    in: gen
    with: { where: "i > 0" }
  shape:
    op: map
    in: keep
    with: { set: { twice: "i * 2" } }
  json:
    op: encode.json
    in: shape
  save:
    op: file.write
    in: json
    with: { path: out.ndjson }
`);
    expect(edges(graph)).toEqual([
      'gen.out -> keep.in: Event<unknown>',
      'keep.out -> shape.in: Event<unknown>',
      'shape.out -> json.in: Event<unknown>',
      'json.out -> save.in: Bytes',
    ]);
    expect([...graph.nodes.keys()]).toEqual(['gen', 'keep', 'shape', 'json', 'save']);
    expect(graph.nodes.get('save')!.settings).toEqual({ path: 'out.ndjson', mode: 'append', fsync: false });
  });

  it('keeps the number type of a value that is exactly `${params.x}`, and splices it into text', () => {
    const graph = valid(`streams: 1
name: params
params:
  n: 5
  suffix: run
nodes:
  gen:
    op: generate
    with: { count: "\${params.n}", rate: "\${params.n}" }
  save:
    op: file.write
    in: gen
    with: { path: "out/\${params.suffix}-\${params.n}.ndjson" }
`);
    expect(graph.nodes.get('gen')!.settings).toMatchObject({ count: 5, rate: 5 });
    expect(graph.nodes.get('save')!.settings).toMatchObject({ path: 'out/run-5.ndjson' });
    expect(graph.params).toEqual({ n: 5, suffix: 'run' });
  });

  it('lets parameters given to the checker override the file\'s defaults', () => {
    const graph = valid(`streams: 1
name: params-override
params: { n: 5 }
nodes:
  gen:
    op: generate
    with:
      count: \${params.n}
  out:
    op: stdout
    in: gen
`, { params: { n: 9 } });
    expect(graph.nodes.get('gen')!.settings).toMatchObject({ count: 9 });
  });

  it('substitutes `${env:X}`, turning a whole-value number into a number', () => {
    const graph = valid(`streams: 1
name: env
nodes:
  gen:
    op: generate
    with: { count: "\${env:COUNT}" }
  save:
    op: file.write
    in: gen
    with:
      path: \${env:OUT_DIR}/events.ndjson
      fsync: \${env:FSYNC}
`, { env: { COUNT: '12', OUT_DIR: '/var/data', FSYNC: 'true' } });
    expect(graph.nodes.get('gen')!.settings).toMatchObject({ count: 12 });
    expect(graph.nodes.get('save')!.settings).toMatchObject({ path: '/var/data/events.ndjson', fsync: true });
  });

  it('substitutes references inside expressions before checking them', () => {
    const graph = valid(`streams: 1
name: env-expr
nodes:
  gen:
    op: generate
  keep:
    op: filter
    in: gen
    with: { where: "i > \${env:MIN}" }
  out:
    op: stdout
    in: keep
`, { env: { MIN: '3' } });
    expect(graph.nodes.get('keep')!.settings).toEqual({ where: 'i > 3' });
  });

  it('reads `in` as a list, merging several upstreams into one port', () => {
    const graph = valid(`streams: 1
name: list
nodes:
  a:
    op: generate
  b:
    op: generate
  out:
    op: stdout
    in: [a, b]
`);
    expect(edges(graph)).toEqual(['a.out -> out.in: Event<unknown>', 'b.out -> out.in: Event<unknown>']);
  });

  it('reads `in` as `node.port`, including the dead-letter port every node has', () => {
    const graph = valid(`streams: 1
name: ports
nodes:
  lines:
    op: file.read
    with: { path: in.ndjson }
  parse:
    op: decode.json
    in: lines.out
  good:
    op: stdout
    in: parse
  bad:
    op: file.write
    in: parse.dlq
    with: { path: rejected.ndjson }
`);
    expect(edges(graph)).toEqual([
      'lines.out -> parse.in: Bytes',
      'parse.out -> good.in: Event<unknown>',
      'parse.dlq -> bad.in: Event<{error: string, node: string}>',
    ]);
  });

  it('reads `in` as a map of input ports', () => {
    const graph = valid(`streams: 1
name: port-map
nodes:
  gen:
    op: generate
  out:
    op: stdout
    in: { in: gen }
`);
    expect(edges(graph)).toEqual(['gen.out -> out.in: Event<unknown>']);
  });

  it('types `file.read` output as events with `format: ndjson`', () => {
    const graph = valid(`streams: 1
name: ndjson
nodes:
  events:
    op: file.read
    with: { path: in.ndjson, format: ndjson }
  keep:
    op: filter
    in: events
    with: { where: "value > 0" }
  out:
    op: stdout
    in: keep
`);
    expect(edges(graph)).toEqual(['events.out -> keep.in: Event<unknown>', 'keep.out -> out.in: Event<unknown>']);
  });

  it('carries the schema of `decode.json` through a filter, into a port that requires its fields', () => {
    const result = checkPipeline({
      file: 'p.yaml',
      registry: testRegistry,
      env: {},
      text: `streams: 1
name: schema-flow
nodes:
  lines:
    op: file.read
    with: { path: in.ndjson }
  parse:
    op: decode.json
    in: lines
    with: { schema: { device: string, value: number, ts: number } }
  positive:
    op: filter
    in: parse
    with: { where: "value > 0" }
  out:
    op: readings.sink
    in: positive
`,
    });
    expect(result.diagnostics).toEqual([]);
    expect(edges(result.graph!)).toEqual([
      'lines.out -> parse.in: Bytes',
      'parse.out -> positive.in: Event<{device: string, value: number, ts: number}>',
      'positive.out -> out.in: Event<{device: string, value: number, ts: number}>',
    ]);
  });

  it('refuses the same flow when the schema lacks a field the port requires', () => {
    const result = checkPipeline({
      file: 'p.yaml',
      registry: testRegistry,
      env: {},
      text: `streams: 1
name: schema-flow-short
nodes:
  lines:
    op: file.read
    with: { path: in.ndjson }
  parse:
    op: decode.json
    in: lines
    with: { schema: { device: string, ts: number } }
  positive:
    op: filter
    in: parse
    with: { where: "ts > 0" }
  out:
    op: readings.sink
    in: positive
`,
    });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:17:9: error: type mismatch: `positive` (`filter`) gives `Event<{device: string, ts: number}>` but `out` (`readings.sink`) takes `Event<{device: string, value: number}>`',
    ]);
  });

  it('unifies the schemas merged into one port to the fields they share', () => {
    const result = checkPipeline({
      file: 'p.yaml',
      registry: testRegistry,
      env: {},
      text: `streams: 1
name: merge-schemas
nodes:
  a-lines:
    op: file.read
    with: { path: a.ndjson }
  a:
    op: decode.json
    in: a-lines
    with: { schema: { device: string, value: number, ts: number } }
  b-lines:
    op: file.read
    with: { path: b.ndjson }
  b:
    op: decode.json
    in: b-lines
    with: { schema: { device: string, value: number, site: string } }
  both:
    op: merge
    in: [a, b]
  out:
    op: readings.sink
    in: both
`,
    });
    expect(result.diagnostics).toEqual([]);
    expect(edges(result.graph!).at(-1)).toBe('both.out -> out.in: Event<{device: string, value: number}>');
  });

  it('keeps one type for equal inferred schemas, and apart the ones that differ in a field, a type or the order; one map of output types for equal ones', () => {
    const decoder = (name: string, schema: string) => `  ${name}-lines:\n    op: file.read\n    with: { path: ${name}.ndjson }\n  ${name}:\n    op: decode.json\n    in: ${name}-lines\n    with: { schema: ${schema} }\n  ${name}-out:\n    op: readings.sink\n    in: ${name}\n`;
    const result = checkPipeline({
      file: 'p.yaml',
      registry: testRegistry,
      env: {},
      text: `streams: 1\nname: shared-types\nnodes:\n${[
        decoder('a', '{ device: string, value: number }'),
        decoder('b', '{ device: string, value: number }'),
        decoder('c', '{ value: number, device: string }'),
        decoder('d', '{ device: string, value: any }'),
        decoder('e', '{ device: string, value: number, ts: number }'),
      ].join('')}`,
    });
    expect(result.diagnostics).toEqual([]);
    const out = (name: string) => result.graph!.nodes.get(name)!.outputTypes.out;
    expect(out('b')).toBe(out('a'));
    for (const other of ['c', 'd', 'e']) expect(out(other)).not.toBe(out('a'));
    // So are the nodes' maps of output types: one for the nodes whose every output has the same type.
    const outputTypes = (name: string) => result.graph!.nodes.get(name)!.outputTypes;
    expect(outputTypes('b')).toBe(outputTypes('a'));
    expect(outputTypes('c')).not.toBe(outputTypes('a'));
    expect(Object.keys(outputTypes('c'))).toEqual(Object.keys(outputTypes('a')));
    expect(outputTypes('c').dlq).toBe(outputTypes('a').dlq);
    expect(formatPortType(out('c'))).toBe('Event<{value: number, device: string}>');
    expect(formatPortType(out('d'))).toBe('Event<{device: string, value: any}>');
    // The edges out of the shared type read it as their own.
    expect(edges(result.graph!).filter((e) => e.startsWith('b.out'))).toEqual(['b.out -> b-out.in: Event<{device: string, value: number}>']);
  });

  it('keeps one copy of settings the schema left as written, and the parsed ones where a default or a unit changed them', () => {
    const graph = valid(`streams: 1
name: settings-copies
nodes:
  gen:
    op: generate
    with: { count: 3, fields: { v: "i * 2" } }
  keep:
    op: filter
    in: gen
    with: { where: "v > 0" }
  shape:
    op: map
    in: keep
    with: { set: { w: "v + 1" }, drop: [v] }
  win:
    op: window.tumbling
    in: shape
    with: { size: 1s }
  out:
    op: file.write
    in: win
    with: { path: out.ndjson }
`);
    const node = (name: string) => graph.nodes.get(name)!;
    // Equal to what is written (maps, lists and strings alike): the written maps themselves.
    for (const name of ['keep', 'shape']) expect(node(name).settings).toBe(node(name).rawSettings);
    expect(node('shape').settings).toEqual({ set: { w: 'v + 1' }, drop: ['v'] });
    // A unit converted, a default added: their own parsed settings, the written ones untouched.
    expect(node('win').settings).not.toBe(node('win').rawSettings);
    expect((node('win').settings as { size: number }).size).toBe(1000);
    expect(node('win').rawSettings).toEqual({ size: '1s' });
    expect(node('out').settings).not.toBe(node('out').rawSettings);
    expect(node('out').rawSettings).toEqual({ path: 'out.ndjson' });
    expect(Object.keys(node('out').settings as object).length).toBeGreaterThan(1);
  });

  it('keeps warnings with a graph: an unused output does not make a file invalid', () => {
    const result = checkPipeline({ file: 'p.yaml', registry, env: {}, text: 'streams: 1\nname: lone\nnodes:\n  gen:\n    op: generate\n' });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:4:3: warning: the output of node `gen` (`generate`) is not used (connect it or remove the node)',
    ]);
    expect(result.graph?.nodes.size).toBe(1);
  });

  it('does not warn about a dead-letter port left unconnected', () => {
    const graph = valid('streams: 1\nname: dlq\nnodes:\n  gen:\n    op: generate\n  out:\n    op: stdout\n    in: gen\n');
    expect(graph.edges).toHaveLength(1);
  });
});
