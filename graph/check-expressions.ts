/**
 * Type-checking the CEL expressions of a checked graph, once the port types
 * are inferred: each expression setting against the fields its records are
 * known to carry (a declared `decode.json` schema, a window's panes, an
 * aggregate's results) or its operator's own variables, and against what the
 * setting must give (`where` a boolean). Where the types are unknown
 * (`Event<unknown>`), fields are `dyn` and only what is wrong whatever the
 * records hold is reported.
 */
import type { z } from 'zod';
import type { Reporter } from './reporter.ts';
import type { NumberedGraph } from './check-edges.ts';
import { checkTyped, type ExpressionScope } from './expression-types.ts';
import { ScopeResolver, unknownFields } from './expression-scopes.ts';
import type { Path } from './source.ts';

/** What an expression setting must give, by operator and setting. */
export const requiredResults: Readonly<Record<string, Readonly<Record<string, 'bool' | 'number'>>>> = {
  filter: { where: 'bool' },
};

const resultTypes = { bool: ['bool'], number: ['int', 'uint', 'double'] };
const resultNames = { bool: 'a boolean', number: 'a number' };

/** Where an expression stands: its path in `with:` and its text. */
export interface ExpressionSetting {
  path: (string | number)[];
  text: string;
}

interface ExpressionCheckInput {
  /** The checked nodes by number, with their edges and order, as the edge check found them. */
  numbered: NumberedGraph;
  /** Nodes whose settings failed (syntax errors among them): not checked again. */
  unsettled: ReadonlySet<string>;
  report: Reporter;
}

/** Reports type errors in every node's expressions, located inside the YAML string. */
export function checkExpressionTypes({ numbered, unsettled, report }: ExpressionCheckInput): void {
  const scopes = new ScopeResolver(numbered);
  const { list } = numbered;
  for (let index = 0; index < list.length; index++) {
    const node = list[index];
    const name = node.name;
    if (unsettled.size > 0 && unsettled.has(name)) continue;
    const settings = expressionSettings(node.spec.settings, node.rawSettings);
    if (settings.length === 0) continue;
    const known = scopes.scopeOf(index);
    const scope: ExpressionScope = known ?? unknownFields;
    for (const { path, text } of settings) {
      const checked = checkTyped(text, scope);
      const requires = requiredResults[node.op];
      if (checked.ok === true && requires === undefined) continue;
      // A setting's name, label and place are made only for a setting that may have a problem.
      const setting = path.length === 1 ? String(path[0]) : path.join('.');
      const required = requires?.[setting];
      if (checked.ok === true && (!required || checked.type === 'dyn' || resultTypes[required].includes(checked.type))) continue;
      const label = `setting \`${setting}\` of \`${node.op}\``;
      const at = (offset: number) => report.source.locateInString(['nodes', name, 'with', ...path] as Path, offset);
      if (checked.ok === false) {
        const { problem } = checked;
        const hint = problem.hint ?? (known && problem.kind === 'type' ? fieldsHint(known) : undefined);
        report.at(at(problem.offset), problem.kind === 'type' ? 'expression_type' : 'expression_field', `${label}: ${problem.message}`, hint);
        continue;
      }
      if (checked.ok === true) report.at(at(0), 'expression_type', `${label}: the expression gives \`${checked.type}\`, not ${resultNames[required!]}`);
    }
  }
}

/** The known variables as a hint: what the checker knows of the records. */
function fieldsHint(scope: ExpressionScope): string | undefined {
  const fields = Object.entries(scope.variables);
  if (fields.length === 0) return undefined;
  const shown = fields.slice(0, 8).map(([field, type]) => `\`${field}: ${type}\``).join(', ');
  return `${scope.noun === 'field' ? 'the records carry' : 'known here:'} ${shown}${fields.length > 8 ? ', ...' : ''}`;
}

type Def = {
  type?: string;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
  innerType?: z.ZodType;
  options?: z.ZodType[];
};

const celMarks = new WeakMap<z.ZodType, boolean>();

/**
 * Whether a schema is marked `format: 'cel'`, remembered per schema: zod's
 * `meta()` walks the registry and merges objects on every call, and the walk
 * below asks for every setting of every node.
 */
function isCel(node: z.ZodType): boolean {
  let cel = celMarks.get(node);
  if (cel === undefined) celMarks.set(node, (cel = (node.meta() as { format?: unknown } | undefined)?.format === 'cel'));
  return cel;
}

/** Whether a settings schema holds any expression, by schema: most operators' hold none. */
const holdsExpressions = new WeakMap<z.ZodType, boolean>();

/** Every CEL expression in a node's settings as written, found through the schema's `format: 'cel'` marks. */
export function expressionSettings(schema: z.ZodType, value: unknown): ExpressionSetting[] {
  if (holdsExpressions.get(schema) === false) return [];
  const found: ExpressionSetting[] = [];
  // The path being walked, copied only where an expression is found.
  const path: (string | number)[] = [];
  // Inside a union's options, which may offer the same place twice.
  let unions = 0;
  const walk = (node: z.ZodType | undefined, at: unknown, depth: number): void => {
    if (!node || depth > 32 || at === undefined) return;
    if (isCel(node)) {
      // A union may offer the same place twice: it is one setting.
      if (typeof at === 'string' && (unions === 0 || !found.some((f) => samePath(f.path, path)))) found.push({ path: [...path], text: at });
      return;
    }
    const def = (node as unknown as { def: Def }).def;
    const isMap = at !== null && typeof at === 'object' && !Array.isArray(at);
    if (def.type === 'object' && isMap) {
      for (const key in def.shape) {
        const inner = (at as Record<string, unknown>)[key];
        if (inner === undefined) continue;
        path.push(key);
        walk(def.shape[key], inner, depth + 1);
        path.pop();
      }
    } else if (def.type === 'record' && isMap) {
      for (const [key, inner] of Object.entries(at as Record<string, unknown>)) {
        path.push(key);
        walk(def.valueType, inner, depth + 1);
        path.pop();
      }
    } else if (def.type === 'array' && Array.isArray(at)) {
      for (let i = 0; i < at.length; i++) {
        path.push(i);
        walk(def.element, at[i], depth + 1);
        path.pop();
      }
    } else if (def.type === 'pipe') {
      walk(def.in, at, depth + 1);
    } else if (def.type === 'union') {
      unions++;
      for (const option of def.options ?? []) walk(option, at, depth + 1);
      unions--;
    } else {
      walk(def.innerType, at, depth + 1);
    }
  };
  walk(schema, value, 0);
  if (found.length === 0 && !holdsExpressions.has(schema)) holdsExpressions.set(schema, schemaHoldsExpressions(schema, 0));
  return found;
}

function samePath(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a.length === b.length && a.every((step, i) => step === b[i]);
}

function schemaHoldsExpressions(node: z.ZodType | undefined, depth: number): boolean {
  if (!node || depth > 32) return false;
  if (isCel(node)) return true;
  const def = (node as unknown as { def: Def }).def;
  const inner = [...Object.values(def.shape ?? {}), def.valueType, def.element, def.in, def.innerType, ...(def.options ?? [])];
  return inner.some((child) => schemaHoldsExpressions(child, depth + 1));
}
