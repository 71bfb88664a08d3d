/**
 * `streams test`: pipeline unit tests in YAML, as Benthos has for its
 * configs. A test feeds records into chosen nodes (in place of their
 * upstreams), runs only the part of the graph between those nodes and the
 * ones it watches, and compares what comes out with what it expects:
 * records exactly (numbers within 1e-9), or a count, a CEL condition every
 * record meets, or records that must be among the output.
 *
 * ```yaml
 * streams_test: 1
 * pipeline: demo.yaml
 * tests:
 *   - name: keeps readings at or above zero
 *     input:
 *       valid: [{ device: a, value: 10 }, { device: b, value: -1 }]
 *     expect:
 *       celsius: [{ device: a, value: 10, fahrenheit: 50 }]
 *       valid.dlq: { count: 0 }
 * ```
 */
import { dirname, resolve } from 'node:path';
import { Observable } from 'rxjs';
import { didYouMean, formatDiagnostic, hasErrors, type Diagnostic } from '../graph/diagnostics.ts';
import { compileExpression, defineOperator, sinkBatches, z, type Batch, type OperatorDefinition } from '../runtime/api.ts';
import { checkPipeline } from '../graph/check.ts';
import { parseSource, type SourceFile } from '../graph/source.ts';
import { outputsOf } from '../graph/operator-spec.ts';
import type { Graph, GraphNode } from '../graph/model.ts';
import { Engine } from '../runtime/engine.ts';
import { registry } from '../nodes/all.ts';
import { readPipeline, requireTestFiles } from './pipeline-file.ts';

interface Expectation {
  node: string;
  port: string;
  /** Exact records in order, or conditions. */
  records?: unknown[];
  count?: number;
  all?: string;
  contains?: unknown[];
  path: (string | number)[];
}

interface TestCase {
  name: string;
  inputs: Map<string, unknown[]>;
  expectations: Expectation[];
  params: Record<string, unknown>;
  path: (string | number)[];
}

export interface TestOutcome {
  name: string;
  passed: boolean;
  failures: string[];
}

const feedOperator = defineOperator({
  name: 'test.feed',
  summary: 'Feeds a test\'s records.',
  doc: 'Emits the records given in a pipeline test, then completes.',
  inputs: {},
  outputs: { out: { type: 'Any', doc: 'The records.' } },
  settings: z.object({ records: z.array(z.unknown()) }),
  create(ctx) {
    return () =>
      new Observable<Batch>((subscriber) => {
        if (ctx.settings.records.length > 0) subscriber.next({ items: structuredClone(ctx.settings.records), ack: ctx.newAck() });
        subscriber.complete();
      });
  },
});

function captureOperator(store: Map<string, unknown[]>): OperatorDefinition {
  return defineOperator({
    name: 'test.capture',
    summary: 'Captures a test\'s output.',
    doc: 'Keeps what reaches it for the test to compare.',
    inputs: { in: { type: 'Any', doc: 'Anything.' } },
    outputs: {},
    settings: z.object({ key: z.string() }),
    create(ctx) {
      const list: unknown[] = [];
      store.set(ctx.settings.key, list);
      return sinkBatches((items: unknown[]) => {
        list.push(...items);
      });
    },
  });
}

/** Whether a node's only input port takes Bytes. */
function takesBytes(inputs: Record<string, { type: unknown }>): boolean {
  const ports = Object.values(inputs);
  return ports.length === 1 && ports[0].type === 'Bytes';
}

