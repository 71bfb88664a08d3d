/**
 * A fast path for the common shape of user expressions: field references,
 * literals, comparisons, `&&`, `||`, `!`, arithmetic and string
 * concatenation, compiled from CEL's syntax tree into plain closures (no code
 * generation, no `eval`). It gives the same answers as the CEL evaluator: on
 * anything it is unsure of (a missing field, a type it does not handle,
 * integer-only arithmetic) it hands the record to the evaluator, which gives
 * CEL's own result or error.
 */

/** Thrown inside the fast path when the evaluator must decide. */
const unsure: unique symbol = Symbol('unsure');

type Fast = (fields: Record<string, unknown>) => unknown;

interface AstNode {
  op: string;
  args: unknown;
}

function isNode(value: unknown): value is AstNode {
  return value !== null && typeof value === 'object' && typeof (value as AstNode).op === 'string';
}

/** Compiles a syntax tree, or returns undefined when some part is outside the fast path. */
function compileNode(node: AstNode): { fn: Fast; kind: 'literal-int' | 'other' } | undefined {
  const args = node.args;
  switch (node.op) {
    case 'value': {
      if (typeof args === 'bigint') {
        const value = Number(args);
        return { fn: () => value, kind: 'literal-int' };
      }
      if (typeof args === 'number' || typeof args === 'string' || typeof args === 'boolean') return { fn: () => args, kind: 'other' };
      return undefined;
    }
    case 'id': {
      if (typeof args !== 'string') return undefined;
      const name = args;
      return {
        fn: function field(fields) {
          const value = fields[name];
          if (value === undefined) throw unsure;
          return value;
        },
        kind: 'other',
      };
    }
    case '.': {
      if (!Array.isArray(args) || !isNode(args[0]) || typeof args[1] !== 'string') return undefined;
      const inner = compileNode(args[0]);
      if (!inner) return undefined;
      const name = args[1];
      const get = inner.fn;
      return {
        fn: function member(fields) {
          const parent = get(fields);
          if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) throw unsure;
          const value = (parent as Record<string, unknown>)[name];
          if (value === undefined) throw unsure;
          return value;
        },
        kind: 'other',
      };
    }
    case '!_': {
      if (!isNode(args) || !yieldsBoolean(args)) return undefined;
      const inner = compileNode(args)?.fn;
      if (!inner) return undefined;
      return {
        fn: (fields) => {
          const value = inner(fields);
          if (typeof value !== 'boolean') throw unsure;
          return !value;
        },
        kind: 'other',
      };
    }
    case '&&':
    case '||': {
      const pair = binary(args);
      // CEL rejects `true || 0.0` by its static types even though it would short-circuit.
      if (!pair || !(args as AstNode[]).every(yieldsBoolean)) return undefined;
      const [left, right] = pair;
      const isAnd = node.op === '&&';
      return {
        fn: (fields) => {
          const a = left.fn(fields);
          if (typeof a !== 'boolean') throw unsure;
          // CEL: false && x is false and true || x is true, whatever x is.
          if (a !== isAnd) return a;
          const b = right.fn(fields);
          if (typeof b !== 'boolean') throw unsure;
          return b;
        },
        kind: 'other',
      };
    }
    case '<':
    case '<=':
    case '>':
    case '>=':
    case '==':
    case '!=':
      return comparison(node.op, args);
    case '+':
    case '-':
    case '*':
    case '/':
      return arithmetic(node.op, args);
    default:
      return undefined;
  }
}

/** Whether a node can give a boolean: its static type is bool or dynamic. */
function yieldsBoolean(node: AstNode): boolean {
  if (node.op === 'value') return typeof node.args === 'boolean';
  return ['id', '.', '!_', '&&', '||', '<', '<=', '>', '>=', '==', '!='].includes(node.op);
}

/** Whether a subtree reads no field: its type is static, and CEL's checker judges it, not the records. */
function isStatic(node: AstNode): boolean {
  if (node.op === 'id') return false;
  if (node.op === 'value') return true;
  const args = Array.isArray(node.args) ? node.args : [node.args];
  return args.every((arg) => !isNode(arg) || isStatic(arg));
}

