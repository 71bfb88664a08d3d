/**
 * Parsing: a pipeline file's text into plain data plus a way back from any
 * path in that data to the line and column it came from.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, Scalar, visit, type Alias, type Document, type Node as YamlNode, type Pair, type YAMLError, type YAMLMap } from 'yaml';
import type { Diagnostic, SourcePosition } from './diagnostics.ts';
import { parseFastYaml, readDeferred, type FastDocument, type FastNode, type FastReadNode, type FastScalar, type ScalarStyle } from './yaml-fast.ts';
import { parseYamlDocument } from './yaml-parser.ts';

export type Path = readonly (string | number)[];

/** A parsed pipeline file: its data, and positions for every key and value. */
export interface SourceFile {
  file: string;
  text: string;
  /** The document as plain data (undefined when the YAML is unusable). */
  data: unknown;
  /** Locates the key (or, with `value`, the value) at a path; falls back to the nearest ancestor. */
  locate(path: Path, part?: 'key' | 'value'): SourcePosition;
  /** Locates a character offset inside the string value at a path (for errors inside expressions). */
  locateInString(path: Path, offset: number): SourcePosition;
}

const origin: SourcePosition = { line: 1, col: 1 };

/** Parses YAML text, returning the file and its syntax diagnostics (duplicate keys among them). */
export function parseSource(file: string, text: string): { source: SourceFile; diagnostics: Diagnostic[] } {
  // The common subset of YAML is read fast; anything else, errors included, by the `yaml` library.
  const fast = parseFastYaml(text);
  if (fast) return { source: fastSource(file, text, fast), diagnostics: [] };
  return parseSourceWithLibrary(file, text);
}

/** As `parseSource`, always through the `yaml` library: the reference the fast reader is tested against. */
export function parseSourceWithLibrary(file: string, text: string): { source: SourceFile; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  // `logLevel: 'error'`: the parser must not print warnings itself; `graph/` does no I/O.
  // Duplicate keys are found below in one pass: the parser's own check (`uniqueKeys`) is quadratic in a map's size.
  const doc = parseYamlDocument(text, { lineCounter, uniqueKeys: false, strict: true, logLevel: 'error' });
  const diagnostics: Diagnostic[] = [];
  const { duplicates, unresolved } = walkDocument(doc);
  for (const { key, parent } of duplicates) {
    const isNode = parent.length === 1 && parent[0] === 'nodes';
    const name = String(key.value);
    diagnostics.push({
      file,
      ...lineCounter.linePos(key.range?.[0] ?? 0),
      severity: 'error',
      code: isNode ? 'duplicate_node' : 'duplicate_key',
      message: isNode ? `duplicate node name \`${name}\`` : `duplicate key \`${name}\``,
    });
  }
  const syntaxLines = new Set<number>();
  for (const error of doc.errors) {
    const at = lineCounter.linePos(error.pos[0]);
    // One syntax error per line: the parser's follow-on errors on a line it already rejected are noise,
    // as are the stray tokens it finds once it has lost the document's structure.
    if (syntaxLines.size > 0 && error.code === 'UNEXPECTED_TOKEN' && error.message.includes('in YAML stream')) continue;
    const located = locateSyntaxError(doc, error, text);
    const reported = lineCounter.linePos(located.offset);
    if (syntaxLines.has(at.line) || syntaxLines.has(reported.line)) continue;
    syntaxLines.add(at.line).add(reported.line);
    diagnostics.push({ file, line: reported.line, col: reported.col, severity: 'error', code: 'yaml_syntax', message: located.message });
  }
  for (const warning of doc.warnings) {
    const at = lineCounter.linePos(warning.pos[0]);
    diagnostics.push({ file, line: at.line, col: at.col, severity: 'warning', code: 'yaml_syntax', message: yamlMessage(warning.message) });
  }
  // The parser accepts an alias to an anchor never set (`*typo`); turning it into data would throw.
  for (const alias of unresolved) {
    const at = lineCounter.linePos(alias.range?.[0] ?? 0);
    diagnostics.push({ file, ...at, severity: 'error', code: 'yaml_syntax', message: `invalid yaml: alias \`*${alias.source}\` names no anchor set before it` });
  }
  const usable = doc.errors.length === 0 && unresolved.length === 0;
  let data: unknown;
  if (usable) {
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      // Aliases expanding past the limit (a "billion laughs" file): refuse the document, do not expand it.
      diagnostics.push({ file, line: 1, col: 1, severity: 'error', code: 'yaml_syntax', message: yamlMessage((error as Error).message) });
    }
  }
  const position = (offset: number): SourcePosition => lineCounter.linePos(offset);

  function find(path: Path): Found {
    let current: unknown = doc.contents;
    let key: YamlNode | undefined;
    let depth = 0;
    for (const step of path) {
      if (isMap(current)) {
        const pair = pairOf(current, String(step));
        if (!pair) break;
        key = pair.key as YamlNode;
        current = pair.value;
      } else if (isSeq(current) && typeof step === 'number' && current.items[step] !== undefined) {
        key = current.items[step] as YamlNode;
        current = current.items[step];
      } else {
        break;
      }
      depth++;
    }
    return { key: key?.range?.[0], last: current, depth };
  }
  const spot = (last: unknown): Spot => spotOf(last as YamlNode | null | undefined);
  return { source: sourceFile(file, text, data, position, find, spot), diagnostics };
}