/** A record a Bytes input can take: `{ text }` (a line). */
function isBytesRecord(value: unknown): boolean {
  return isRecord(value) && typeof value.text === 'string';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Reads and validates a test file; problems come back as located diagnostics. */
export function parseTestFile(file: string, text: string): { pipeline?: string; tests: TestCase[]; diagnostics: Diagnostic[]; source: SourceFile } {
  const { source, diagnostics } = parseSource(file, text);
  const problem = (path: (string | number)[], message: string, hint?: string, part: 'key' | 'value' = 'value'): void => {
    const at = source.locate(path, part);
    diagnostics.push({ file, line: at.line, col: at.col, severity: 'error', code: 'bad_field', message, ...(hint ? { hint } : {}) });
  };
  const doc = source.data;
  const tests: TestCase[] = [];
  if (!isRecord(doc)) {
    if (source.data !== undefined) problem([], 'a test file must be a map with `streams_test`, `pipeline` and `tests`');
    return { tests, diagnostics, source };
  }
  for (const key of Object.keys(doc)) {
    if (!['streams_test', 'pipeline', 'tests'].includes(key)) problem([key], `unknown field \`${key}\``, didYouMean(key, ['streams_test', 'pipeline', 'tests']), 'key');
  }
  if (doc.streams_test !== 1) problem(['streams_test'], 'a test file starts with `streams_test: 1`');
  if (typeof doc.pipeline !== 'string') problem(['pipeline'], '`pipeline` must name the pipeline file, relative to this one');
  if (!Array.isArray(doc.tests) || doc.tests.length === 0) {
    problem(['tests'], '`tests` must be a list of tests');
    return { tests, diagnostics, source };
  }
  doc.tests.forEach((raw: unknown, i: number) => {
    const path = ['tests', i];
    if (!isRecord(raw)) return problem(path, 'a test must be a map with `name`, `input` and `expect`');
    for (const key of Object.keys(raw)) {
      if (!['name', 'input', 'expect', 'params'].includes(key)) problem([...path, key], `unknown field \`${key}\` in a test`, didYouMean(key, ['name', 'input', 'expect', 'params']), 'key');
    }
    const name = typeof raw.name === 'string' ? raw.name : `test ${i + 1}`;
    const inputs = new Map<string, unknown[]>();
    if (!isRecord(raw.input)) problem([...path, 'input'], '`input` must map node names to lists of records');
    else {
      for (const [node, records] of Object.entries(raw.input)) {
        if (Array.isArray(records)) inputs.set(node, records);
        else problem([...path, 'input', node], `the input of \`${node}\` must be a list of records`);
      }
    }
    const expectations: Expectation[] = [];
    if (!isRecord(raw.expect)) problem([...path, 'expect'], '`expect` must map node names (or `node.port`) to records or conditions');
    else {
      for (const [target, want] of Object.entries(raw.expect)) {
        const [node, port = ''] = target.split('.', 2) as [string, string?];
        const at = [...path, 'expect', target];
        if (Array.isArray(want)) expectations.push({ node, port, records: want, path: at });
        else if (isRecord(want)) {
          for (const key of Object.keys(want)) {
            if (!['count', 'all', 'contains'].includes(key)) problem([...at, key], `unknown expectation \`${key}\``, didYouMean(key, ['count', 'all', 'contains']) ?? 'use `count`, `all` or `contains`', 'key');
          }
          const expectation: Expectation = { node, port, path: at };
          if (want.count !== undefined) {
            if (typeof want.count === 'number' && Number.isInteger(want.count) && want.count >= 0) expectation.count = want.count;
            else problem([...at, 'count'], '`count` must be a whole number');
          }
          if (want.all !== undefined) {
            if (typeof want.all === 'string') expectation.all = want.all;
            else problem([...at, 'all'], '`all` must be a CEL condition');
          }
          if (want.contains !== undefined) {
            if (Array.isArray(want.contains)) expectation.contains = want.contains;
            else problem([...at, 'contains'], '`contains` must be a list of records');
          }
          expectations.push(expectation);
        } else problem(at, `the expectation for \`${target}\` must be a list of records or a map of conditions`);
      }
    }
    tests.push({ name, inputs, expectations, params: isRecord(raw.params) ? raw.params : {}, path });
  });
  return { pipeline: typeof doc.pipeline === 'string' ? doc.pipeline : undefined, tests, diagnostics, source };
}

/** The part of the graph a test exercises: from the fed nodes to the watched ones, with feeds and captures in place. */
function testGraph(graph: Graph, test: TestCase): Graph {
  const downstream = new Set<string>();
  const visitDown = (name: string): void => {
    if (downstream.has(name)) return;
    downstream.add(name);
    for (const edge of graph.edges) if (edge.from === name) visitDown(edge.to);
  };
  for (const name of test.inputs.keys()) visitDown(name);
  const upstream = new Set<string>();
  const visitUp = (name: string): void => {
    if (upstream.has(name)) return;
    upstream.add(name);
    for (const edge of graph.edges) if (edge.to === name && !test.inputs.has(name)) visitUp(edge.from);
  };
  for (const expectation of test.expectations) visitUp(expectation.node);
  const keep = new Set([...downstream].filter((name) => upstream.has(name)));
  const nodes = new Map<string, GraphNode>();
  for (const name of keep) nodes.set(name, graph.nodes.get(name)!);
  const edges = graph.edges.filter((e) => keep.has(e.from) && keep.has(e.to) && !test.inputs.has(e.to));
  const synthetic = (name: string, op: OperatorDefinition, settings: unknown): GraphNode => ({
    name,
    op: op.name,
    spec: op,
    settings,
    rawSettings: settings,
    parallelism: 1,
    onError: 'dlq',
    channel: {},
    outputTypes: {},
    at: { line: 1, col: 1 },
  });
  for (const [name, records] of test.inputs) {
    const feed = `__feed_${name}`;
    nodes.set(feed, synthetic(feed, feedOperator, { records }));
    const toPort = Object.keys(graph.nodes.get(name)!.spec.inputs)[0];
    edges.push({ from: feed, fromPort: 'out', to: name, toPort, type: { kind: 'any' } });
  }
  for (const expectation of test.expectations) {
    const capture = `__expect_${expectation.node}_${expectation.port}`;
    nodes.set(capture, synthetic(capture, captureOperator(new Map()), { key: `${expectation.node}.${expectation.port}` }));
    edges.push({ from: expectation.node, fromPort: expectation.port, to: capture, toPort: 'in', type: { kind: 'any' } });
  }
  return { ...graph, nodes, edges };
}

function same(expected: unknown, actual: unknown): boolean {
  if (typeof expected === 'number' && typeof actual === 'number') {
    return expected === actual || Math.abs(expected - actual) <= 1e-9 * Math.max(1, Math.abs(expected));
  }
  if (Array.isArray(expected)) return Array.isArray(actual) && expected.length === actual.length && expected.every((e, i) => same(e, actual[i]));
  if (isRecord(expected)) {
    if (!isRecord(actual)) return false;
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    return [...keys].every((k) => same(expected[k], actual[k]));
  }
  return expected === actual;
}

/** Says how two records differ, field by field. */
function describeDifference(expected: unknown, actual: unknown): string {
  if (isRecord(expected) && isRecord(actual)) {
    const parts: string[] = [];
    for (const key of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
      if (!(key in actual)) parts.push(`field \`${key}\` missing (expected ${JSON.stringify(expected[key])})`);
      else if (!(key in expected)) parts.push(`unexpected field \`${key}\` = ${JSON.stringify(actual[key])}`);
      else if (!same(expected[key], actual[key])) parts.push(`field \`${key}\`: expected ${JSON.stringify(expected[key])}, got ${JSON.stringify(actual[key])}`);
    }
    return parts.join('; ');
  }
  return `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

function check(expectation: Expectation, got: unknown[]): string[] {
  const label = `${expectation.node}${expectation.port ? `.${expectation.port}` : ''}`;
  const failures: string[] = [];
  if (expectation.records) {
    if (got.length !== expectation.records.length) {
      failures.push(`${label}: expected ${expectation.records.length} records, got ${got.length}${got.length ? `: ${got.slice(0, 3).map((r) => JSON.stringify(r)).join(', ')}${got.length > 3 ? ', ...' : ''}` : ''}`);
    }
    expectation.records.forEach((want, i) => {
      if (i < got.length && !same(want, got[i])) failures.push(`${label}: record ${i + 1}: ${describeDifference(want, got[i])}`);
    });
  }
  if (expectation.count !== undefined && got.length !== expectation.count) failures.push(`${label}: expected ${expectation.count} records, got ${got.length}`);
  if (expectation.all) {
    const condition = compileExpression(expectation.all);
    got.forEach((record, i) => {
      let verdict: unknown;
      try {
        verdict = condition(record as Record<string, unknown>);
      } catch (error) {
        verdict = (error as Error).message.split('\n')[0];
      }
      if (verdict !== true) failures.push(`${label}: record ${i + 1} fails \`${expectation.all}\` (${typeof verdict === 'string' ? verdict : `gave ${String(verdict)}`}): ${JSON.stringify(record)}`);
    });
  }
  for (const want of expectation.contains ?? []) {
    if (!got.some((record) => same(want, record))) failures.push(`${label}: no record matches ${JSON.stringify(want)}`);
  }
  return failures;
}

