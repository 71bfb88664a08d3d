/**
 * Diagnostics: every problem the language layers find, located in the source
 * file and carrying a stable code, so the CLI, editors and tests read them
 * the same way.
 */

/** A place in a source file, 1-based as editors show it. */
export interface SourcePosition {
  line: number;
  col: number;
}

export type Severity = 'error' | 'warning';

/** Stable codes; tests and tools match on these, never on message text. */
export type DiagnosticCode =
  | 'yaml_syntax'
  | 'bad_document'
  | 'bad_version'
  | 'missing_field'
  | 'unknown_field'
  | 'bad_field'
  | 'unknown_operator'
  | 'unknown_setting'
  | 'missing_setting'
  | 'bad_setting'
  | 'bad_expression'
  | 'expression_type'
  | 'expression_field'
  | 'bad_duration'
  | 'bad_size'
  | 'unknown_input'
  | 'unknown_port'
  | 'missing_input'
  | 'too_many_inputs'
  | 'type_mismatch'
  | 'cycle'
  | 'duplicate_node'
  | 'duplicate_key'
  | 'missing_variable'
  | 'unknown_param'
  | 'unknown_host'
  | 'unplaceable'
  | 'unmet_requirement'
  | 'capabilities_differ'
  | 'missing_key'
  | 'unreachable_transport'
  | 'unsupported_transport'
  | 'unused_output'
  | 'dropped_output';

/** One problem found in a pipeline file. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  severity: Severity;
  code: DiagnosticCode;
  /** Lowercase, names the thing at fault in backticks. */
  message: string;
  /** An obvious fix, when there is one ("did you mean `seed`?"). */
  hint?: string;
  /** The name the author probably meant, when the hint is a suggestion (`seed`); tools read this, not the hint. */
  suggestion?: string;
}

/** A diagnostic's hint as its reporter gives it: a sentence, or the name probably meant, worded once by `hintFields`. */
export type Hint = string | { suggestion: string } | undefined;

/** The `hint` and `suggestion` fields of a diagnostic for a hint. */
export function hintFields(hint: Hint): { hint?: string; suggestion?: string } {
  if (hint === undefined) return {};
  if (typeof hint === 'string') return { hint };
  return { hint: suggestionText(hint.suggestion), suggestion: hint.suggestion };
}

/** How a suggestion reads in a hint. */
export function suggestionText(name: string): string {
  return `did you mean \`${name}\`?`;
}

/**
 * Formats a diagnostic as one line, the way compilers do:
 * `pipelines/iot.yaml:14:7: error: unknown setting \`sead\` for \`generate\` (did you mean \`seed\`?)`.
 */
export function formatDiagnostic(d: Diagnostic): string {
  const hint = d.hint ? ` (${d.hint})` : '';
  return `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}${hint}`;
}

/** Orders diagnostics by file position so output reads top to bottom. */
export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}

export function hasErrors(list: readonly Diagnostic[]): boolean {
  return list.some((d) => d.severity === 'error');
}

/** The suggestion hint for a misspelt name (`{suggestion: 'seed'}`), or nothing when no candidate is close; see `closest`. */
export function suggest(name: string, candidates: Iterable<string>): { suggestion: string } | undefined {
  const best = closest(name, candidates);
  return best === undefined ? undefined : { suggestion: best };
}

/** The suggestion for a misspelt name as a sentence ("did you mean `seed`?"), for messages built outside a reporter. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const best = closest(name, candidates);
  return best === undefined ? undefined : suggestionText(best);
}

/**
 * The candidate closest to a misspelt name, by edit distance, or nothing
 * when no candidate is close enough to be a plausible typo.
 */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  const allowed = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    // The distance is at least the difference in length: most candidates of a long list are ruled out without the table.
    if (Math.abs(candidate.length - name.length) > allowed) continue;
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= allowed ? best : undefined;
}

/** Damerau-Levenshtein distance (with adjacent transpositions, which typos often are). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, () => new Array<number>(cols).fill(0));
  for (let i = 0; i < rows; i++) d[i][0] = i;
  for (let j = 0; j < cols; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
