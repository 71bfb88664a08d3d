/**
 * Where each node is written (`nodeLines`), and a share's text with the
 * other nodes' lines blanked (`shareText`): table-driven over the layouts a
 * pipeline file can take.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { nodeLines, shareText } from '../../graph/share-text.ts';
import { registry } from '../../nodes/all.ts';

function linesOf(text: string) {
  const checked = checkPipeline({ file: 'p.yaml', text, registry, env: {} });
  expect(checked.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  return nodeLines(checked.graph!, text);
}

const head = 'streams: 1\nname: g\n';

describe('where each node is written', () => {
  it.each([
    ['block nodes to the end of the file, trailing blank lines left out', `${head}nodes:\n  gen:\n    op: generate\n\n  out: { op: stdout, in: gen }\n\n\n`, { gen: [4, 6], out: [7, 7] }],
    ['the last node ending before a top-level key', `${head}nodes:\n  gen: { op: generate }\n  out:\n    op: stdout\n    # a comment at column 1 stays in the node\n# here too\n    in: gen\nparams:\n  x: 1\n`, { gen: [4, 4], out: [5, 9] }],
    ['nodes indented by four', `${head}nodes:\n    gen:\n        op: generate\n    out: { op: stdout, in: gen }\n`, { gen: [4, 5], out: [6, 6] }],
    ['a flow map of nodes on one line', `${head}nodes: { gen: { op: generate }, out: { op: stdout, in: gen } }\n`, undefined],
    ['a flow map of nodes over several lines', `${head}nodes: {\n  gen: { op: generate },\n  out: { op: stdout, in: gen } }\n`, undefined],
  ])('%s', (_layout, text, expected) => {
    expect(linesOf(text)).toEqual(expected);
  });

  it('blanks the nodes not kept, keeping the line count and every kept column', () => {
    const text = `${head}nodes:\n  gen:\n    op: generate\n  other: { op: generate }\n  out: { op: stdout, in: gen }\n`;
    const cut = shareText(text, linesOf(text)!, new Set(['gen', 'out']));
    expect(cut).toBe(`${head}nodes:\n  gen:\n    op: generate\n\n  out: { op: stdout, in: gen }\n`);
  });
});