/** What `locate` needs of the node at the end of a path: the key's start, and the node, whose {@link Spot} is made only when asked. */
interface Found {
  key?: number;
  last: unknown;
  depth: number;
}

/** Where a value starts, and the scalar when it is one (a fast reader's deferred value is read again for it). */
type Spot = { start?: number; scalar?: FastScalar } | undefined;

function spotOf(node: YamlNode | null | undefined): Spot {
  if (!node) return undefined;
  const range = node.range;
  const scalar = isScalar(node) && range ? { kind: 'scalar' as const, start: range[0], end: range[1], style: node.type as ScalarStyle, value: node.value } : undefined;
  return { start: range?.[0], scalar };
}

/** A file read by the fast reader: its data and positions, no diagnostics (anything that would have one falls back). */
function fastSource(file: string, text: string, parsed: FastDocument): SourceFile {
  let lineCounter: LineCounter | undefined;
  // Offsets asked in file order (the checker locates each node's name as it walks them) are counted on from the
  // last one: the line breaks before `cursor` number `cursorLine - 1`, the last of them ends at `cursorLineStart`.
  let cursor = 0;
  let cursorLine = 1;
  let cursorLineStart = 0;
  const position = (offset: number): SourcePosition => {
    if (offset >= cursor) {
      for (let at = text.indexOf('\n', cursor); at >= 0 && at < offset; at = text.indexOf('\n', at + 1)) {
        cursorLine++;
        cursorLineStart = at + 1;
      }
      cursor = offset;
      return { line: cursorLine, col: offset - cursorLineStart + 1 };
    }
    // An offset before the last one: every line start is indexed, once.
    if (!lineCounter) {
      lineCounter = new LineCounter();
      lineCounter.addNewLine(0);
      for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lineCounter.addNewLine(at + 1);
    }
    return lineCounter.linePos(offset);
  };
  // The last deferred value read again (known by where it starts: pairs are made as asked): a node's diagnostics come together.
  let lastDeferred = -1;
  let lastRead: FastReadNode | undefined;
  const expand = (node: FastNode): FastReadNode => {
    if (node.kind !== 'deferred') return node;
    if (node.pos !== lastDeferred) [lastDeferred, lastRead] = [node.pos, readDeferred(text, node)];
    return lastRead!;
  };
  const find = (path: Path): Found => {
    let current: FastNode = parsed.root;
    let key: number | undefined;
    let depth = 0;
    for (const step of path) {
      current = expand(current);
      if (current.kind === 'map') {
        const pair = current.pairs.get(String(step));
        if (!pair) break;
        key = pair.keyStart;
        current = pair.value;
      } else if (current.kind === 'seq' && typeof step === 'number' && current.items[step] !== undefined) {
        // An item's key is where the item starts: read it again if it was deferred.
        current = expand(current.items[step]);
        key = current.start;
      } else {
        break;
      }
      depth++;
    }
    // A node's own key is located without reading its value again: `spot` reads it when asked.
    return { key, last: current, depth };
  };
  const spot = (last: unknown): Spot => {
    const node = expand(last as FastNode);
    return { start: node.start, scalar: node.kind === 'scalar' ? node : undefined };
  };
  return sourceFile(file, text, parsed.data, position, find, spot);
}

