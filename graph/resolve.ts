/**
 * Substitution of `${env:NAME}`, `${env:NAME:-default}` and `${params.NAME}`
 * anywhere in a value. The environment is passed in as data: `graph/` reads
 * no process state.
 */
import type { Diagnostic } from './diagnostics.ts';
import type { Path, SourceFile } from './source.ts';

/**
 * `${env:NAME}`, `${env:NAME:-default}` (the default used when the variable is
 * unset or empty, as in the shell), or `${params.NAME}` (whose defaults live
 * under `params:`). Groups: kind, name, and the default when one is written.
 */
const referenceSource = String.raw`\$\{(env:|params\.)([A-Za-z_][A-Za-z0-9_]*)(?:(?<=env:[A-Za-z0-9_]+):-([^}]*))?\}`;
const reference = new RegExp(referenceSource, 'g');
const wholeReference = new RegExp(`^${referenceSource}$`);

export interface ResolveInput {
  source: SourceFile;
  env: Readonly<Record<string, string | undefined>>;
  /** Values given on the command line; they override the file's `params` defaults. */
  params?: Readonly<Record<string, unknown>>;
}

/**
 * Returns the document with references substituted. A value that is exactly
 * one reference takes the referenced value's own type (`count: ${params.n}`
 * stays a number; an environment string that spells a number or boolean becomes one).
 */
export function resolveReferences(input: ResolveInput): {
  data: unknown;
  params: Record<string, unknown>;
  diagnostics: Diagnostic[];
  /** Paths (as JSON) of the values whose references could not be resolved. */
  failedPaths: Set<string>;
  /** Paths of the values that hold an `${env:...}` reference: what came from the environment (secrets), to redact when shown. */
  envPaths: Path[];
} {
  const { source } = input;
  const diagnostics: Diagnostic[] = [];
  const failedPaths = new Set<string>();
  const envPaths: Path[] = [];
  const root = source.data as Record<string, unknown> | undefined;
  const declared = root && typeof root.params === 'object' && root.params !== null ? (root.params as Record<string, unknown>) : {};
  const params: Record<string, unknown> = { ...declared, ...input.params };

  function lookup(kind: string, name: string, fallback: string | undefined, path: Path, offset: number): { found: boolean; value: unknown } {
    const fromEnv = kind === 'env:';
    if (fromEnv && envPaths.at(-1) !== path) envPaths.push(path);
    const value = fromEnv ? input.env[name] : params[name];
    if (fromEnv && fallback !== undefined && (value === undefined || value === '')) return { found: true, value: fallback };
    if (value !== undefined) return { found: true, value };
    failedPaths.add(JSON.stringify(path));
    const at = source.locateInString(path, offset);
    diagnostics.push({
      file: source.file,
      ...at,
      severity: 'error',
      code: fromEnv ? 'missing_variable' : 'unknown_param',
      message: fromEnv ? `environment variable \`${name}\` is not set` : `unknown parameter \`${name}\``,
      hint: fromEnv ? `export ${name}=...` : `declare it under \`params:\` or pass --param ${name}=...`,
    });
    return { found: false, value: undefined };
  }

  // The path of the value being walked, copied only where a reference is found: most values hold none.
  const at: (string | number)[] = [];

  /** The value with its references substituted; a list or map with none is returned as it is, not copied. */
  function walk(value: unknown): unknown {
    if (typeof value === 'string') return value.includes('${') ? substitute(value, [...at]) : value;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        at.push(i);
        const next = walk(value[i]);
        at.pop();
        if (next !== value[i]) (copy ??= value.slice())[i] = next;
      }
      return copy ?? value;
    }
    if (value !== null && typeof value === 'object') {
      let copy: Record<string, unknown> | undefined;
      for (const [key, item] of Object.entries(value)) {
        if (at.length === 0 && key === 'params') continue;
        at.push(key);
        const next = walk(item);
        at.pop();
        // Defined, not assigned: a key `__proto__` is data here, as the YAML parser made it.
        if (next !== item) Object.defineProperty((copy ??= { ...value }), key, { value: next, enumerable: true, writable: true, configurable: true });
      }
      return copy ?? value;
    }
    return value;
  }

  function walkAt(value: unknown, path: Path): unknown {
    at.length = 0;
    at.push(...path);
    const result = walk(value);
    at.length = 0;
    return result;
  }

  function substitute(text: string, path: Path): unknown {
    if (!text.includes('${')) return text;
    const whole = wholeReference.exec(text);
    if (whole) {
      const { found, value } = lookup(whole[1], whole[2], whole[3], path, 0);
      if (!found) return text;
      return whole[1] === 'env:' ? scalarFromEnv(String(value)) : value;
    }
    return text.replace(reference, (match, kind: string, name: string, fallback: string | undefined, offset: number) => {
      const { found, value } = lookup(kind, name, fallback, path, offset);
      return found ? String(value) : match;
    });
  }

  // A text with no `${` and no escape (`"\x24{"` spells one) holds no reference: nothing to walk, in a file of any size.
  if (!source.text.includes('${') && !source.text.includes('\\')) return { data: source.data, params, diagnostics, failedPaths, envPaths };
  // A parameter's default may itself hold `${env:...}` (a secret inside a URL); a value given on the command line replaces it unread.
  for (const [name, value] of Object.entries(declared)) {
    if (input.params?.[name] === undefined) params[name] = walkAt(value, ['params', name]);
  }
  return { data: walkAt(source.data, []), params, diagnostics, failedPaths, envPaths };
}

/** Reads an environment string as a number or boolean when it spells one, else keeps the string. */
function scalarFromEnv(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}