function binary(args: unknown): [{ fn: Fast; kind: string }, { fn: Fast; kind: string }] | undefined {
  if (!Array.isArray(args) || args.length !== 2 || !isNode(args[0]) || !isNode(args[1])) return undefined;
  if (isStatic(args[0]) && isStatic(args[1])) return undefined;
  const left = compileNode(args[0]);
  const right = compileNode(args[1]);
  return left && right ? [left, right] : undefined;
}

type Compare = (a: number | string, b: number | string) => boolean;

/** One closure per operator, so the comparison itself is not an indirect call. */
const comparators: Record<string, Compare> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

function comparison(op: string, args: unknown): { fn: Fast; kind: 'other' } | undefined {
  const pair = binary(args);
  if (!pair) return undefined;
  const compare = comparators[op];
  const [leftNode, rightNode] = args as [AstNode, AstNode];
  // The commonest shape, `field OP number`, reads the field directly.
  if (leftNode.op === 'id' && rightNode.op === 'value' && (typeof rightNode.args === 'number' || typeof rightNode.args === 'bigint')) {
    const name = leftNode.args as string;
    const limit = Number(rightNode.args);
    return { fn: fieldAgainstNumber(op, name, limit), kind: 'other' };
  }
  const [left, right] = [pair[0].fn, pair[1].fn];
  return {
    fn: function compareValues(fields) {
      const a = left(fields);
      const b = right(fields);
      // Numbers with numbers and strings with strings; CEL decides the rest (and NaN).
      if (typeof a === 'number' && typeof b === 'number') {
        if (a !== a || b !== b) throw unsure;
        return compare(a, b);
      }
      if (typeof a === 'string' && typeof b === 'string') return compare(a, b);
      if (typeof a === 'boolean' && typeof b === 'boolean' && (op === '==' || op === '!=')) return op === '==' ? a === b : a !== b;
      throw unsure;
    },
    kind: 'other',
  };
}

function fieldAgainstNumber(op: string, name: string, limit: number): Fast {
  const read = (fields: Record<string, unknown>): number => {
    const value = fields[name];
    if (typeof value !== 'number' || value !== value) throw unsure;
    return value;
  };
  switch (op) {
    case '<':
      return (fields) => read(fields) < limit;
    case '<=':
      return (fields) => read(fields) <= limit;
    case '>':
      return (fields) => read(fields) > limit;
    case '>=':
      return (fields) => read(fields) >= limit;
    case '==':
      return (fields) => read(fields) === limit;
    default:
      return (fields) => read(fields) !== limit;
  }
}

function arithmetic(op: string, args: unknown): { fn: Fast; kind: 'other' } | undefined {
  const pair = binary(args);
  // Integer-only arithmetic (`7 / 2` is 3 in CEL, with overflow errors) stays with the evaluator.
  if (!pair || (pair[0].kind === 'literal-int' && pair[1].kind === 'literal-int')) return undefined;
  const [left, right] = [pair[0].fn, pair[1].fn];
  return {
    fn: function computeValues(fields) {
      const a = left(fields);
      const b = right(fields);
      if (typeof a === 'number' && typeof b === 'number') {
        switch (op) {
          case '+':
            return a + b;
          case '-':
            return a - b;
          case '*':
            return a * b;
          default:
            return a / b;
        }
      }
      if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
      throw unsure;
    },
    kind: 'other',
  };
}

/**
 * Wraps an evaluator with the fast path when the expression allows it:
 * records the fast path cannot decide go to `slow`.
 */
export function withFastPath(ast: unknown, slow: Fast): Fast {
  const compiled = isNode(ast) ? compileNode(ast) : undefined;
  if (!compiled || compiled.kind === 'literal-int') return slow;
  const fast = compiled.fn;
  return function evaluateFast(fields) {
    try {
      return fast(fields);
    } catch (error) {
      if (error === unsure) return slow(fields);
      throw error;
    }
  };
}