function sourceFile(
  file: string,
  text: string,
  data: unknown,
  position: (offset: number) => SourcePosition,
  find: (path: Path) => Found,
  spot: (last: unknown) => Spot,
): SourceFile {
  const source: SourceFile = {
    file,
    text,
    data,
    locate(path, part = 'key') {
      const found = find(path);
      const exact = found.depth === path.length;
      const value = exact && part === 'value' ? spot(found.last) : undefined;
      const at = value ? value.start : found.key;
      return at === undefined ? origin : position(at);
    },
    locateInString(path, offset) {
      const found = find(path);
      const scalar = spot(found.last)?.scalar;
      if (found.depth !== path.length || !scalar) return source.locate(path, 'value');
      return position(scalar.start + scalarOffset(scalar, text, offset));
    },
  };
  return source;
}

const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();

/**
 * The pair of a map whose key reads as `key`: the last one, as a repeated key's last value is the one the data holds.
 * Indexed once per map, as `locate` is called for every node.
 */
function pairOf(map: YAMLMap, key: string): Pair | undefined {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const item of map.items) {
      if (isPair(item) && isScalar(item.key)) index.set(String(item.key.value), item);
    }
    pairIndex.set(map, index);
  }
  return index.get(key);
}

/**
 * Maps an offset in a scalar's value to an offset from the scalar's start in
 * the source, by walking value and source together: quotes, escapes (`\"`,
 * `''`), line folding and block indentation are where they differ.
 */
function scalarOffset(node: FastScalar, text: string, offset: number): number {
  const { start, end } = node;
  const value = String(node.value);
  const literal = node.style === 'BLOCK_LITERAL';
  const block = literal || node.style === 'BLOCK_FOLDED';
  const double = node.style === 'QUOTE_DOUBLE';
  const single = node.style === 'QUOTE_SINGLE';
  let at = start + (double || single ? 1 : 0);
  // Block content starts on the line after its `|` or `>` header, indented by the first content line's indentation.
  let indent = Infinity;
  if (block) {
    at = text.indexOf('\n', start) + 1;
    indent = /^(?:[ \t]*\r?\n)*( *)/.exec(text.slice(at, end))![1].length;
  }
  const skipIndent = (): void => {
    for (let n = 0; n < indent && (text[at] === ' ' || (!block && text[at] === '\t')); n++) at++;
  };
  if (block) skipIndent();
  // An error at the very end of a block points just past its last character, not at the next line.
  const target = block ? Math.min(offset, value.trimEnd().length) : offset;
  let v = 0;
  while (v < target && at < end) {
    const c = text[at];
    const want = value[v];
    if (c === '\r') {
      at++;
    } else if (c === '\n') {
      // A line break is kept (`\n`), folded into a space, or dropped with the next line's indentation.
      at++;
      skipIndent();
      if (want === '\n' || (want === ' ' && !literal)) v++;
    } else if (double && c === '\\') {
      const next = text[at + 1];
      at += next === 'x' ? 4 : next === 'u' ? 6 : next === 'U' ? 10 : 2;
      v++;
    } else if (single && c === "'" && text[at + 1] === "'") {
      at += 2;
      v++;
    } else if (c === want) {
      at++;
      v++;
    } else if (c === ' ' || c === '\t') {
      at++; // trailing spaces of a folded line
    } else {
      break;
    }
  }
  return at - start;
}

/**
 * Where a YAML syntax error should point, and how to say it. The parser
 * notices an unclosed quote or bracket where the text runs out, and an
 * over-indented key on the line above it; the fix is where the string or
 * bracket opens, and on the over-indented line.
 */
