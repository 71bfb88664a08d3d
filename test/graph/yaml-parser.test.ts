/**
 * The checker's YAML parser (`yaml`'s, without its per-token environment
 * read) gives what `parseDocument` gives: the same data, errors and
 * warnings at the same offsets, and the same line positions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { parseYamlDocument } from '../../graph/yaml-parser.ts';

const folders = ['../checker/invalid/', '../../pipelines/'].map((folder) => new URL(folder, import.meta.url));
const files = folders.flatMap((folder) => readdirSync(folder).filter((name) => name.endsWith('.yaml')).map((name) => new URL(name, folder)));
const extra = ['', 'a: 1\n---\nb: 2\n', '- [1, {a: b}\n', 'a: &x 1\nb: *x\nc: *y\n', 'k: "\\u00e9\n', 'a:\n\t- 1\n'];

function outcome(parse: (text: string, lineCounter: LineCounter) => Document.Parsed, text: string) {
  const lineCounter = new LineCounter();
  const doc = parse(text, lineCounter);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    data = (error as Error).message;
  }
  return {
    data,
    errors: doc.errors.map((e) => [e.code, e.pos, e.message]),
    warnings: doc.warnings.map((e) => [e.code, e.pos, e.message]),
    lines: lineCounter.lineStarts,
  };
}

const options = { uniqueKeys: false, strict: true, logLevel: 'error' } as const;

describe('the checker\'s YAML parser', () => {
  it.each([...files.map((url) => url.pathname.split('/').slice(-2).join('/')), ...extra.map((text) => JSON.stringify(text))])('parses %s as parseDocument does', (name) => {
    const url = files.find((u) => u.pathname.endsWith(name));
    const text = url ? readFileSync(url, 'utf8') : (JSON.parse(name) as string);
    expect(outcome((t, lineCounter) => parseYamlDocument(t, { lineCounter, ...options }), text))
      .toEqual(outcome((t, lineCounter) => parseDocument(t, { lineCounter, prettyErrors: false, ...options }), text));
  });

  it('does not read the environment per token', () => {
    const env = process.env;
    let reads = 0;
    process.env = new Proxy(env, { get: (target, key) => ((reads += key === 'LOG_TOKENS' ? 1 : 0), Reflect.get(target, key)) });
    try {
      parseYamlDocument('a: 1\nb: [2, 3]\n', { lineCounter: new LineCounter(), ...options });
      expect(reads).toBe(0);
      parseDocument('a: 1\nb: [2, 3]\n', options);
      expect(reads, 'the library\'s own parser reads it, so this test can tell').toBeGreaterThan(0);
    } finally {
      process.env = env;
    }
  });

  it('runs on the yaml release its copied `Parser.next` was taken from (2.9.x)', () => {
    // package.json allows any yaml 2.x (^2.9.1); a newer minor may change `Parser.next`, which graph/yaml-parser.ts copies.
    const { version } = createRequire(import.meta.url)('yaml/package.json') as { version: string };
    expect(version, `yaml ${version} is installed: re-check QuietParser.next in graph/yaml-parser.ts against its Parser.next, then update this test`).toMatch(/^2\.9\.\d+$/);
  });
});
