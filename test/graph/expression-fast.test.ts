import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileExpression, compileExpressionSlow, toPlain } from '../../graph/expression.ts';

/** Random expressions over a few fields, in the shapes users write. */
const expression: fc.Arbitrary<string> = fc.letrec<{ expr: string; atom: string }>((tie) => ({
  atom: fc.oneof(
    fc.constantFrom('x', 'y', 's', 't', 'b', 'a.n', 'a.s', 'missing', 'nul'),
    fc.integer({ min: -3, max: 3 }).map(String),
    fc.double({ min: -5, max: 5, noNaN: true }).map((d) => (Number.isInteger(d) ? `${d}.0` : String(d))).filter((t) => !t.includes('e')),
    fc.constantFrom('"a"', '"b"', '""', 'true', 'false'),
  ),
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('atom'),
    fc.tuple(tie('expr'), fc.constantFrom('<', '<=', '>', '>=', '==', '!=', '+', '-', '*', '/', '&&', '||'), tie('expr')).map(([l, op, r]) => `(${l} ${op} ${r})`),
    tie('expr').map((e) => `!(${e})`),
  ),
})).expr;

const value = fc.oneof(fc.double({ noDefaultInfinity: false }), fc.integer({ min: -5, max: 5 }), fc.constantFrom('a', 'b', ''), fc.boolean(), fc.constant(null));
const record = fc.record(
  { x: value, y: value, s: value, t: value, b: value, nul: fc.constant(null), a: fc.oneof(fc.record({ n: value, s: value }, { requiredKeys: [] }), value) },
  { requiredKeys: [] },
);

function outcome(fn: () => unknown): { value: unknown } | { error: true } {
  try {
    return { value: toPlain(fn()) };
  } catch {
    return { error: true };
  }
}

describe('expression fast path', () => {
  it('gives the CEL evaluator\'s result or error for every expression and record', () => {
    fc.assert(
      fc.property(expression, fc.array(record, { minLength: 1, maxLength: 5 }), (text, records) => {
        let fast;
        let slow;
        try {
          slow = compileExpressionSlow(text);
        } catch {
          return; // not valid CEL: nothing to compare
        }
        fast = compileExpression(text);
        for (const fields of records) expect(outcome(() => fast(fields))).toEqual(outcome(() => slow(fields)));
      }),
      { numRuns: 3000, seed: 42 },
    );
  });

  it('keeps CEL semantics at the edges: integer division, missing fields, NaN, mixed types', () => {
    const cases: [string, Record<string, unknown>][] = [
      ['7 / 2', {}],
      ['x / 2', { x: 7 }],
      ['x > 1', {}],
      ['x > 1', { x: Number.NaN }],
      ['x == "1"', { x: 1 }],
      ['x + "a"', { x: 'b' }],
      ['false && missing', {}],
      ['true || missing', {}],
      ['a.b > 1', { a: { b: 2 } }],
      ['a.b > 1', { a: 3 }],
    ];
    for (const [text, fields] of cases) {
      expect(outcome(() => compileExpression(text)(fields)), text).toEqual(outcome(() => compileExpressionSlow(text)(fields)));
    }
  });
});
