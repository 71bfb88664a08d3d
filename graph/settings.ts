/**
 * Building blocks for operator settings schemas (zod 4). One schema per
 * operator gives its TypeScript type, run-time validation with located
 * errors, the editor's JSON Schema and the generated docs.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';
import { checkExpression } from './expression.ts';
import { parseAggregate, type AggregateSpec } from './aggregate-spec.ts';
import type { DiagnosticCode } from './diagnostics.ts';

/** Extra facts a settings issue may carry for the checker. */
export interface IssueParams {
  code: DiagnosticCode;
  /** Offset inside the string value, for errors inside expressions. */
  offset?: number;
  hint?: string;
}

/** A duration written as `250ms`, `1s`, `5m`, `1h`; parsed to milliseconds. */
export function duration() {
  return z
    .string()
    .meta({ format: 'duration', pattern: '^\\d+(\\.\\d+)?(ms|s|m|h|d)$' })
    .transform(function parseDurationSetting(text, ctx) {
      const parsed = parseDuration(text);
      if (parsed.ok) return parsed.value;
      ctx.addIssue({ code: 'custom', message: parsed.reason, params: { code: 'bad_duration' } satisfies IssueParams });
      return z.NEVER;
    });
}

/** A size written as `64KiB`, `2MiB`, `1GB` or a byte count; parsed to bytes. */
export function size() {
  return z
    .union([z.number().int().nonnegative(), z.string()])
    .meta({ format: 'size' })
    .transform(function parseSizeSetting(value, ctx) {
      if (typeof value === 'number') return value;
      const parsed = parseSize(value);
      if (parsed.ok) return parsed.value;
      ctx.addIssue({ code: 'custom', message: parsed.reason, params: { code: 'bad_size' } satisfies IssueParams });
      return z.NEVER;
    });
}

/** A CEL expression over a record's fields, checked when the graph is checked. */
export function expression() {
  return z
    .string()
    .min(1)
    .meta({ format: 'cel' })
    .superRefine(function checkExpressionSetting(text, ctx) {
      const problem = checkExpression(text);
      if (problem) {
        ctx.addIssue({
          code: 'custom',
          message: `bad expression: ${problem.message}`,
          params: { code: 'bad_expression', offset: problem.offset, hint: problem.hint } satisfies IssueParams,
        });
      }
    });
}

/** An aggregate call such as `count()`, `avg(value)` or `quantile(value, 0.99)`. */
export function aggregate() {
  return z
    .string()
    .meta({ format: 'aggregate' })
    .transform(function parseAggregateSetting(text, ctx): AggregateSpec {
      const parsed = parseAggregate(text);
      if (parsed.ok) return parsed.spec;
      ctx.addIssue({
        code: 'custom',
        message: parsed.problem.message,
        params: { code: 'bad_expression', offset: parsed.problem.offset, hint: parsed.problem.hint } satisfies IssueParams,
      });
      return z.NEVER;
    });
}

export { z };
