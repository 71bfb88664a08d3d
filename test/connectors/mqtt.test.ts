/**
 * MQTT without an external server: the shared cases (`mqtt-cases.ts`)
 * against the embedded broker (`mqtt.broker`, run by the engine), then what
 * only an embedded broker lets a test do: a wrong password, a broker that
 * is not there at start, TLS, and the broker's own output.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { Engine } from '../../runtime/engine.ts';
import { openBroker } from '../../native/mqtt/broker.ts';
import { readTlsFile } from '../../native/tls-file.ts';
import { mqttCases, pipeline, subscribed, type BrokerUnderTest } from './mqtt-cases.ts';
import { closeClients, collectedAtLeast, drainAll, freePort, logged, mqttRegistry, recordingLogger, records, startGraph, testClient, uniquePrefix, until } from './mqtt-harness.ts';

/** Starts an `mqtt.broker` node on a free port and waits until it listens. */
async function embeddedBroker(withSettings: Record<string, unknown> = {}, nodes: Parameters<typeof pipeline>[1] = {}) {
  const port = await freePort();
  const log = recordingLogger();
  const engine = startGraph(pipeline('broker', { broker: { op: 'mqtt.broker', with: { listen: `127.0.0.1:${port}`, ...withSettings } }, ...nodes }), log);
  await logged(log, /MQTT broker listening/);
  return { engine, port, log };
}

let shared: { engine: Engine; port: number } | undefined;

const aedes: BrokerUnderTest = {
  name: 'the embedded broker (mqtt.broker)',
  url: () => `mqtt://127.0.0.1:${shared!.port}`,
  async setup() {
    const port = await freePort();
    const log = recordingLogger();
    // Its own engine, which the cases' `drainAll` after each test leaves alone: it is not in the harness's list.
    const checked = checkPipeline({ file: 'broker.yaml', text: pipeline('broker', { broker: { op: 'mqtt.broker', with: { listen: `127.0.0.1:${port}` } } }), registry: mqttRegistry });
    const engine = new Engine(checked.graph!, { registry: mqttRegistry, log });
    engine.start();
    await logged(log, /MQTT broker listening/);
    shared = { engine, port };
  },
  async teardown() {
    await shared?.engine.drain({ deadlineMs: 5_000 });
  },
  mqtt5: false,
  sharedSubscriptions: false,
};

mqttCases(aedes);

