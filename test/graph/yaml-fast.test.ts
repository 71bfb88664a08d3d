/**
 * The fast YAML reader against the `yaml` library: for every YAML file and
 * documentation example in the repository, for generated documents of the
 * subset, and for random edits of both, the fast reader either gives up
 * (and the library reads the file) or gives the library's data, no
 * diagnostic, and the same position for every key, value and character of
 * every string the checker may point at.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generatePipeline } from '../../bench/check-2000.ts';
import { parseSource, parseSourceWithLibrary, type Path } from '../../graph/source.ts';
import { parseFastYaml } from '../../graph/yaml-fast.ts';

const root = new URL('../../', import.meta.url).pathname;

function yamlFiles(folder: string): string[] {
  return readdirSync(join(root, folder)).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(join(root, path)).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

/** The ```yaml blocks of the documentation. */
function markdownExamples(file: string): string[] {
  return [...readFileSync(join(root, file), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]);
}

const corpus: { name: string; text: string }[] = [
  ...['pipelines', 'test', 'config'].flatMap(yamlFiles).map((name) => ({ name, text: readFileSync(join(root, name), 'utf8') })),
  ...['README.md', 'docs/operators.md'].flatMap((file) => markdownExamples(file).map((text, i) => ({ name: `${file} example ${i + 1}`, text }))),
];

function paths(value: unknown, prefix: Path = []): Path[] {
  const children =
    Array.isArray(value) ? value.map((item, i) => [i, item] as const) : value && typeof value === 'object' ? Object.entries(value) : [];
  return [prefix, ...children.flatMap(([step, child]) => paths(child, [...prefix, step]))];
}

function valueAt(data: unknown, path: Path): unknown {
  return path.reduce<unknown>((at, step) => (at as Record<string | number, unknown>)[step], data);
}

/** Whether the fast reader read `text`; when it did, expects it to agree with the library in everything the checker uses. */
function agrees(text: string): boolean {
  if (!parseFastYaml(text)) {
    // Falling back is the library's reading, diagnostics and all.
    const [used, library] = [parseSource('f.yaml', text), parseSourceWithLibrary('f.yaml', text)];
    expect(used.diagnostics).toEqual(library.diagnostics);
    expect(used.source.data).toStrictEqual(library.source.data);
    return false;
  }
  const fast = parseSource('f.yaml', text);
  const library = parseSourceWithLibrary('f.yaml', text);
  expect(fast.diagnostics).toEqual([]);
  expect(library.diagnostics).toEqual([]);
  expect(fast.source.data).toStrictEqual(library.source.data);
  for (const path of paths(library.source.data)) {
    for (const probe of [path, [...path, 'absent'], [...path, 7]]) {
      expect(fast.source.locate(probe, 'key'), `key at ${probe.join('.')}`).toEqual(library.source.locate(probe, 'key'));
      expect(fast.source.locate(probe, 'value'), `value at ${probe.join('.')}`).toEqual(library.source.locate(probe, 'value'));
    }
    const value = valueAt(library.source.data, path);
    if (typeof value === 'string' || typeof value === 'number') {
      for (let offset = 0; offset <= String(value).length + 1; offset++) {
        expect(fast.source.locateInString(path, offset), `offset ${offset} in ${path.join('.')}`).toEqual(library.source.locateInString(path, offset));
      }
    }
  }
  return true;
}

