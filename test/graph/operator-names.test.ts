import { describe, expect, it } from 'vitest';
import { operatorsNamedIn } from '../../graph/operator-names.ts';

describe('operatorsNamedIn', () => {
  it.each([
    ['block style', 'nodes:\n  a:\n    op: generate\n  b:\n    op: stdout\n    in: a\n', ['generate', 'stdout']],
    ['flow style, op first or not', 'nodes:\n  a: { op: generate }\n  b: {in: a, op: window.tumbling}\n', ['generate', 'window.tumbling']],
    ['quoted values and keys', 'nodes:\n  a:\n    op: "decode.json"\n  b: { "op": \'map\' }\n', ['decode.json', 'map']],
    ['a comment after the name', 'nodes:\n  a:\n    op: filter # keeps the hot ones\n', ['filter']],
    ['each name once', 'nodes:\n  a: { op: map }\n  b: { op: map }\n', ['map']],
    ['CRLF line ends', 'nodes:\r\n  a:\r\n    op: stdout\r\n', ['stdout']],
    ['a reference: not a name (the caller, finding no such operator, loads all)', 'nodes:\n  a: { op: ${params.kind} }\n', ['${params.kind']],
    ['the value on the next line: an empty name (the caller loads all)', 'nodes:\n  a:\n    op:\n      stdout\n', ['']],
    ['keys that only end in `op` are not `op`', 'nodes:\n  a: { op: map, with: { stop: 3, loop: x } }\n', ['map']],
    ['no nodes', 'streams: 1\nname: x\n', []],
  ])('%s', (_, text, names) => {
    expect(operatorsNamedIn(text)).toEqual(names);
  });
});