/**
 * Runs every test of a test file; diagnostics mean the file itself is wrong.
 * `source` is the file as already read (`readPipeline(path)`), so a file is
 * read once, which a pipe (`streams test <(...)`) needs.
 */
export async function runTestFile(path: string, source = readPipeline(path)): Promise<{ outcomes: TestOutcome[]; diagnostics: Diagnostic[] }> {
  const { file, text } = source;
  const parsed = parseTestFile(file, text);
  if (hasErrors(parsed.diagnostics) || !parsed.pipeline) return { outcomes: [], diagnostics: parsed.diagnostics };
  const pipelinePath = resolve(dirname(path), parsed.pipeline);
  const pipeline = readPipeline(pipelinePath);
  const outcomes: TestOutcome[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const test of parsed.tests) {
    const checked = checkPipeline({ file: pipeline.file, text: pipeline.text, registry, env: process.env, params: test.params });
    if (!checked.graph) {
      diagnostics.push(...checked.diagnostics);
      break;
    }
    const graph = checked.graph;
    const located = (at: (string | number)[], message: string, hint?: string): void => {
      const pos = parsed.source.locate(at, 'key');
      diagnostics.push({ file, line: pos.line, col: pos.col, severity: 'error', code: 'unknown_input', message, ...(hint ? { hint } : {}) });
    };
    for (const name of test.inputs.keys()) {
      const node = graph.nodes.get(name);
      if (!node) located([...test.path, 'input', name], `test feeds unknown node \`${name}\``, didYouMean(name, graph.nodes.keys()));
      else if (Object.keys(node.spec.inputs).length === 0) located([...test.path, 'input', name], `test feeds \`${name}\`, a source; feed the node after it`);
      else if (takesBytes(node.spec.inputs) && test.inputs.get(name)!.some((record) => !isBytesRecord(record))) {
        located([...test.path, 'input', name], `node \`${name}\` takes Bytes, and \`input.${name}\` gives events: feed the node after it, or give lines as \`{ text: "..." }\``);
      }
    }
    for (const expectation of test.expectations) {
      const node = graph.nodes.get(expectation.node);
      if (!node) {
        located(expectation.path, `test watches unknown node \`${expectation.node}\``, didYouMean(expectation.node, graph.nodes.keys()));
        continue;
      }
      const ports = Object.keys(outputsOf(node.spec));
      expectation.port ||= ports[0];
      if (!ports.includes(expectation.port)) located(expectation.path, `node \`${expectation.node}\` has no output port \`${expectation.port}\``, didYouMean(expectation.port, ports));
    }
    if (hasErrors(diagnostics)) break;
    const store = new Map<string, unknown[]>();
    const capture = captureOperator(store);
    const subgraph = testGraph(graph, test);
    for (const node of subgraph.nodes.values()) if (node.op === 'test.capture') node.spec = capture;
    const engine = new Engine(subgraph, { registry: new Map([...registry, [feedOperator.name, feedOperator], [capture.name, capture]]), baseDir: dirname(pipelinePath) });
    engine.start();
    const failures: string[] = [];
    try {
      await Promise.race([engine.done, new Promise((_, reject) => setTimeout(() => reject(new Error('did not finish within 10 s')), 10_000).unref())]);
    } catch (error) {
      failures.push(`the pipeline failed: ${(error as Error).message}`);
      await engine.drain({ deadlineMs: 1000 }).catch(() => undefined);
    }
    for (const expectation of test.expectations) failures.push(...check(expectation, store.get(`${expectation.node}.${expectation.port}`) ?? []));
    outcomes.push({ name: test.name, passed: failures.length === 0, failures });
  }
  return { outcomes, diagnostics };
}

/**
 * Reads every test file once, refuses pipelines given as test files before
 * anything runs, then runs them and prints outcomes the way test runners
 * do; returns the exit code.
 */
export async function testCommand(paths: string[]): Promise<number> {
  const files = paths.map((path) => ({ path, ...readPipeline(path) }));
  requireTestFiles(files);
  let passed = 0;
  let failed = 0;
  let broken = false;
  for (const { path, file, text } of files) {
    const { outcomes, diagnostics } = await runTestFile(path, { file, text });
    for (const diagnostic of diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
    if (hasErrors(diagnostics)) broken = true;
    for (const outcome of outcomes) {
      if (outcome.passed) {
        passed++;
        process.stdout.write(`PASS ${path} > ${outcome.name}\n`);
      } else {
        failed++;
        process.stdout.write(`FAIL ${path} > ${outcome.name}\n${outcome.failures.map((f) => `  ${f}`).join('\n')}\n`);
      }
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return broken || failed > 0 ? 1 : 0;
}
