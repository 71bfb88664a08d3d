/**
 * The MQTT integration tests, written once and run against each broker: the
 * embedded one (`mqtt.broker`, in `mqtt.test.ts`) and Mosquitto (in
 * `mqtt.services.test.ts`). Every case runs the operators through the
 * engine; the test's own publishing uses plain mqtt.js clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BytesItem } from '../../runtime/api.ts';
import {
  closeClients,
  collectedAtLeast,
  countsOf,
  drainAll,
  recordingLogger,
  records,
  releaseHeld,
  startGraph,
  testClient,
  uniquePrefix,
  until,
  type RecordingLogger,
} from './mqtt-harness.ts';

/** A broker the cases run against. */
export interface BrokerUnderTest {
  name: string;
  /** Its URL; valid once `setup` has run. */
  url(): string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** Speaks MQTT 5. */
  mqtt5: boolean;
  /** Supports `$share/GROUP/FILTER`. */
  sharedSubscriptions: boolean;
}

type NodeSpec = { op: string; in?: string | string[]; with?: Record<string, unknown>; capacity?: number; on_error?: string };

/** A pipeline file as JSON, which is YAML too. */
export function pipeline(name: string, nodes: Record<string, NodeSpec>): string {
  return JSON.stringify({ streams: 1, name, nodes }, undefined, 1);
}

/** Starts a graph and waits until each of its `mqtt.subscribe` nodes has subscribed. */
export async function subscribed(name: string, nodes: Record<string, NodeSpec>, log: RecordingLogger = recordingLogger()) {
  const engine = startGraph(pipeline(name, nodes), log);
  const subscribers = Object.values(nodes).filter((n) => n.op === 'mqtt.subscribe').length;
  await until(() => log.entries.filter((e) => /subscribed to/.test(e.message)).length >= subscribers, () => `${subscribers} subscriptions; log:\n${log.entries.map((e) => `  [${e.level}] ${e.message}`).join('\n')}`);
  return { engine, log };
}

const root = resolve(import.meta.dirname, '..', '..');

