/**
 * Collecting diagnostics for one file, located through its source map, and
 * the words messages use for what was found.
 */
import { hintFields, type Diagnostic, type DiagnosticCode, type Hint, type Severity, type SourcePosition } from './diagnostics.ts';
import type { Path, SourceFile } from './source.ts';

/** Collects diagnostics for one file; a hint is a sentence or `{suggestion}`, worded in one place (`hintFields`). */
export class Reporter {
  readonly diagnostics: Diagnostic[] = [];
  readonly source: SourceFile;
  constructor(source: SourceFile) {
    this.source = source;
  }

  at(position: SourcePosition, code: DiagnosticCode, message: string, hint?: Hint, severity: Severity = 'error'): void {
    this.diagnostics.push({ file: this.source.file, line: position.line, col: position.col, severity, code, message, ...hintFields(hint) });
  }

  key(path: Path, code: DiagnosticCode, message: string, hint?: Hint, severity: Severity = 'error'): void {
    this.at(this.source.locate(path, 'key'), code, message, hint, severity);
  }

  value(path: Path, code: DiagnosticCode, message: string, hint?: Hint, severity: Severity = 'error'): void {
    this.at(this.source.locate(path, 'value'), code, message, hint, severity);
  }
}

/** Whether a value is a map (a plain object, not a list). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** What kind of value was found, in the author's words: `a list`, `a map`, `a number`, `nothing`. */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `a ${typeof value}`;
}

/** A found value as a message shows it: a scalar as written in backticks, a map or list by its kind. */
export function shown(value: unknown): string {
  return value !== null && typeof value === 'object' ? kindOf(value) : `\`${String(value)}\``;
}
