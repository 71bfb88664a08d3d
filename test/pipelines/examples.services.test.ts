import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { admin, produce, readTopic } from '../connectors/kafka-harness.ts';
import { freePort } from '../helpers/net.ts';

/** The example pipelines that need real servers, run as a user would: `streams run FILE`. */

function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run \`npm run services:start\` first`);
  return value;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const children: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  /** Resolves once the run has logged a line matching `pattern`. */
  logged(pattern: RegExp): Promise<void>;
}

function streamsRun(file: string, params: Record<string, string>, env: Record<string, string> = {}): Running {
  const args = ['bin/streams.ts', 'run', file, ...Object.entries(params).flatMap(([k, v]) => ['--param', `${k}=${v}`])];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
    for (const line of chunk.toString().split('\n')) if (/"level":(40|50|60)/.test(line)) process.stderr.write(`${line}\n`);
  });
  return { child, logged: async (pattern) => void (await until(`a log line matching ${pattern}`, async () => (pattern.test(log) ? true : undefined))) };
}

async function stop({ child }: Running): Promise<number | null> {
  child.kill('SIGTERM');
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', resolve)));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}


afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

describe('example pipelines against real servers', () => {
  it('webhooks-to-redis.yaml: every answered webhook is an entry of the stream', async () => {
    const redis = new Redis(need('STREAMS_REDIS_URL'));
    const stream = `webhooks-example-${Date.now()}`;
    const port = await freePort();
    // The pipeline writes to the stream `webhooks`; point the example at a fresh one.
    await redis.del('webhooks');
    const child = streamsRun('pipelines/webhooks-to-redis.yaml', { listen: `127.0.0.1:${port}`, redis: need('STREAMS_REDIS_URL') }, { WEBHOOK_TOKEN: 'example-secret' });
    await until('the webhook server', () => fetch(`http://127.0.0.1:${port}/hooks`, { method: 'POST' }).then((r) => r.status));
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/hooks`, { method: 'POST', headers: { authorization: 'Bearer example-secret', 'content-type': 'application/json' }, body: JSON.stringify({ event: 'push', i }) });
      statuses.push(response.status);
    }
    const refused = await fetch(`http://127.0.0.1:${port}/hooks`, { method: 'POST', body: '{}' });
    expect(refused.status).toBe(401);
    expect(new Set(statuses)).toEqual(new Set([200]));
    const entries = (await redis.xrange('webhooks', '-', '+')) as [string, string[]][];
    const payloads = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('payload') + 1]) as { i: number });
    expect(payloads.map((p) => p.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(await stop(child)).toBe(0);
    await redis.del('webhooks', stream);
    redis.disconnect();
  });

  it('iot-mqtt-postgres.yaml: MQTT readings become per-second rollups in PostgreSQL and on the live feed', async () => {
    const db = new pg.Client({ connectionString: need('STREAMS_PG_URL') });
    await db.connect();
    await db.query('drop table if exists sensor_rollups');
    const live = await freePort();
    const child = streamsRun('pipelines/iot-mqtt-postgres.yaml', { mqtt: need('STREAMS_MQTT_URL'), live: `127.0.0.1:${live}` }, { PG_PASSWORD: 'streams' });
    await child.logged(/subscribed to sensors/);
    const feed: unknown[] = [];
    const socket = await until('the live feed', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${live}/live`);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      return ws;
    });
    socket.onmessage = (event) => feed.push(JSON.parse(String(event.data)));
    const client = await mqtt.connectAsync(need('STREAMS_MQTT_URL'));
    const start = Date.UTC(2026, 0, 1);
    // Three seconds of readings from two devices, then one far later that closes them (lateness 2s).
    for (let i = 0; i < 60; i++) {
      const device = `dev-${i % 2}`;
      await client.publishAsync(`sensors/${device}`, JSON.stringify({ device, value: i, ts: start + i * 50 }), { qos: 1 });
    }
    await client.publishAsync('sensors/dev-0', JSON.stringify({ device: 'dev-0', value: 0, ts: start + 10_000 }), { qos: 1 });
    const rows = await until('the rollups', async () => {
      const result = await db.query('select device, extract(epoch from window_start) * 1000 as start, readings, min_value, max_value from sensor_rollups order by window_start, device');
      return result.rows.length >= 6 ? result.rows : undefined;
    });
    expect(rows.map((r) => [r.device, Number(r.start) - start, Number(r.readings)])).toEqual([
      ['dev-0', 0, 10], ['dev-1', 0, 10],
      ['dev-0', 1000, 10], ['dev-1', 1000, 10],
      ['dev-0', 2000, 10], ['dev-1', 2000, 10],
    ]);
    expect(rows[0].min_value).toBe(0);
    expect(rows[0].max_value).toBe(18);
    expect(feed.length).toBeGreaterThanOrEqual(6);
    socket.close();
    await client.endAsync();
    expect(await stop(child)).toBe(0);
    await db.end();
  });

  it('kafka-enrich.yaml: readings come out enriched from PostgreSQL, keyed by device; bad ones reach the dead-letter topic', async () => {
    const db = new pg.Client({ connectionString: need('STREAMS_PG_URL') });
    await db.connect();
    await db.query('create table if not exists devices (id text primary key, name text, site text)');
    await db.query("insert into devices values ('dev-1', 'boiler', 'north'), ('dev-2', 'chiller', 'south') on conflict (id) do nothing");
    const run = Date.now();
    const topics = { input: `readings-${run}`, output: `enriched-${run}`, dead_letters: `dlq-${run}` };
    const kafka = admin();
    for (const topic of Object.values(topics)) await kafka.createTopic(topic, 2);
    await kafka.close();
    const readings = Array.from({ length: 100 }, (_, i) => ({ value: Buffer.from(JSON.stringify({ device: `dev-${(i % 2) + 1}`, value: i })) }));
    await produce(topics.input, [...readings, { value: Buffer.from('not json') }]);
    const child = streamsRun('pipelines/kafka-enrich.yaml', { brokers: need('STREAMS_KAFKA_BROKERS'), pg: need('STREAMS_PG_URL'), ...topics }, { PG_PASSWORD: 'streams' });
    const out = await readTopic(topics.output, 100, { timeoutMs: 90_000 });
    const dead = await readTopic(topics.dead_letters, 1, { timeoutMs: 30_000 });
    expect(await stop(child)).toBe(0);
    const got = out.map((m) => ({ key: m.key?.toString(), ...(JSON.parse(m.value!.toString()) as { device: string; value: number; site: string; device_name: string; fahrenheit: number }) }));
    expect(got).toHaveLength(100);
    for (const r of got) {
      expect(r.key).toBe(r.device);
      expect(r.site).toBe(r.device === 'dev-1' ? 'north' : 'south');
      expect(r.device_name).toBe(r.device === 'dev-1' ? 'boiler' : 'chiller');
      expect(r.fahrenheit).toBeCloseTo((r.value * 9) / 5 + 32, 9);
    }
    expect(new Set(got.map((r) => r.value)).size).toBe(100);
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0].value!.toString()).error).toMatch(/json/i);
    await db.end();
  }, 180_000);
});
