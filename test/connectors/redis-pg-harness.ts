/**
 * What the Redis and PostgreSQL connector tests share: the service
 * settings, a source and a sink made for tests (counting acknowledgements,
 * holding them on demand), running a YAML pipeline through the engine, and
 * a logger that keeps what it is told.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Observable } from 'rxjs';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import type { Graph } from '../../graph/model.ts';
import { defineOperator, perRecord, sinkBatches, z, type Batch, type EventRecord, type Logger, type OperatorDefinition } from '../../runtime/api.ts';
import { Engine } from '../../runtime/engine.ts';
import type { Clock } from '../../runtime/clock.ts';
import { registry } from '../../nodes/all.ts';
import type { StateStore } from '../../runtime/state/store.ts';
import { expect } from 'vitest';

const run = promisify(execFile);

/** A service setting from the environment, or a failure that says how to start the services. */
export function serviceSetting(name: 'STREAMS_REDIS_URL' | 'STREAMS_PG_URL'): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run \`npm run services:start\` (or \`bash test/services/start.sh redis postgres\`), then \`set -a; . /tmp/ami-streams-services/env.sh; set +a\``);
  }
  return value;
}

/** Stops or starts one of our services (`redis`, `postgres`) through the harness scripts. */
export async function service(action: 'start' | 'stop' | 'kill', name: 'redis' | 'postgres'): Promise<void> {
  const script = action === 'start' ? 'test/services/start.sh' : 'test/services/stop.sh';
  const args = action === 'kill' ? [script, '--kill', name] : [script, name];
  await run('bash', args, { cwd: new URL('../..', import.meta.url).pathname, timeout: 90_000 });
}

/** The folder where the harness keeps a service's files. */
export function serviceDir(name: 'redis' | 'postgres'): string {
  return `${process.env.STREAMS_SERVICES_DIR ?? '/tmp/ami-streams-services'}/${name}`;
}

/** What a `test.source` node did: records emitted and acknowledged, by its `name`. */
export interface SourceRecord {
  emitted: number;
  acked: number;
  /** Emitted record numbers whose batch has been acknowledged, in ack order. */
  ackedIds: number[];
  /** `performance.now()` when each batch was acknowledged, by its first record. */
  ackTimes: Map<number, number>;
  done: boolean;
}

export const sources = new Map<string, SourceRecord>();

/**
 * A test source: `count` records `{ i, key, payload }` in batches of
 * `batch`, at most `rate` records a second, pausing while downstream is full.
 */
export const testSource = defineOperator({
  name: 'test.source',
  summary: 'Numbered test records, counting acknowledgements.',
  doc: 'Emits numbered records for tests and counts their acknowledgements.',
  inputs: {},
  outputs: { out: { type: 'Event', doc: 'The records.' } },
  settings: z.object({
    name: z.string().meta({ description: 'Key of the counters.' }),
    count: z.number().int().nonnegative().meta({ description: 'Records to emit.' }),
    batch: z.number().int().min(1).default(100).meta({ description: 'Records per batch.' }),
    rate: z.number().positive().optional().meta({ description: 'Records per second at most.' }),
    keys: z.number().int().min(1).default(1_000_000_000).meta({ description: 'Distinct `key` values (`i % keys`).' }),
  }),
  create(ctx) {
    const { name, count, batch, rate, keys } = ctx.settings;
    const record: SourceRecord = { emitted: 0, acked: 0, ackedIds: [], ackTimes: new Map(), done: false };
    sources.set(name, record);
    return function testSourceNode() {
      return new Observable<Batch>((subscriber) => {
        let stopped = false;
        const loop = async (): Promise<void> => {
          const started = performance.now();
          while (!stopped && !ctx.signal.aborted && record.emitted < count) {
            const wait = ctx.ready();
            if (wait) {
              await wait;
              continue;
            }
            if (rate) {
              const due = started + ((record.emitted + batch) / rate) * 1000;
              const delay = due - performance.now();
              if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
              if (stopped || ctx.signal.aborted) break;
              if (ctx.ready()) continue;
            }
            const first = record.emitted;
            const size = Math.min(batch, count - first);
            const items = Array.from({ length: size }, (_, k) => ({ i: first + k, key: `k${(first + k) % keys}`, payload: `record ${first + k}` }));
            record.emitted += size;
            const ack = ctx.newAck(function testBatchAcknowledged() {
              record.acked += size;
              record.ackTimes.set(first, performance.now());
              for (let k = 0; k < size; k++) record.ackedIds.push(first + k);
            });
            subscriber.next({ items, ack });
            if (!rate) await new Promise((resolve) => setImmediate(resolve));
          }
          record.done = true;
          subscriber.complete();
        };
        void loop();
        return () => {
          stopped = true;
        };
      });
    };
  },
});

/** What a `test.collect` node received, by its `name`; while `holding`, it acknowledges nothing. */
export class Collector {
  items: unknown[] = [];
  batches = 0;
  holding = false;
  #gate!: Promise<void>;
  #open!: () => void;

  constructor() {
    this.#close();
  }

  #close(): void {
    this.#gate = new Promise<void>((resolve) => (this.#open = resolve));
  }

  /** Resolves once the collector is not holding. */
  async wait(): Promise<void> {
    while (this.holding) await this.#gate;
  }

  /** Acknowledges what is held and everything after. */
  release(): void {
    this.holding = false;
    this.#open();
    this.#close();
  }
}