/** Runs a pipeline file in a child process (the engine as a user runs it, but with the MQTT operators registered). */
function launch(file: string): { child: ChildProcess; output: () => string } {
  const child = spawn(join(root, 'node_modules', '.bin', 'node'), [join(root, 'test', 'connectors', 'mqtt-launcher.ts'), file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

function linesOf(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}

export function mqttCases(broker: BrokerUnderTest): void {
  describe(`MQTT operators against ${broker.name}`, () => {
    beforeAll(() => broker.setup());
    afterAll(() => broker.teardown());
    afterEach(async () => {
      await drainAll();
      await closeClients();
    });

    const versions = broker.mqtt5 ? ([4, 5] as const) : ([4] as const);
    for (const version of versions) {
      for (const qos of [0, 1, 2] as const) {
        it(`carries events from mqtt.publish to mqtt.subscribe at QoS ${qos} over MQTT ${version === 4 ? '3.1.1' : '5'}`, async () => {
          const prefix = uniquePrefix(`qos${qos}-v${version}`);
          const url = broker.url();
          await subscribed('receive', {
            sensors: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], qos, protocol_version: version, format: 'json', topic_field: 'topic' } },
            keep: { op: 'test.collect', in: 'sensors', with: { into: prefix } },
          });
          const sender = startGraph(pipeline('send', {
            readings: { op: 'generate', with: { count: 300, fields: { i: 'i', device: '"dev-" + string(i % 3)', value: 'random * 10.0' } } },
            send: { op: 'mqtt.publish', in: 'readings', with: { url, topic_expr: `"${prefix}/" + device`, qos, protocol_version: version } },
          }));
          await sender.done;
          await collectedAtLeast(prefix, 300);
          const got = records(prefix) as { i: number; device: string; topic: string }[];
          const counts = countsOf(got);
          expect(counts.size).toBe(300);
          expect([...counts.values()].every((n) => n === 1)).toBe(true);
          for (const record of got) expect(record.topic).toBe(`${prefix}/${record.device}`);
        });
      }
    }

    it('emits Bytes with the topic, QoS and retain flag in `meta` by default', async () => {
      const prefix = uniquePrefix('bytes');
      const url = broker.url();
      await subscribed('bytes', {
        raw: { op: 'mqtt.subscribe', with: { url, topics: `${prefix}/+`, qos: 1 } },
        keep: { op: 'test.collect', in: 'raw', with: { into: prefix } },
      });
      const client = await testClient(url);
      await client.publishAsync(`${prefix}/a`, Buffer.from([0, 1, 2, 255]), { qos: 0 });
      await client.publishAsync(`${prefix}/b`, 'text', { qos: 1 });
      await collectedAtLeast(prefix, 2);
      const [first, second] = records(prefix) as BytesItem[];
      expect(first.data).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(first.meta).toEqual({ topic: `${prefix}/a`, qos: 0, retain: false });
      expect(second.data!.toString()).toBe('text');
      expect(second.meta).toEqual({ topic: `${prefix}/b`, qos: 1, retain: false });
    });

    it('matches `+` and `#` wildcards as MQTT defines them', async () => {
      const prefix = uniquePrefix('wild');
      const url = broker.url();
      await subscribed('wild', {
        sensors: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/+/temperature`, `${prefix}/hall/#`], qos: 1 } },
        keep: { op: 'test.collect', in: 'sensors', with: { into: prefix } },
      });
      const client = await testClient(url);
      const topics = ['kitchen/temperature', 'kitchen/humidity', 'hall/temperature', 'hall/door/open', 'hall', 'kitchen/oven/temperature'];
      for (const topic of topics) await client.publishAsync(`${prefix}/${topic}`, topic, { qos: 1 });
      await client.publishAsync(`${prefix}/end/temperature`, 'end', { qos: 1 });
      await until(() => records(prefix).some((r) => (r as BytesItem).data!.toString() === 'end'), () => 'the last message');
      const seen = (records(prefix) as BytesItem[]).map((r) => (r.meta!.topic as string).slice(prefix.length + 1));
      // `hall/temperature` matches both filters: a broker may deliver it once or twice.
      expect(new Set(seen)).toEqual(new Set(['kitchen/temperature', 'hall/temperature', 'hall/door/open', 'hall', 'end/temperature']));
    });

    // Only brokers that have shared subscriptions get this case (aedes 1 has none; Mosquitto has).
    const itWithSharedSubscriptions = broker.sharedSubscriptions ? it : () => undefined;
    itWithSharedSubscriptions('splits a shared subscription (`group`) between two subscribers', async () => {
      const prefix = uniquePrefix('shared');
      const url = broker.url();
      await subscribed('shared', {
        left: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], group: 'workers', qos: 1, format: 'json' } },
        right: { op: 'mqtt.subscribe', with: { url, topics: [`$share/workers/${prefix}/#`], qos: 1, format: 'json' } },
        keep_left: { op: 'test.collect', in: 'left', with: { into: `${prefix}/left` } },
        keep_right: { op: 'test.collect', in: 'right', with: { into: `${prefix}/right` } },
      });
      const client = await testClient(url);
      await Promise.all(Array.from({ length: 200 }, (_, i) => client.publishAsync(`${prefix}/job`, JSON.stringify({ i }), { qos: 1 })));
      await until(() => records(`${prefix}/left`).length + records(`${prefix}/right`).length >= 200, () => 'all 200 jobs');
      const left = countsOf(records(`${prefix}/left`));
      const right = countsOf(records(`${prefix}/right`));
      expect(left.size).toBeGreaterThan(0);
      expect(right.size).toBeGreaterThan(0);
      expect(left.size + right.size).toBe(200);
      for (const i of left.keys()) expect(right.has(i)).toBe(false);
    });

    it('gives a retained message published by mqtt.publish to a subscriber that comes later, flagged `retain`', async () => {
      const prefix = uniquePrefix('retained');
      const url = broker.url();
      const sender = startGraph(pipeline('retain', {
        status: { op: 'generate', with: { count: 1, fields: { state: '"online"' } } },
        send: { op: 'mqtt.publish', in: 'status', with: { url, topic: `${prefix}/status`, qos: 1, retain: true } },
      }));
      await sender.done;
      await subscribed('late', {
        status: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], qos: 1 } },
        keep: { op: 'test.collect', in: 'status', with: { into: prefix } },
      });
      await collectedAtLeast(prefix, 1);
      const [message] = records(prefix) as BytesItem[];
      expect(JSON.parse(message.data!.toString())).toEqual({ state: 'online' });
      expect(message.meta).toMatchObject({ topic: `${prefix}/status`, retain: true });
      // Clear the retained message.
      await (await testClient(url)).publishAsync(`${prefix}/status`, '', { qos: 1, retain: true });
    });

    it('sends a payload that is not a JSON object to the dead-letter port, and goes on', async () => {
      const prefix = uniquePrefix('dlq');
      const url = broker.url();
      await subscribed('dlq', {
        readings: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], qos: 1, format: 'json' } },
        good: { op: 'test.collect', in: 'readings', with: { into: `${prefix}/good` } },
        bad: { op: 'test.collect', in: 'readings.dlq', with: { into: `${prefix}/bad` } },
      });
      const client = await testClient(url);
      for (const payload of ['{"value": 1}', 'not json', '[1, 2]', '{"value": 2}', '']) await client.publishAsync(`${prefix}/x`, payload, { qos: 1 });
      await collectedAtLeast(`${prefix}/good`, 2);
      await collectedAtLeast(`${prefix}/bad`, 3);
      expect(records(`${prefix}/good`)).toEqual([{ value: 1 }, { value: 2 }]);
      const bad = records(`${prefix}/bad`) as { error: string; node: string; record: { topic: string; payload: string } }[];
      expect(bad.map((b) => b.record.payload)).toEqual(['not json', '[1, 2]', '']);
      expect(bad.every((b) => b.node === 'readings' && b.record.topic === `${prefix}/x`)).toBe(true);
      expect(bad[1].error).toBe('expected a JSON object, got an array');
      expect(bad[0].error).toMatch(/JSON/);
    });

    it('holds back reading while a slow sink is busy, and loses nothing at QoS 1', async () => {
      const prefix = uniquePrefix('slow');
      const url = broker.url();
      const { engine } = await subscribed('slow', {
        readings: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], qos: 1, format: 'json' } },
        slow: { op: 'test.collect', in: 'readings', capacity: 20, with: { into: prefix, delay_ms: 3 } },
      });
      const client = await testClient(url);
      const count = 600;
      const publishing = Promise.all(Array.from({ length: count }, (_, i) => client.publishAsync(`${prefix}/r`, JSON.stringify({ i }), { qos: 1 })));
      const stats = engine.runners.get('readings')!.stats;
      let mostWaiting = 0;
      while (records(prefix).length < count) {
        mostWaiting = Math.max(mostWaiting, stats.recordsOut - records(prefix).length);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await publishing;
      expect(countsOf(records(prefix)).size).toBe(count);
      // What the node has emitted but the sink has not taken: the channel's capacity plus what one socket read brings.
      expect(mostWaiting).toBeLessThan(20 + 1024);
    });

    it('acknowledges QoS 1 messages only once the graph has: a persistent session gets back what the graph never finished', async () => {
      const prefix = uniquePrefix('redeliver');
      const url = broker.url();
      const clientId = `streams-test-${Math.random().toString(36).slice(2, 10)}`;
      const subscriber = { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], qos: 1, format: 'json', clean: false, client_id: clientId } };
      const first = await subscribed('first', { readings: subscriber, stuck: { op: 'test.collect', in: 'readings', with: { into: `${prefix}/first`, hold: true } } });
      const client = await testClient(url);
      for (let i = 0; i < 20; i++) await client.publishAsync(`${prefix}/r`, JSON.stringify({ i }), { qos: 1 });
      await collectedAtLeast(`${prefix}/first`, 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The sink never acknowledges: the drain runs out of time and the node is forced off.
      await first.engine.drain({ deadlineMs: 300 });
      const second = await subscribed('second', { readings: subscriber, keep: { op: 'test.collect', in: 'readings', with: { into: `${prefix}/second` } } });
      await collectedAtLeast(`${prefix}/second`, 20);
      expect(countsOf(records(`${prefix}/second`)).size).toBe(20);
      // This time the graph acknowledged everything: a third run gets nothing back.
      await second.engine.drain();
      await subscribed('third', { readings: subscriber, keep: { op: 'test.collect', in: 'readings', with: { into: `${prefix}/third` } } });
      await client.publishAsync(`${prefix}/r`, JSON.stringify({ i: 'last' }), { qos: 1 });
      await collectedAtLeast(`${prefix}/third`, 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(records(`${prefix}/third`)).toEqual([{ i: 'last' }]);
      releaseHeld(`${prefix}/first`);
    });

    it('delivers every message at least once when the engine is killed (SIGKILL) mid-stream and started again', async () => {
      const prefix = uniquePrefix('sigkill');
      const url = broker.url();
      const dir = mkdtempSync(join(tmpdir(), 'streams-mqtt-kill-'));
      const out = join(dir, 'out.ndjson');
      const file = join(dir, 'kill.yaml');
      writeFileSync(file, pipeline('kill', {
        readings: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], qos: 1, format: 'json', clean: false, client_id: `streams-kill-${process.pid}`, protocol_version: 4 } },
        store: { op: 'file.write', in: 'readings', with: { path: out } },
      }));
      let run = launch(file);
      try {
        await until(() => /subscribed to/.test(run.output()), () => `the child to subscribe; output:\n${run.output()}`, 30_000);
        const client = await testClient(url);
        const total = 600;
        let sent = 0;
        const publishing = (async () => {
          // 600 messages over about 2 s; fewer than the broker queues per offline client (Mosquitto: 1000).
          for (; sent < total; sent++) {
            await client.publishAsync(`${prefix}/r`, JSON.stringify({ i: sent }), { qos: 1 });
            if (sent % 30 === 29) await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })();
        await until(() => linesOf(out).length >= 150, () => `150 lines written before the kill (have ${linesOf(out).length})`, 30_000);
        run.child.kill('SIGKILL');
        await new Promise((resolve) => run.child.once('exit', resolve));
        const beforeKill = linesOf(out).length;
        await new Promise((resolve) => setTimeout(resolve, 300));
        run = launch(file);
        await publishing;
        await until(() => countsOf(linesOf(out).map((line) => JSON.parse(line))).size >= total, () => `all ${total} messages (have ${countsOf(linesOf(out).map((line) => JSON.parse(line))).size}); child output:\n${run.output()}`, 60_000);
        const counts = countsOf(linesOf(out).map((line) => JSON.parse(line)));
        const duplicates = [...counts.values()].reduce((sum, n) => sum + n - 1, 0);
        console.log(`[${broker.name}] SIGKILL after ${beforeKill} lines: ${total} published, ${counts.size} distinct received, ${duplicates} duplicates`);
        expect(counts.size).toBe(total);
        for (let i = 0; i < total; i++) expect(counts.has(i)).toBe(true);
      } finally {
        run.child.kill('SIGTERM');
        await new Promise((resolve) => (run.child.exitCode === null ? run.child.once('exit', resolve) : resolve(undefined)));
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
