/**
 * `yaml`'s `parseDocument`, without its per-token cost. The library's
 * `Parser.next` reads `process.env.LOG_TOKENS` for every token; reading
 * `process.env` goes through the operating system's environment each time
 * (about a microsecond), which on a 140,000-node file was seconds, more than
 * the parse itself. This parser is the library's, with that one read
 * removed; everything else (the lexer, the composer, errors, positions) is
 * the library's own. The checker's corpus and fuzz tests hold it to
 * `parseDocument`'s results.
 */
import { Composer, CST, LineCounter, Parser, YAMLParseError, type Document, type DocumentOptions, type ParseOptions, type SchemaOptions } from 'yaml';

/** The fields of `Parser` that `next` drives; private in its types, public in its JavaScript. */
interface ParserState {
  source: string;
  atScalar: boolean;
  atNewLine: boolean;
  indent: number;
  offset: number;
  type: string;
  onNewLine?: (offset: number) => void;
  step(): Generator<CST.Token, void>;
  pop(error?: CST.Token): Generator<CST.Token, void>;
}

/** `yaml`'s `Parser`, its `next` the library's own but for the environment read (yaml 2.9). */
class QuietParser extends Parser {
  override *next(source: string): Generator<CST.Token, void> {
    const self = this as unknown as ParserState;
    self.source = source;
    if (self.atScalar) {
      self.atScalar = false;
      yield* self.step();
      self.offset += source.length;
      return;
    }
    const type = CST.tokenType(source);
    if (!type) {
      yield* self.pop({ type: 'error', offset: self.offset, message: `Not a YAML token: ${source}`, source });
      self.offset += source.length;
    } else if (type === 'scalar') {
      self.atNewLine = false;
      self.atScalar = true;
      self.type = 'scalar';
    } else {
      self.type = type;
      yield* self.step();
      switch (type) {
        case 'newline':
          self.atNewLine = true;
          self.indent = 0;
          if (self.onNewLine) self.onNewLine(self.offset + source.length);
          break;
        case 'space':
          if (self.atNewLine && source[0] === ' ') self.indent += source.length;
          break;
        case 'explicit-key-ind':
        case 'map-value-ind':
        case 'seq-item-ind':
          if (self.atNewLine) self.indent += source.length;
          break;
        case 'doc-mode':
        case 'flow-error-end':
          return;
        default:
          self.atNewLine = false;
      }
      self.offset += source.length;
    }
  }
}

/** As `yaml`'s `parseDocument(text, options)`, with a `lineCounter` and without `prettyErrors` (the checker words errors itself). */
export function parseYamlDocument(text: string, options: ParseOptions & DocumentOptions & SchemaOptions & { lineCounter: LineCounter }): Document.Parsed {
  const parser = new QuietParser(options.lineCounter.addNewLine);
  const composer = new Composer(options);
  let doc: Document.Parsed | undefined;
  for (const next of composer.compose(parser.parse(text), true, text.length)) {
    if (!doc) doc = next;
    else {
      doc.errors.push(new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents; please use YAML.parseAllDocuments()'));
      break;
    }
  }
  // `compose(…, true)` always yields a document, an empty one for empty text.
  return doc!;
}
