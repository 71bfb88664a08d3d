/**
 * What the MQTT tests share: the registry with the MQTT operators and a
 * collecting sink, pipelines run through the real engine, a logger that
 * keeps what it is told, free ports, polling, and plain mqtt.js clients for
 * the test's own publishing.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import mqttBroker from '../../nodes/messaging/mqtt-broker.ts';
import mqttPublish from '../../nodes/messaging/mqtt-publish.ts';
import mqttSubscribe from '../../nodes/messaging/mqtt-subscribe.ts';
import { registry } from '../../nodes/all.ts';
import { defineOperator, sinkBatches, z, type Logger, type OperatorDefinition } from '../../runtime/api.ts';
import { Engine } from '../../runtime/engine.ts';
export { freePort } from '../helpers/net.ts';

export const mqttOperators: OperatorDefinition[] = [mqttSubscribe, mqttPublish, mqttBroker];

/** Records kept by `test.collect` nodes, by their `into` setting. */
export const collected = new Map<string, unknown[]>();

/** Acknowledgements held by `test.collect` nodes with `hold: true`, released by `releaseHeld`. */
const held = new Map<string, (() => void)[]>();

/**
 * A sink that keeps what it receives under `into`. `delay_ms` delays each
 * batch's acknowledgement; `hold` keeps it until the test releases it.
 */
export const collectOperator = defineOperator({
  name: 'test.collect',
  summary: 'Test sink: keep records in memory.',
  doc: 'Keeps every record it receives in the test process, under `into`.',
  inputs: { in: { type: 'Any', doc: 'Anything.' } },
  outputs: {},
  settings: z.object({ into: z.string(), delay_ms: z.number().default(0), hold: z.boolean().default(false) }),
  create(ctx) {
    const { into, delay_ms: delayMs, hold } = ctx.settings;
    const list = collected.get(into) ?? [];
    collected.set(into, list);
    return sinkBatches<unknown>(async function collect(items) {
      list.push(...items);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (hold) {
        await new Promise<void>((resolve) => {
          const waiting = held.get(into) ?? [];
          waiting.push(resolve);
          held.set(into, waiting);
        });
      }
    });
  },
});

/** Lets every batch held by the `test.collect` nodes collecting `into` be acknowledged. */
export function releaseHeld(into: string): void {
  for (const release of held.get(into)?.splice(0) ?? []) release();
}

export function records(into: string): unknown[] {
  const list = collected.get(into) ?? [];
  collected.set(into, list);
  return list;
}

export const mqttRegistry = new Map<string, OperatorDefinition>([...registry, ...[...mqttOperators, collectOperator].map((op) => [op.name, op] as const)]);

export interface LogEntry {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

export type RecordingLogger = Logger & { entries: LogEntry[]; child(bindings: object): Logger };

/** A logger that keeps every entry; `STREAMS_TEST_LOG=1` also prints them. */
export function recordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const print = process.env.STREAMS_TEST_LOG === '1';
  const make = (bindings: object): RecordingLogger => {
    const at = (level: string) => (fields: object, message: string) => {
      const entry = { level, fields: { ...bindings, ...fields }, message };
      entries.push(entry);
      if (print) console.log(`[${level}] ${message}`);
    };
    return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more: object) => make({ ...bindings, ...more }) };
  };
  return make({});
}

const running = new Set<Engine>();

/** Checks `yaml` (errors throw; warnings are fine) and starts it on the engine. */
export function startGraph(yaml: string, log: Logger = recordingLogger()): Engine {
  const result = checkPipeline({ file: 'test.yaml', text: yaml, registry: mqttRegistry, env: process.env });
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !result.graph) throw new Error(`pipeline invalid:\n${errors.map(formatDiagnostic).join('\n')}`);
  const engine = new Engine(result.graph, { registry: mqttRegistry, log });
  running.add(engine);
  void engine.done.finally(() => running.delete(engine)).catch(() => undefined);
  engine.start();
  return engine;
}

/** Drains every engine the tests started and that still runs. */
export async function drainAll(deadlineMs = 5_000): Promise<void> {
  await Promise.all([...running].map((engine) => engine.drain({ deadlineMs }).catch(() => undefined)));
  running.clear();
}


/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function until(check: () => boolean, what: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits for a log line matching `pattern` (from `node`, when given). */
export function logged(log: RecordingLogger, pattern: RegExp, timeoutMs = 15_000): Promise<void> {
  return until(() => log.entries.some((e) => pattern.test(e.message)), () => `a log line matching ${pattern}; got:\n${log.entries.map((e) => `  [${e.level}] ${e.message}`).join('\n')}`, timeoutMs);
}

/** Waits until `into` holds at least `count` records. */
export function collectedAtLeast(into: string, count: number, timeoutMs = 15_000): Promise<void> {
  return until(() => records(into).length >= count, () => `${count} records in \`${into}\` (have ${records(into).length})`, timeoutMs);
}

const clients = new Set<MqttClient>();

/** A plain mqtt.js client for the test's own publishing and subscribing. */
export async function testClient(url: string, options: Parameters<typeof connectAsync>[1] = {}): Promise<MqttClient> {
  const client = await connectAsync(url, { reconnectPeriod: 200, ...options });
  clients.add(client);
  return client;
}

export async function closeClients(): Promise<void> {
  await Promise.all([...clients].map((client) => client.endAsync(true).catch(() => undefined)));
  clients.clear();
}

/** A topic prefix no other test uses. */
export function uniquePrefix(name: string): string {
  return `streams-test/${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Every `i` seen in `list` of events, with how often. */
export function countsOf(list: unknown[], field = 'i'): Map<number, number> {
  const counts = new Map<number, number>();
  for (const record of list as Record<string, number>[]) counts.set(record[field], (counts.get(record[field]) ?? 0) + 1);
  return counts;
}
