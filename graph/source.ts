/**
 * Parsing: a pipeline file's text into plain data plus a way back from any
 * path in that data to the line and column it came from.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, Scalar, type Node as YamlNode } from 'yaml';
import type { Diagnostic, SourcePosition } from './diagnostics.ts';

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
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const diagnostics: Diagnostic[] = [];
  for (const error of doc.errors) {
    const at = lineCounter.linePos(error.pos[0]);
    if (error.code === 'DUPLICATE_KEY') {
      const { name, parent } = duplicateKey(doc.contents, error.pos[0], text);
      const isNode = parent.length === 1 && parent[0] === 'nodes';
      diagnostics.push({
        file,
        line: at.line,
        col: at.col,
        severity: 'error',
        code: isNode ? 'duplicate_node' : 'duplicate_key',
        message: isNode ? `duplicate node name \`${name}\`` : `duplicate key \`${name}\``,
      });
      continue;
    }
    diagnostics.push({ file, line: at.line, col: at.col, severity: 'error', code: 'yaml_syntax', message: yamlMessage(error.message) });
  }
  for (const warning of doc.warnings) {
    const at = lineCounter.linePos(warning.pos[0]);
    diagnostics.push({ file, line: at.line, col: at.col, severity: 'warning', code: 'yaml_syntax', message: yamlMessage(warning.message) });
  }
  const usable = doc.errors.every((e) => e.code === 'DUPLICATE_KEY');
  const position = (offset: number): SourcePosition => lineCounter.linePos(offset);

  function find(path: Path): { key?: YamlNode; value?: YamlNode; depth: number } {
    let current: unknown = doc.contents;
    let key: YamlNode | undefined;
    let depth = 0;
    for (const step of path) {
      if (isMap(current)) {
        const pair = current.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(step));
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
    return { key, value: current as YamlNode | undefined, depth };
  }

  const source: SourceFile = {
    file,
    text,
    data: usable ? doc.toJS({ maxAliasCount: 100 }) : undefined,
    locate(path, part = 'key') {
      const found = find(path);
      const exact = found.depth === path.length;
      const node = exact && part === 'value' ? (found.value ?? found.key) : found.key;
      return node?.range ? position(node.range[0]) : origin;
    },
    locateInString(path, offset) {
      const found = find(path);
      const node = found.value;
      if (found.depth !== path.length || !isScalar(node) || !node.range) return source.locate(path, 'value');
      return position(node.range[0] + scalarOffset(node, text, offset));
    },
  };
  return { source, diagnostics };
}

/** Maps an offset in a scalar's value to an offset in its source text. */
function scalarOffset(node: Scalar, text: string, offset: number): number {
  const start = node.range![0];
  switch (node.type) {
    case Scalar.QUOTE_DOUBLE:
    case Scalar.QUOTE_SINGLE:
      return 1 + offset;
    case Scalar.BLOCK_LITERAL:
    case Scalar.BLOCK_FOLDED: {
      // Find the text before the offset, line by line, in the raw block.
      const value = String(node.value);
      const lines = value.slice(0, offset).split('\n');
      const lastLine = lines[lines.length - 1];
      const lineText = value.split('\n')[lines.length - 1] ?? '';
      const raw = text.slice(start, node.range![1]);
      const header = raw.indexOf('\n') + 1;
      let at = header;
      for (let i = 0; i < lines.length - 1; i++) at = raw.indexOf('\n', at) + 1;
      const inLine = raw.indexOf(lineText, at);
      return (inLine >= 0 ? inLine : at) + lastLine.length;
    }
    default:
      return offset;
  }
}

function yamlMessage(message: string): string {
  const first = message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return `invalid yaml: ${first.charAt(0).toLowerCase()}${first.slice(1)}`;
}

/** Names the repeated key at an offset and the path of the map holding it. */
function duplicateKey(contents: unknown, offset: number, text: string): { name: string; parent: string[] } {
  const name = /^[\s"']*([^:"'\n]*)/.exec(text.slice(offset))?.[1]?.trim() ?? '';
  const parent: string[] = [];
  let current = contents;
  // Descend through the maps whose range holds the offset.
  while (isMap(current)) {
    const holder = current.items.find(
      (item) => isPair(item) && isScalar(item.key) && item.key.range && item.key.range[0] <= offset &&
        (item.value as YamlNode | null)?.range !== undefined && offset < (item.value as YamlNode).range![1] && item.key.range[0] !== offset,
    );
    if (!holder || !isScalar(holder.key)) break;
    parent.push(String(holder.key.value));
    current = holder.value;
  }
  return { name, parent };
}
