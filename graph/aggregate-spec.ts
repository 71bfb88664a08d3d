/**
 * Aggregate specifications as pipelines write them: `count()`, `sum(value)`,
 * `quantile(latency, 0.99)`. The argument is a CEL expression over the record.
 */
import { checkExpression, type ExpressionProblem } from './expression.ts';
import { didYouMean } from './diagnostics.ts';

export type AggregateFunction = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'quantile' | 'distinct' | 'first' | 'last';

export interface AggregateSpec {
  fn: AggregateFunction;
  /** The expression whose values are aggregated; absent for `count()`. */
  expr?: string;
  /** The quantile asked for, in (0, 1). */
  q?: number;
}

const arity: Record<AggregateFunction, number> = {
  count: 0,
  sum: 1,
  min: 1,
  max: 1,
  avg: 1,
  quantile: 2,
  distinct: 1,
  first: 1,
  last: 1,
};

export const aggregateFunctions = Object.keys(arity) as AggregateFunction[];

/** Parses one aggregate; a problem's offset points inside the given text. */
export function parseAggregate(text: string): { ok: true; spec: AggregateSpec } | { ok: false; problem: ExpressionProblem & { hint?: string } } {
  const call = /^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$/s.exec(text);
  if (!call) {
    return { ok: false, problem: { message: `\`${text}\` is not an aggregate call such as \`count()\` or \`avg(value)\``, offset: 0 } };
  }
  const [, name, body] = call;
  const argsOffset = text.indexOf('(') + 1;
  if (!(name in arity)) {
    return {
      ok: false,
      problem: { message: `unknown aggregate function \`${name}\``, offset: text.indexOf(name), hint: didYouMean(name, aggregateFunctions) },
    };
  }
  const fn = name as AggregateFunction;
  const args = splitArguments(body);
  const given = args.filter((a) => a.text.trim() !== '').length;
  if (given !== arity[fn]) {
    const expected = arity[fn] === 0 ? 'no argument' : arity[fn] === 1 ? 'one argument' : 'two arguments';
    return { ok: false, problem: { message: `\`${fn}\` takes ${expected}, got ${given}`, offset: argsOffset } };
  }
  if (fn === 'count') return { ok: true, spec: { fn } };
  const expr = args[0].text.trim();
  const problem = checkExpression(expr);
  if (problem) {
    const lead = args[0].text.length - args[0].text.trimStart().length;
    return { ok: false, problem: { message: problem.message, offset: argsOffset + args[0].start + lead + problem.offset } };
  }
  if (fn === 'quantile') {
    const q = Number(args[1].text.trim());
    if (!(q > 0 && q < 1)) {
      const lead = args[1].text.length - args[1].text.trimStart().length;
      return { ok: false, problem: { message: `quantile must be a number between 0 and 1, got \`${args[1].text.trim()}\``, offset: argsOffset + args[1].start + lead } };
    }
    return { ok: true, spec: { fn, expr, q } };
  }
  return { ok: true, spec: { fn, expr } };
}

/** Splits call arguments on top-level commas, respecting brackets and strings. */
function splitArguments(body: string): { text: string; start: number }[] {
  const parts: { text: string; start: number }[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) depth--;
    else if (ch === ',' && depth === 0) {
      parts.push({ text: body.slice(start, i), start });
      start = i + 1;
    }
  }
  parts.push({ text: body.slice(start), start });
  return parts;
}
