/** The graph model's helpers: inputs and outputs of a node, and an order that puts every node after its inputs. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { incomingEdges, inputsOf, outputsFrom, topologicalOrder, walkDependencies, walkNumbered, type Edge, type Graph, type GraphNode } from '../../graph/model.ts';
import { registry } from '../../nodes/all.ts';

function graphOf(names: string[], links: [string, string][]): Graph {
  const edges: Edge[] = links.map(([from, to]) => ({ from, fromPort: 'out', to, toPort: 'in', type: { kind: 'any' } }));
  return { file: 'g.yaml', name: 'g', nodes: new Map(names.map((name) => [name, { name } as GraphNode])), edges, hosts: [], params: {} };
}

describe('graph model', () => {
  it('orders every node after its inputs, whatever the file order', () => {
    const graph = graphOf(['sink', 'right', 'left', 'source'], [['source', 'left'], ['source', 'right'], ['left', 'sink'], ['right', 'sink']]);
    const order = topologicalOrder(graph);
    expect(order).toHaveLength(4);
    for (const edge of graph.edges) expect(order.indexOf(edge.from)).toBeLessThan(order.indexOf(edge.to));
    expect(inputsOf(graph, 'sink').map((e) => e.from)).toEqual(['left', 'right']);
    expect(outputsFrom(graph, 'source').map((e) => e.to)).toEqual(['left', 'right']);
  });

  it('orders a 100,000-node chain given last to first', () => {
    const names = Array.from({ length: 100_000 }, (_, i) => `n${i}`);
    const graph = graphOf([...names].reverse(), names.slice(1).map((name, i) => [names[i], name]));
    expect(topologicalOrder(graph)).toEqual(names);
  });
});

describe('walking dependencies (the one walk the checker, the expression scopes and topologicalOrder share)', () => {
  it('finds each cycle once, with its nodes and the edge that closes it, and orders the nodes off it after their inputs', () => {
    // source -> a -> b -> c -> a, and c -> sink
    const graph = graphOf(['sink', 'a', 'b', 'c', 'source'], [['source', 'a'], ['c', 'a'], ['a', 'b'], ['b', 'c'], ['c', 'sink']]);
    const { order, cycles } = walkDependencies(graph.nodes.keys(), incomingEdges(graph.edges));
    expect(cycles).toEqual([{ closing: graph.edges.find((e) => e.from === 'c' && e.to === 'a'), nodes: ['c', 'b', 'a'] }]);
    expect([...order].sort()).toEqual(['a', 'b', 'c', 'sink', 'source']);
    expect(order.indexOf('source')).toBeLessThan(order.indexOf('a'));
    expect(order.indexOf('c')).toBeLessThan(order.indexOf('sink'));
  });

  it('finds two separate cycles, and none in a diamond', () => {
    const two = graphOf(['a', 'b', 'c', 'd'], [['a', 'b'], ['b', 'a'], ['c', 'd'], ['d', 'c']]);
    expect(walkDependencies(two.nodes.keys(), incomingEdges(two.edges)).cycles.map((c) => c.nodes)).toEqual([['a', 'b'], ['c', 'd']]);
    const diamond = graphOf(['sink', 'l', 'r', 'src'], [['src', 'l'], ['src', 'r'], ['l', 'sink'], ['r', 'sink']]);
    expect(walkDependencies(diamond.nodes.keys(), incomingEdges(diamond.edges)).cycles).toEqual([]);
  });

  it('walks from a few nodes only: those and every node above them, nothing below or beside', () => {
    // src -> a -> b -> sink, and side -> sink
    const graph = graphOf(['sink', 'b', 'a', 'src', 'side'], [['src', 'a'], ['a', 'b'], ['b', 'sink'], ['side', 'sink']]);
    expect(walkDependencies(['b'], incomingEdges(graph.edges)).order).toEqual(['src', 'a', 'b']);
    // Over numbers, the roots are the first nodes: 0 (b) reads 1 (a), which reads 2 (src); 3 (sink) is not walked.
    expect(walkNumbered({ count: 4, firstEdge: [0, 1, 2, 2, 3], edgeFrom: [1, 2, 0] }, 1)).toEqual({ order: [2, 1, 0], cycles: [] });
  });

  it('meets nodes and cycles in the order a plain recursive walk does, on any small graph', () => {
    /** The reference: the depth-first walk written the obvious way (recursion, a set per state). */
    function reference(names: string[], links: [string, string][]): { order: string[]; cycles: string[][] } {
      const incoming = incomingEdges(links.map(([from, to]) => ({ from, to })));
      const done = new Set<string>();
      const path: string[] = [];
      const order: string[] = [];
      const cycles: string[][] = [];
      const visit = (name: string): void => {
        path.push(name);
        for (const { from } of incoming.get(name) ?? []) {
          if (path.includes(from)) cycles.push(path.slice(path.indexOf(from)));
          else if (!done.has(from)) visit(from);
        }
        path.pop();
        done.add(name);
        order.push(name);
      };
      for (const name of names) if (!done.has(name)) visit(name);
      return { order, cycles };
    }
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const link = fc.tuple(fc.constantFrom(...names), fc.constantFrom(...names)).filter(([from, to]) => from !== to);
    fc.assert(
      fc.property(fc.shuffledSubarray(names, { minLength: 1 }), fc.array(link, { maxLength: 12 }), (roots, links) => {
        const walk = walkDependencies(roots, incomingEdges(links.map(([from, to]) => ({ from, to }))));
        expect({ order: walk.order, cycles: walk.cycles.map((c) => c.nodes) }).toEqual(reference(roots, links));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps edges into a node in the order its `in` lists them', () => {
    const graph = graphOf(['x', 'a', 'b'], [['b', 'x'], ['a', 'x']]);
    expect(incomingEdges(graph.edges).get('x')!.map((e) => e.from)).toEqual(['b', 'a']);
  });
});

describe('checking a long chain', () => {
  it('checks a 20,000-node chain written sink first without overflowing the stack', () => {
    const count = 20_000;
    const lines = ['streams: 1', 'name: chain', 'nodes:', '  out:', '    op: stdout', `    in: n${count - 1}`];
    for (let i = count - 1; i >= 1; i--) lines.push(`  n${i}:`, '    op: filter', `    in: n${i - 1}`, '    with: { where: "true" }');
    lines.push('  n0:', '    op: generate', '    with: { count: 1 }');
    const result = checkPipeline({ file: 'chain.yaml', text: lines.join('\n'), registry, env: {} });
    expect(result.diagnostics).toEqual([]);
    expect(result.graph!.edges).toHaveLength(count);
  });
});