describe('mqtt.broker, mqtt.subscribe and mqtt.publish on their own', () => {
  afterEach(async () => {
    await drainAll();
    await closeClients();
  });

  it('emits what clients publish to the embedded broker, decoded, with the topic', async () => {
    const { port } = await embeddedBroker(
      { topics: ['sensors/#'], format: 'json', topic_field: 'topic' },
      { keep: { op: 'test.collect', in: 'broker', with: { into: 'broker-out' } }, bad: { op: 'test.collect', in: 'broker.dlq', with: { into: 'broker-bad' } } },
    );
    const client = await testClient(`mqtt://127.0.0.1:${port}`);
    await client.publishAsync('sensors/a', '{"value": 1}', { qos: 1 });
    await client.publishAsync('other/a', '{"value": 2}', { qos: 0 });
    await client.publishAsync('sensors/b', 'oops', { qos: 0 });
    await client.publishAsync('sensors/c', '{"value": 3}', { qos: 2, retain: true });
    await collectedAtLeast('broker-out', 2);
    await collectedAtLeast('broker-bad', 1);
    expect(records('broker-out')).toEqual([{ value: 1, topic: 'sensors/a' }, { value: 3, topic: 'sensors/c' }]);
    expect(records('broker-bad')).toMatchObject([{ node: 'broker', record: { topic: 'sensors/b', payload: 'oops' } }]);
  });

  it('refuses a client with a wrong password; mqtt.subscribe says so with its node and URL, retries, and connects once the password is right', async () => {
    const { port } = await embeddedBroker({ username: 'device', password: 's3cret' });
    const log = recordingLogger();
    const url = `mqtt://device:wrong-password@127.0.0.1:${port}`;
    startGraph(pipeline('wrong', {
      sensors: { op: 'mqtt.subscribe', with: { url, topics: ['x/#'] } },
      keep: { op: 'test.collect', in: 'sensors', with: { into: 'wrong' } },
    }), log);
    await until(() => log.entries.filter((e) => /cannot connect/.test(e.message)).length >= 2, () => 'two failed attempts');
    const [first, second] = log.entries.filter((e) => /cannot connect/.test(e.message));
    expect(first.level).toBe('error');
    expect(first.message).toMatch(/^node `sensors` \(test\.yaml:\d+\): cannot connect to mqtt:\/\/device:\*\*\*@127\.0\.0\.1:\d+: the broker refused the connection: bad user name or password; retrying in \d+ ms$/);
    expect(second.level).toBe('warn');
    expect(JSON.stringify(log.entries)).not.toContain('wrong-password');
    // The right password, given as a setting (from the environment, as a pipeline would).
    process.env.STREAMS_TEST_MQTT_PASSWORD = 's3cret';
    const prefix = uniquePrefix('auth');
    await subscribed('right', {
      sensors: { op: 'mqtt.subscribe', with: { url: `mqtt://127.0.0.1:${port}`, username: 'device', password: '${env:STREAMS_TEST_MQTT_PASSWORD}', topics: [`${prefix}/#`] } },
      keep: { op: 'test.collect', in: 'sensors', with: { into: prefix } },
    });
  });

  it('connects a subscriber and a publisher to the embedded broker of the same pipeline without a failed attempt', async () => {
    const port = await freePort();
    const log = recordingLogger();
    const prefix = uniquePrefix('same-graph');
    // The broker first, as a user writes it; the engine starts consumers first, so the clients start before it listens.
    await subscribed('same-graph', {
      broker: { op: 'mqtt.broker', with: { listen: `127.0.0.1:${port}`, topics: [`${prefix}/#`], format: 'json' } },
      published: { op: 'test.collect', in: 'broker', with: { into: `${prefix}-published` } },
      readings: { op: 'generate', with: { count: 3 } },
      send: { op: 'mqtt.publish', in: 'readings', with: { url: `mqtt://localhost:${port}`, topic: `${prefix}/r`, qos: 1 } },
      sensors: { op: 'mqtt.subscribe', with: { url: `mqtt://127.0.0.1:${port}`, topics: [`${prefix}/#`], qos: 1, format: 'json' } },
      received: { op: 'test.collect', in: 'sensors', with: { into: `${prefix}-received` } },
    }, log);
    await collectedAtLeast(`${prefix}-published`, 3);
    const client = await testClient(`mqtt://127.0.0.1:${port}`);
    await client.publishAsync(`${prefix}/late`, '{"late": true}', { qos: 1 });
    await collectedAtLeast(`${prefix}-received`, 1);
    expect(log.entries.filter((e) => e.level === 'error' || /cannot connect/.test(e.message)).map((e) => e.message)).toEqual([]);
  });

  it('keeps trying a broker that is not there at start, with a clear error, and receives once it appears', async () => {
    const port = await freePort();
    const log = recordingLogger();
    const prefix = uniquePrefix('late-broker');
    const engine = startGraph(pipeline('early', {
      sensors: { op: 'mqtt.subscribe', with: { url: `mqtt://user:hunter2@127.0.0.1:${port}`, topics: [`${prefix}/#`], qos: 1, format: 'json' } },
      keep: { op: 'test.collect', in: 'sensors', with: { into: prefix } },
    }), log);
    await until(() => log.entries.filter((e) => /cannot connect/.test(e.message)).length >= 3, () => 'three failed attempts');
    const failures = log.entries.filter((e) => /cannot connect/.test(e.message));
    const waits = failures.map((e) => e.fields.retryInMs as number);
    expect(failures[0].message).toBe(`node \`sensors\` (test.yaml:${failures[0].message.match(/yaml:(\d+)/)![1]}): cannot connect to mqtt://user:***@127.0.0.1:${port}: connection refused (is the broker running?); retrying in ${waits[0]} ms`);
    // The engine's backoff: about 100 ms first (jittered between half and all), then doubling.
    expect(waits[0]).toBeGreaterThanOrEqual(50);
    expect(waits[0]).toBeLessThanOrEqual(100);
    expect(waits[1]).toBeGreaterThanOrEqual(100);
    expect(waits[2]).toBeGreaterThanOrEqual(200);
    expect(JSON.stringify(log.entries)).not.toContain('hunter2');
    expect(engine.runners.get('sensors')!.stats.state).toBe('running');
    // The broker appears; the node connects and subscribes by itself.
    const brokerLog = recordingLogger();
    startGraph(pipeline('appears', { broker: { op: 'mqtt.broker', with: { listen: `127.0.0.1:${port}` } } }), brokerLog);
    await logged(brokerLog, /MQTT broker listening/);
    await logged(log, /subscribed to/, 20_000);
    const client = await testClient(`mqtt://127.0.0.1:${port}`);
    await client.publishAsync(`${prefix}/r`, '{"ok": true}', { qos: 1 });
    await collectedAtLeast(prefix, 1);
    expect(records(prefix)).toEqual([{ ok: true }]);
  });

  it('holds what mqtt.publish must send while the broker is away, and sends it all once it appears', async () => {
    const port = await freePort();
    const log = recordingLogger();
    const sender = startGraph(pipeline('publish-early', {
      readings: { op: 'generate', with: { count: 50 } },
      send: { op: 'mqtt.publish', in: 'readings', with: { url: `mqtt://127.0.0.1:${port}`, topic: 'early/readings', qos: 1 } },
    }), log);
    await logged(log, /cannot connect to mqtt:\/\/127\.0\.0\.1:\d+: connection refused/);
    // Nothing is acknowledged upstream while nothing reached a broker.
    expect(sender.runners.get('send')!.stats.state).toBe('running');
    await embeddedBroker({ listen: `127.0.0.1:${port}`, format: 'json' }, { keep: { op: 'test.collect', in: 'broker', with: { into: 'early' } } });
    await sender.done;
    await collectedAtLeast('early', 50);
    expect(records('early')).toEqual(Array.from({ length: 50 }, (_, i) => ({ i })));
  });

  it('speaks TLS: mqtts:// to a broker with a certificate, trusting it through `ca`', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streams-mqtt-tls-'));
    try {
      const key = join(dir, 'broker.key');
      const cert = join(dir, 'broker.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
      const { port } = await embeddedBroker({ cert, key });
      const prefix = uniquePrefix('tls');
      const url = `mqtts://127.0.0.1:${port}`;
      await subscribed('tls', {
        sensors: { op: 'mqtt.subscribe', with: { url, ca: cert, topics: [`${prefix}/#`], format: 'json' } },
        keep: { op: 'test.collect', in: 'sensors', with: { into: prefix } },
      });
      const sender = startGraph(pipeline('tls-send', {
        readings: { op: 'generate', with: { count: 5 } },
        send: { op: 'mqtt.publish', in: 'readings', with: { url, ca: cert, topic: `${prefix}/r` } },
      }));
      await sender.done;
      await collectedAtLeast(prefix, 5);
      expect(records(prefix)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
      // Without `ca` the self-signed certificate is not trusted.
      const log = recordingLogger();
      startGraph(pipeline('untrusted', {
        sensors: { op: 'mqtt.subscribe', with: { url, topics: ['x'] } },
        keep: { op: 'test.collect', in: 'sensors', with: { into: 'untrusted' } },
      }), log);
      await logged(log, /cannot connect to mqtts:.*self-signed certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the setting whose TLS file cannot be read, for the broker as for clients (one reader in native/)', async () => {
    const owner = { node: 'b', label: 'node `b` (test.yaml:3)', log: recordingLogger() };
    const missing = join(tmpdir(), 'streams-no-such-key.pem');
    const refused = openBroker(owner, { listen: { host: '127.0.0.1', port: 0 }, cert: 'package.json', key: missing });
    await expect(refused).rejects.toMatchObject({ code: 'tls_file', message: `node \`b\` (test.yaml:3): cannot read \`key\` file \`${missing}\`: ENOENT: no such file or directory, open '${missing}'` });
    await expect(readTlsFile(owner, 'ca', missing)).rejects.toThrow(`node \`b\` (test.yaml:3): cannot read \`ca\` file \`${missing}\``);
    await expect(readTlsFile(owner, 'ca', undefined)).resolves.toBeUndefined();
  });

  it('fails mqtt.subscribe with a clear error when the broker refuses its subscription, and restarts it with backoff', async () => {
    const broker = await Aedes.createBroker({
      authorizeSubscribe(_client, subscription, callback) {
        // A null subscription makes aedes answer the SUBSCRIBE with failure code 128.
        callback(null, subscription.topic.startsWith('forbidden/') ? null : subscription);
      },
    });
    const server = createServer(broker.handle);
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    try {
      const log = recordingLogger();
      const engine = startGraph(pipeline('refused', {
        sensors: { op: 'mqtt.subscribe', with: { url: `mqtt://127.0.0.1:${port}`, topics: ['forbidden/#'] } },
        keep: { op: 'test.collect', in: 'sensors', with: { into: 'refused' } },
      }), log);
      await until(() => engine.runners.get('sensors')!.stats.restarts >= 1, () => 'a restart');
      const failure = log.entries.find((e) => /failed; restarting/.test(e.message))!;
      expect(failure.fields.error).toMatch(/^node `sensors` \(test\.yaml:\d+\): mqtt:\/\/127\.0\.0\.1:\d+ refused the subscription to `forbidden\/#`/);
      await engine.drain({ deadlineMs: 2_000 });
    } finally {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      server.close();
    }
  });

  it('fails the broker node with a clear error when its port is taken, and keeps the graph running', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    try {
      const log = recordingLogger();
      const engine = startGraph(pipeline('taken', { broker: { op: 'mqtt.broker', with: { listen: `127.0.0.1:${port}` } } }), log);
      await logged(log, /failed; restarting/);
      const failure = log.entries.find((e) => /failed; restarting/.test(e.message))!;
      expect(failure.fields.error).toMatch(/^node `broker` \(test\.yaml:\d+\): cannot listen on 127\.0\.0\.1:\d+: the address is already in use/);
      expect(engine.runners.get('broker')!.stats.state).toBe('backoff');
    } finally {
      blocker.close();
    }
  });

  it('rejects settings that cannot work when the graph is checked', async () => {
    const check = (nodes: Parameters<typeof pipeline>[1]) =>
      checkPipeline({ file: 'bad.yaml', text: pipeline('bad', nodes), registry: mqttRegistry }).diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);
    expect(check({ s: { op: 'mqtt.subscribe', with: { url: 'http://x', topics: ['a/#/b'] } }, k: { op: 'test.collect', in: 's', with: { into: 'x' } } })).toEqual([
      expect.stringMatching(/broker URL/),
      expect.stringMatching(/`#` must be a whole level and the last one/),
    ]);
    expect(check({ s: { op: 'mqtt.subscribe', with: { url: 'mqtt://x', topics: ['a/#'], clean: false } }, k: { op: 'test.collect', in: 's', with: { into: 'x' } } })).toEqual([
      expect.stringMatching(/`clean: false` .* set `client_id`/),
    ]);
    expect(check({ g: { op: 'generate' }, p: { op: 'mqtt.publish', in: 'g', with: { url: 'mqtt://x', topic: 'a/+' } } })).toEqual([expect.stringMatching(/wildcard/)]);
    expect(check({ g: { op: 'generate' }, p: { op: 'mqtt.publish', in: 'g', with: { url: 'mqtt://x' } } })).toEqual([expect.stringMatching(/exactly one of `topic`/)]);
  });

  it('sends a record whose computed topic is not valid to the dead-letter port', async () => {
    const { port } = await embeddedBroker();
    const url = `mqtt://127.0.0.1:${port}`;
    const prefix = uniquePrefix('badtopic');
    await subscribed('bad-topic-receive', {
      sensors: { op: 'mqtt.subscribe', with: { url, topics: [`${prefix}/#`], format: 'json' } },
      keep: { op: 'test.collect', in: 'sensors', with: { into: prefix } },
    });
    const sender = startGraph(pipeline('bad-topic', {
      readings: { op: 'generate', with: { count: 3, fields: { i: 'i', room: 'i == 1 ? "a/#" : "r" + string(i)' } } },
      send: { op: 'mqtt.publish', in: 'readings', with: { url, topic_expr: `"${prefix}/" + room` } },
      bad: { op: 'test.collect', in: 'send.dlq', with: { into: `${prefix}/bad` } },
    }));
    await sender.done;
    await collectedAtLeast(prefix, 2);
    expect((records(prefix) as { i: number }[]).map((r) => r.i)).toEqual([0, 2]);
    expect(records(`${prefix}/bad`)).toMatchObject([{ node: 'send', record: { i: 1 }, error: expect.stringMatching(/wildcard/) }]);
  });
});

afterAll(async () => {
  await drainAll();
});