describe('the fast YAML reader', () => {
  it('agrees with the library on every YAML file and documentation example in the repository, and reads most pipelines itself', () => {
    expect(corpus.length).toBeGreaterThan(50);
    const read = corpus.filter(({ name, text }) => {
      try {
        return agrees(text);
      } catch (error) {
        throw new Error(`${name}: ${(error as Error).message}`);
      }
    });
    const pipelines = corpus.filter(({ name }) => name.startsWith('pipelines/'));
    expect(pipelines.filter((file) => read.includes(file)).length).toBeGreaterThanOrEqual(pipelines.length - 1);
  });

  it('reads the benchmarks’ generated pipeline itself', () => {
    expect(agrees(generatePipeline(60))).toBe(true);
  });

  it('gives up on what is outside the subset or wrong, leaving the library’s located diagnostics', () => {
    const cases: [string, string][] = [
      ['duplicate key', 'nodes:\n  a:\n    op: x\n  a:\n    op: y\n'],
      ['bad indentation', 'nodes:\n  a:\n    op: x\n   in: b\n'],
      ['over-indented key', 'a: 1\n  b: 2\n'],
      ['tab indentation', 'nodes:\n\ta:\n    op: x\n'],
      ['unclosed quote', 'a: "open\nb: 1\n'],
      ['unclosed flow', 'a: { b: 1\nc: 2\n'],
      ['anchor and alias', 'a: &x 1\nb: *x\n'],
      ['tag', 'a: !!str 1\n'],
      ['two documents', 'a: 1\n---\nb: 2\n'],
      ['complex key', '? [a]\n: 1\n'],
      ['multi-line plain', 'a: one\n  two\n'],
      ['nested compact map', 'a: b: c\n'],
      ['numeric key', '1: a\n'],
    ];
    for (const [what, text] of cases) {
      expect(parseFastYaml(text), what).toBeUndefined();
      expect(agrees(text)).toBe(false);
    }
    expect(parseSource('f.yaml', 'nodes:\n  a:\n    op: x\n  a:\n    op: y\n').diagnostics).toMatchObject([{ line: 4, col: 3, code: 'duplicate_node' }]);
  });

  it('reads every core-schema spelling of null, booleans and numbers as the library does, and other words as strings', () => {
    const spellings = ['~', '~x', 'null', 'Null', 'NULL', 'nULL', 'nil', 'true', 'True', 'TRUE', 'tRUE', 'false', 'False', 'FALSE', 'fALSE', 'n', 't', 'f', 'nan', 'inf',
      '.inf', '-.Inf', '+.INF', '.nan', '.NaN', '.NAN', '0o17', '0o8', '0x1F', '0xg', '+12', '-0', '007', '1e3', '1.5E-2', '.5', '5.', '+x', '.x', 'Zed', 'zed'];
    for (const text of spellings) {
      expect(agrees(`k: ${text}\nl: [${text}]\n`), text).toBe(true);
      expect(parseFastYaml(`k: ${text}\n`)!.data, text).toStrictEqual(parseSourceWithLibrary('f.yaml', `k: ${text}\n`).source.data);
    }
  });

  it('agrees with the library on generated documents of the subset, and reads them itself', () => {
    fc.assert(
      fc.property(documentArbitrary, ({ text, data }) => {
        expect(agrees(text)).toBe(true);
        expect(parseFastYaml(text)!.data).toStrictEqual(data);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the library or gives up on random edits of generated and repository documents', () => {
    const texts = fc.oneof(
      documentArbitrary.map(({ text }) => text),
      fc.constantFrom(...corpus.map(({ text }) => text).filter((text) => text.length < 4000)),
    );
    fc.assert(
      fc.property(texts, fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.constantFrom(' ', '\n', ':', '-', '#', '"', "'", '\t', '[', '{', '|', 'x', '  ')), { maxLength: 4 }), (text, edits) => {
        let edited = text;
        for (const [at, cut, insert] of edits) {
          const offset = at % (edited.length + 1);
          edited = edited.slice(0, offset) + insert + edited.slice(offset + cut);
        }
        agrees(edited);
      }),
      { numRuns: 400 },
    );
  });
});

/** Scalars of every kind the subset holds, with the text each is written as. */
const scalarArbitrary: fc.Arbitrary<{ text: string; value: unknown; flow: boolean }> = fc.oneof(
  fc.stringMatching(/^[a-z$][a-z0-9 ._/:$()-]{0,12}[a-z0-9]$/).filter((s) => !/: |:$/.test(s) && typeof plainValue(s) === 'string').map((s) => ({ text: s, value: s, flow: !s.includes(':') })),
  fc.oneof(fc.integer({ min: -1e6, max: 1e6 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), fc.boolean(), fc.constant(null)).map((v) => (Object.is(v, -0) ? 0 : v)).map((v) => ({ text: String(v), value: v, flow: true })),
  fc.string({ maxLength: 12 }).filter((s) => !/[\x00-\x1f\x7f\ufeff]/.test(s)).map((s) => ({ text: `'${s.replaceAll("'", "''")}'`, value: s, flow: true })),
  fc.string({ maxLength: 12 }).map((s) => ({ text: JSON.stringify(s).replace(/[\x7f\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`), value: s, flow: true })),
);

function plainValue(text: string): unknown {
  return parseFastYaml(`k: ${text}\n`)?.data && (parseFastYaml(`k: ${text}\n`)!.data as { k: unknown }).k;
}

type Tree = { scalar: { text: string; value: unknown; flow: boolean } } | { block: { lines: string[]; folded: boolean; strip: boolean } } | { map: [string, Tree][] } | { seq: Tree[] };

const keyArbitrary = fc.stringMatching(/^[a-z_][a-z0-9_.-]{0,8}$/).filter((k) => k !== '__proto__' && typeof plainValue(k) === 'string');
const blockArbitrary = fc.record({ lines: fc.array(fc.stringMatching(/^[a-z][a-z0-9 ,.()"'#:-]{0,15}$/), { minLength: 1, maxLength: 4 }), folded: fc.boolean(), strip: fc.boolean() });

const { tree: treeArbitrary } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalarArbitrary.map((scalar) => ({ scalar })),
    blockArbitrary.map((block) => ({ block })),
    fc.uniqueArray(fc.tuple(keyArbitrary, tie('tree')), { minLength: 1, maxLength: 4, selector: ([key]) => key }).map((map) => ({ map })),
    fc.array(tie('tree'), { minLength: 1, maxLength: 4 }).map((seq) => ({ seq })),
  ),
}));

/** A block document (a mapping at the top) rendered from a tree with a given indentation step, and the data it holds. */
const documentArbitrary = fc
  .tuple(fc.uniqueArray(fc.tuple(keyArbitrary, treeArbitrary), { minLength: 1, maxLength: 5, selector: ([key]) => key }), fc.integer({ min: 1, max: 4 }), fc.boolean())
  .map(([entries, step, comments]) => {
    const lines: string[] = comments ? ['# a generated document', ''] : [];
    const data = renderMap(entries, 0, step, comments, lines);
    return { text: lines.join('\n') + '\n', data };
  });

function blockData({ lines, folded, strip }: { lines: string[]; folded: boolean; strip: boolean }): string {
  return (folded ? lines.join(' ') : lines.join('\n')) + (strip ? '' : '\n');
}

/** Renders a value after `key:` or `-` (`lead`), appending lines; returns its data. */
function renderValue(lead: string, tree: Tree, indent: number, step: number, comments: boolean, out: string[]): unknown {
  const pad = ' '.repeat(indent);
  if ('scalar' in tree) {
    out.push(`${pad}${lead} ${tree.scalar.text}${comments ? ' # note' : ''}`);
    return tree.scalar.value;
  }
  if ('block' in tree) {
    out.push(`${pad}${lead} ${tree.block.folded ? '>' : '|'}${tree.block.strip ? '-' : ''}`);
    for (const line of tree.block.lines) out.push(`${pad}${' '.repeat(step)}${line}`);
    return blockData(tree.block);
  }
  const flowable = 'map' in tree ? tree.map.every(([, v]) => 'scalar' in v && v.scalar.flow) : tree.seq.every((v) => 'scalar' in v && v.scalar.flow);
  if (flowable && out.length % 2 === 0) {
    if ('map' in tree) {
      out.push(`${pad}${lead} { ${tree.map.map(([k, v]) => `${k}: ${(v as { scalar: { text: string } }).scalar.text}`).join(', ')} }`);
      return Object.fromEntries(tree.map.map(([k, v]) => [k, (v as { scalar: { value: unknown } }).scalar.value]));
    }
    out.push(`${pad}${lead} [${tree.seq.map((v) => (v as { scalar: { text: string } }).scalar.text).join(', ')}]`);
    return tree.seq.map((v) => (v as { scalar: { value: unknown } }).scalar.value);
  }
  out.push(`${pad}${lead}`);
  // A sequence under a key may sit at the key's own column, as many files write it.
  const deeper = 'seq' in tree && lead.endsWith(':') && out.length % 3 === 0 ? indent : indent + step;
  return 'map' in tree ? renderMap(tree.map, deeper, step, comments, out) : renderSeq(tree.seq, deeper, step, comments, out);
}

function renderMap(entries: [string, Tree][], indent: number, step: number, comments: boolean, out: string[]): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [key, value] of entries) data[key] = renderValue(`${key}:`, value, indent, step, comments, out);
  return data;
}

function renderSeq(items: Tree[], indent: number, step: number, comments: boolean, out: string[]): unknown[] {
  return items.map((item) => {
    // A mapping in a sequence entry starts on the `-` line (`- key: value`), its other keys under the first.
    if ('map' in item && out.length % 2 === 1) {
      const start = out.length;
      const data = renderMap(item.map, indent + 2, step, comments, out);
      out[start] = `${' '.repeat(indent)}- ${out[start].slice(indent + 2)}`;
      return data;
    }
    return renderValue('-', item, indent, step, comments, out);
  });
}

describe('positions of a large file', () => {
  it('keeps each node of `nodes` unread until something inside it is located, then locates it as the library does', () => {
    const text = generatePipeline(200);
    const parsed = parseFastYaml(text)!;
    const root = parsed.root.kind === 'map' ? parsed.root : undefined;
    const nodes = root?.pairs.get('nodes')?.value;
    expect(nodes?.kind).toBe('map');
    const bodies = nodes?.kind === 'map' ? [...nodes.pairs.values()].map((pair) => pair.value.kind) : [];
    expect(bodies).toHaveLength(200);
    expect(new Set(bodies)).toEqual(new Set(['deferred']));

    const fast = parseSource('large.yaml', text).source;
    const library = parseSourceWithLibrary('large.yaml', text).source;
    for (const path of [['nodes', 'src-3'], ['nodes', 'src-3', 'with', 'fields', 'value'], ['nodes', 'hot-7', 'with', 'where'], ['nodes', 'out-2', 'with', 'path']] as Path[]) {
      expect(fast.locate(path), path.join('.')).toEqual(library.locate(path));
      expect(fast.locate(path, 'value'), path.join('.')).toEqual(library.locate(path, 'value'));
    }
    expect(fast.locateInString(['nodes', 'hot-7', 'with', 'where'], 20)).toEqual(library.locateInString(['nodes', 'hot-7', 'with', 'where'], 20));
  });
});