function locateSyntaxError(doc: Document.Parsed, error: YAMLError, text: string): { offset: number; message: string } {
  let offset = error.pos[0];
  if (text[offset] === '{' && text[offset - 1] === '$') {
    return { offset: offset - 1, message: 'invalid yaml: a `${...}` reference inside `{ }` or `[ ]` must be quoted, as in `"${env:NAME}"`' };
  }
  const quote = error.code === 'MISSING_CHAR' ? /closing (["'])quote/.exec(error.message)?.[1] : undefined;
  if (quote) {
    const style = quote === '"' ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE;
    const open = innermost(doc, offset, (node) => isScalar(node) && node.type === style);
    return { offset: open?.range?.[0] ?? offset, message: `invalid yaml: missing closing \`${quote}\` of this string` };
  }
  const flow = error.code === 'BAD_INDENT' ? /^Flow (map|sequence)/.exec(error.message)?.[1] : undefined;
  if (flow) {
    const open = innermost(doc, offset, (node) => (flow === 'map' ? isMap(node) : isSeq(node)) && (node as { flow?: boolean }).flow === true);
    if (open?.range) return { offset: open.range[0], message: `invalid yaml: missing closing \`${flow === 'map' ? '}' : ']'}\` of this flow ${flow}` };
  }
  if (error.code === 'BLOCK_AS_IMPLICIT_KEY') {
    // `op: generate` followed by a deeper `with: ...` reads as one multi-line key `generate with`.
    const key = doc.errors.find((e) => e.code === 'MULTILINE_IMPLICIT_KEY' && e.pos[0] === offset);
    if (key) {
      const lineStart = text.lastIndexOf('\n', key.pos[1] - 1) + 1;
      const indent = /^[ \t]*/.exec(text.slice(lineStart, key.pos[1]))![0].length;
      return { offset: lineStart + indent, message: 'invalid yaml: bad indentation: this key is indented more than the key above it' };
    }
  }
  if (error.code === 'BAD_INDENT') while (text[offset] === ' ') offset++;
  return { offset, message: yamlMessage(error.message) };
}

/** The node starting last before an offset and reaching it, among those a test accepts. */
function innermost(doc: Document.Parsed, offset: number, test: (node: YamlNode) => boolean): YamlNode | undefined {
  let best: YamlNode | undefined;
  visit(doc, (_key, node) => {
    const candidate = node as YamlNode | null;
    const range = candidate?.range;
    if (candidate && range && range[0] < offset && offset <= range[1] && test(candidate) && (!best || range[0] > best.range![0])) best = candidate;
  });
  return best;
}

function yamlMessage(message: string): string {
  const first = message
    .split('\n')[0]
    .replace(/ at line \d+, column \d+:?$/, '')
    .replace(/^Unexpected \S+ token in YAML stream: "(.*)"$/, 'Unexpected `$1`');
  return `invalid yaml: ${first.charAt(0).toLowerCase()}${first.slice(1)}`;
}

/**
 * One walk over the document for what the parser does not report: keys
 * repeated in a map (the second and later ones, with the path of their map),
 * and aliases to anchors never set.
 */
function walkDocument(doc: Document.Parsed): { duplicates: { key: Scalar; parent: string[] }[]; unresolved: Alias[] } {
  const duplicates: { key: Scalar; parent: string[] }[] = [];
  const unresolved: Alias[] = [];
  const path: string[] = [];
  const walk = (node: unknown): void => {
    if (isMap(node)) {
      // Keys are equal when both are scalars of the same value, as the parser's own check has it.
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key : undefined;
        if (key) {
          if (seen.has(key.value)) duplicates.push({ key, parent: [...path] });
          seen.add(key.value);
        } else {
          walk(pair.key);
        }
        path.push(key ? String(key.value) : '?');
        walk(pair.value);
        path.pop();
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        path.push(String(i));
        walk(item);
        path.pop();
      });
    } else if (isAlias(node) && node.resolve(doc) === undefined) {
      unresolved.push(node);
    }
  };
  walk(doc.contents);
  return { duplicates, unresolved };
}
