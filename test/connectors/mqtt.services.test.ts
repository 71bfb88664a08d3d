/**
 * MQTT against Mosquitto (`npm run services:start`): the shared cases
 * (`mqtt-cases.ts`), MQTT 5 and shared subscriptions included, then
 * Mosquitto restarted in the middle of a QoS 1 stream.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttCases, subscribed } from './mqtt-cases.ts';
import { closeClients, countsOf, drainAll, logged, recordingLogger, records, testClient, uniquePrefix, until } from './mqtt-harness.ts';

const url = process.env.STREAMS_MQTT_URL;
const services = join(import.meta.dirname, '..', 'services');
const run = promisify(execFile);

function requireUrl(): string {
  if (!url) throw new Error('STREAMS_MQTT_URL is not set: run `npm run services:start` (or `bash test/services/start.sh mosquitto`) and load its settings (`set -a; . /tmp/ami-streams-services/env.sh; set +a`)');
  return url;
}

mqttCases({
  name: 'Mosquitto',
  url: requireUrl,
  async setup() {
    requireUrl();
  },
  async teardown() {},
  mqtt5: true,
  sharedSubscriptions: true,
});

/** `a-b, c` for the acknowledged messages not received. */
function missingRanges(acknowledged: Set<number>, received: Map<number, number>): string {
  const missing = [...acknowledged].filter((i) => !received.has(i)).sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let k = 0; k < missing.length; k++) {
    const start = missing[k];
    while (k + 1 < missing.length && missing[k + 1] === missing[k] + 1) k++;
    ranges.push(start === missing[k] ? `${start}` : `${start}-${missing[k]}`);
  }
  return ranges.join(', ') || 'none';
}

describe('mqtt.subscribe while Mosquitto restarts', () => {
  afterEach(async () => {
    await drainAll();
    await closeClients();
  });

  it('misses nothing at QoS 1 with a persistent session when Mosquitto restarts mid-stream (duplicates counted)', async () => {
    const broker = requireUrl();
    const prefix = uniquePrefix('restart');
    const log = recordingLogger();
    await subscribed('restart', {
      readings: { op: 'mqtt.subscribe', with: { url: broker, topics: [`${prefix}/#`], qos: 1, format: 'json', clean: false, client_id: `streams-restart-${process.pid}`, protocol_version: 5, reconnect_max: '1s' } },
      keep: { op: 'test.collect', in: 'readings', with: { into: prefix, delay_ms: 1 } },
    }, log);
    // The publisher sends at QoS 1 and counts what Mosquitto acknowledged: that is what went in.
    const client = await testClient(broker, { clientId: `streams-restart-pub-${process.pid}`, reconnectPeriod: 0 });
    const acknowledged = new Set<number>();
    let restarted = false;
    // Publishes in order until the connection closes; a message counts once Mosquitto has acknowledged it.
    const publishSome = async (from: number, to: number, current = client) => {
      const closed = new Promise<'closed'>((resolve) => current.once('close', () => resolve('closed')));
      for (let i = from; i < to; i++) {
        const outcome = await Promise.race([current.publishAsync(`${prefix}/r`, JSON.stringify({ i }), { qos: 1 }), closed]);
        if (outcome === 'closed') return;
        acknowledged.add(i);
        if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await publishSome(0, 500);
    await until(() => records(prefix).length >= 400, () => '400 records before the restart');
    // Mid-stream: the publisher keeps sending until Mosquitto stops, however long `stop.sh` waits for its lock.
    const tail = publishSome(500, Infinity);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await run('bash', [join(services, 'stop.sh'), 'mosquitto']);
    await tail;
    await run('bash', [join(services, 'start.sh'), 'mosquitto']);
    restarted = true;
    // Mosquitto keeps sessions across its restart: the node's session, with the messages queued for it, is
    // there when the node connects again.
    await logged(log, /lost the connection/);
    await until(() => log.entries.filter((e) => /connected to/.test(e.message)).length >= 2, () => 'the connection made again after the restart', 30_000);
    const after = await testClient(broker, { clientId: `streams-restart-pub2-${process.pid}` });
    const resumeFrom = Math.max(...acknowledged) + 1;
    await publishSome(resumeFrom, resumeFrom + 500, after);
    const allReceived = (): boolean => {
      const received = countsOf(records(prefix));
      return [...acknowledged].every((i) => received.has(i));
    };
    await until(allReceived, () => `every acknowledged message (${acknowledged.size}); received ${countsOf(records(prefix)).size} distinct; resumed at ${resumeFrom}; missing ${missingRanges(acknowledged, countsOf(records(prefix)))}`, 30_000);
    const counts = countsOf(records(prefix));
    const duplicates = [...counts.values()].reduce((sum, n) => sum + n - 1, 0);
    const unacknowledged = [...counts.keys()].filter((i) => !acknowledged.has(i)).length;
    console.log(`[Mosquitto restart] ${acknowledged.size} messages acknowledged to the publisher; received ${counts.size} distinct (${unacknowledged} of them never acknowledged to the publisher), ${duplicates} duplicates`);
    expect(restarted).toBe(true);
    for (const i of acknowledged) expect(counts.has(i)).toBe(true);
  });
});
