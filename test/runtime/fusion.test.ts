import { describe, expect, it } from 'vitest';
import { fusedPairs } from '../../runtime/fusion.ts';
import { checkYaml, testRegistry } from '../helpers/pipeline.ts';

const graph = (nodes: string) => checkYaml(`streams: 1\nname: fusion\nnodes:\n  src: { op: test.count, with: { count: 1 } }\n${nodes}`);
const window = `  win: { op: window.tumbling, in: src, with: { size: 1s } }\n`;
const aggregate = `  agg: { op: aggregate, in: win, with: { count: count() } }\n`;

describe('fusedPairs', () => {
  const cases: [string, string, boolean, [string, string][]][] = [
    ['a window whose only consumer is an aggregate fuses with it', window + aggregate, false, [['win', 'agg']]],
    ['a window read by a second node does not fuse', window + aggregate + `  raw: { op: test.collect, in: win, with: { into: x } }\n`, false, []],
    ['an aggregate with a second input does not fuse', window + `  agg: { op: aggregate, in: [win, src], with: { count: count() } }\n`, false, []],
    ['a window read by a sink does not fuse', window + `  raw: { op: test.collect, in: win, with: { into: x } }\n`, false, []],
    ['an aggregate reading a map does not fuse, even in a fixed engine', `  m: { op: map, in: src, with: { set: { a: "1" } } }\n  agg: { op: aggregate, in: m, with: { count: count() } }\n`, true, []],
  ];
  for (const [name, nodes, fixed, expected] of cases) {
    it(name, () => {
      expect([...fusedPairs(graph(nodes), testRegistry(), fixed)]).toEqual(expected);
    });
  }

  it('fuses file.read with its decode.json in a fixed engine, never in one that reloads', () => {
    const text = `  lines: { op: file.read, with: { path: x.ndjson } }\n  dec: { op: decode.json, in: lines }\n`;
    expect([...fusedPairs(graph(text), testRegistry(), true)]).toEqual([['lines', 'dec']]);
    expect([...fusedPairs(graph(text), testRegistry(), false)]).toEqual([]);
  });
});