export const collectors = new Map<string, Collector>();

export function collector(name: string): Collector {
  let entry = collectors.get(name);
  if (!entry) {
    entry = new Collector();
    collectors.set(name, entry);
  }
  return entry;
}

/** A test sink that keeps what it receives; with `hold: true` it acknowledges nothing until `release()`. */
export const testCollect = defineOperator({
  name: 'test.collect',
  summary: 'Keeps records for a test.',
  doc: 'Keeps every record it receives in memory for the test to read.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({
    name: z.string().meta({ description: 'Key of the collector.' }),
    hold: z.boolean().default(false).meta({ description: 'Hold acknowledgements until the test releases them.' }),
  }),
  create(ctx) {
    const entry = collector(ctx.settings.name);
    if (ctx.settings.hold) entry.holding = true;
    return sinkBatches<unknown>(async function collect(items) {
      entry.items.push(...items);
      entry.batches += 1;
      await entry.wait();
    });
  },
});

/**
 * A stateful test transform: numbers the records it passes (`seq`), counting
 * on from the count its previous run saved, so a restored run continues it.
 */
export const testCounter = defineOperator({
  name: 'test.counter',
  summary: 'Numbers records, keeping the count across runs.',
  doc: 'Adds `seq` to each record, continuing from the saved count.',
  inputs: { in: { type: 'Event', doc: 'Records.' } },
  outputs: { out: { type: 'Event', doc: 'Records with `seq`.' } },
  settings: z.object({}),
  create(ctx) {
    let count = (ctx.restored as { count?: number } | undefined)?.count ?? 0;
    ctx.snapshot(() => ({ count }));
    return perRecord<EventRecord, EventRecord>(ctx, (record) => ({ ...record, seq: count++ }));
  },
});

/** One log call, as a test reads it. */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps every entry. */
export function capturingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (fields: object, message: string) => {
    entries.push({ level, fields: fields as Record<string, unknown>, message });
  };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The default registry plus the test operators and `operators`. */
function registryWith(operators: readonly OperatorDefinition[]): Map<string, OperatorDefinition> {
  return new Map<string, OperatorDefinition>([...registry, ...[testSource, testCollect, testCounter, ...operators].map((op) => [op.name, op] as const)]);
}

/** Checks a pipeline against the default registry plus `operators`; throws the diagnostics if it does not check. */
export function checkGraph(yaml: string, operators: readonly OperatorDefinition[]): Graph {
  const result = checkPipeline({ file: 'test.yaml', text: yaml, registry: registryWith(operators), env: process.env });
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (!result.graph || errors.length > 0) throw new Error(`pipeline does not check:\n${result.diagnostics.map(formatDiagnostic).join('\n')}`);
  return result.graph;
}

/** Checks a pipeline against the default registry plus `operators`, and starts it. */
export function startPipeline(yaml: string, operators: readonly OperatorDefinition[], options: { log?: Logger; restored?: Map<string, unknown>; clock?: Clock } = {}): Engine {
  const engine = new Engine(checkGraph(yaml, operators), { registry: registryWith(operators), log: options.log, restored: options.restored, clock: options.clock });
  engine.done.catch(() => undefined);
  engine.start();
  return engine;
}

/** Ends every node at once, acknowledging nothing more: what a killed process leaves behind. */
export function forceStop(engine: Engine): void {
  for (const runner of engine.runners.values()) runner.force();
}

/** Polls `condition` every 50 ms until it holds, failing after `timeoutMs` with `what`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A name unique to this run, for keys and tables. */
export function unique(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/**
 * What every state store must do, shared by the Redis and PostgreSQL tests:
 * save, load and overwrite snapshots, keeping two pipelines apart.
 */
export async function checkSavesAndLoads(store: StateStore, a: string, b: string): Promise<void> {
  expect(await store.load(a)).toEqual(new Map());
  await store.save(a, new Map<string, unknown>([['window', { open: [1, 2] }], ['dedupe', { seen: ['x'] }]]));
  await store.save(b, new Map([['window', { open: [] }]]));
  expect(await store.load(a)).toEqual(new Map<string, unknown>([['window', { open: [1, 2] }], ['dedupe', { seen: ['x'] }]]));
  await store.save(a, new Map([['window', { open: [3] }]]));
  expect(await store.load(a)).toEqual(new Map([['window', { open: [3] }]]));
  expect(await store.load(b)).toEqual(new Map([['window', { open: [] }]]));
}

/**
 * Runs a stateful counter twice through a store, as `streams run --state`
 * does: the second run goes on counting from where the first stopped.
 */
export async function checkCarriesAcrossRuns(store: StateStore, pipeline: string): Promise<void> {
  const yaml = (sink: string) => `streams: 1
name: ${pipeline}
nodes:
  src:
    op: test.source
    with: { name: ${unique('src')}, count: 10 }
  counter:
    op: test.counter
    in: src
  sink:
    op: test.collect
    in: counter
    with: { name: ${sink} }
`;
  for (const run of [0, 1]) {
    const sink = unique('sink');
    const engine = startPipeline(yaml(sink), [], { restored: await store.load(pipeline) });
    await engine.done;
    await store.save(pipeline, engine.collectSnapshots());
    expect((collector(sink).items as EventRecord[]).map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => run * 10 + i));
  }
  expect(await store.load(pipeline)).toEqual(new Map([['counter', { count: 20 }]]));
}
