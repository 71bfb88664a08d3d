/**
 * `streams worker` and `streams deploy` over the real Redis (control plane)
 * and Kafka (edges between hosts), with each worker a separate process on
 * loopback: a deploy every worker applies, a changed version that restarts
 * only the changed node, every input counted in the output, duplicates
 * reported; bad deployments. The faults (a SIGKILLed worker, a cut link, a
 * Kafka restart) run on network namespaces: netns.services.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAdmin } from '../../native/kafka/client.ts';
import { uniqueName as nameFor, counts, deploy as deployWith, duplicates, hasAll, killAll, reported as reportedWith, startWorker as startWith, until, type Worker } from './worker-harness.ts';

const redisUrl = process.env.STREAMS_REDIS_URL ?? '';
const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
let redis: Redis;
let dir: string;
const workers: Worker[] = [];
const names: string[] = [];

beforeAll(async () => {
  if (!redisUrl || !brokers) throw new Error('STREAMS_REDIS_URL / STREAMS_KAFKA_BROKERS are not set: run `npm run services:start`');
  redis = new Redis(redisUrl);
  await redis.ping();
  dir = mkdtempSync(join(tmpdir(), 'streams-workers-'));
});

afterEach(() => killAll(workers));

afterAll(async () => {
  const admin = openAdmin(brokers.split(','));
  for (const name of names) {
    const keys = await redis.keys(`streams:deploy:${name}*`);
    if (keys.length > 0) await redis.del(...keys);
    const topics = [`streams.${name}.gen.out.double.in`, `streams.${name}.double.out.out.in`, `streams.${name}.gen.out.out.in`];
    await admin.deleteTopics(topics).catch(() => undefined);
  }
  await admin.close();
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

function uniqueName(): string {
  const name = nameFor('wk');
  names.push(name);
  return name;
}

function startWorker(host: string, name: string): Worker {
  const worker = startWith(host, name, redisUrl);
  workers.push(worker);
  return worker;
}

const deploy = (file: string) => deployWith(file, redisUrl);
const reported = (name: string, hosts: string[]) => reportedWith(redis, name, hosts);

describe('streams worker and streams deploy', () => {
  it('runs each host\'s share, and a changed map restarts only the map, on its host, losing nothing', async () => {
    const name = uniqueName();
    const out = join(dir, `${name}.jsonl`);
    const file = join(dir, `${name}.yaml`);
    const pipeline = (expr: string) => `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
transports:
  kafka: { brokers: "${brokers}" }
nodes:
  gen: { op: generate, place: { host: a }, with: { count: 2000, rate: 250, fields: { seq: i } } }
  double: { op: map, in: gen, place: { host: b }, with: { set: { v: "${expr}" } } }
  out: { op: file.write, in: double, with: { path: "${out}" } }
`;
    writeFileSync(file, pipeline('seq * 2'));
    const a = startWorker('a', name);
    const b = startWorker('b', name);
    await reported(name, ['a', 'b']);
    const first = await deploy(file);
    expect(first.stderr + first.stdout).toMatch(/^a: applied version 1 in \d+ ms \(2 nodes\)$/m);
    expect(first.stdout).toMatch(/^b: applied version 1 in \d+ ms \(3 nodes\)$/m);
    expect(first.code).toBe(0);
    // While records flow (8 s of them: a redeploy on a loaded machine takes
    // seconds, and some records must still pass through version 2), the
    // map's expression changes.
    await until('records flowing', () => counts(out).size > 100);
    writeFileSync(file, pipeline('seq * 3'));
    const second = await deploy(file);
    expect(second.stdout).toMatch(/^b: applied version 2 in \d+ ms/m);
    expect(second.code).toBe(0);
    const applied = await redis.hgetall(`streams:deploy:${name}:applied`);
    expect(JSON.parse(applied.b).diff).toEqual({ kept: ['out', '~receive:gen:out:double:in'], replaced: ['double'], added: [], removed: [] });
    expect(JSON.parse(applied.a).diff).toEqual({ kept: ['gen', '~send:gen:out:double:in'], replaced: [], added: [], removed: [] });
    expect(b.log()).toMatch(/running version 2: 3 nodes \(kept 2, replaced 1, added 0, removed 0\)/);
    const seen = await until('every seq in the output', () => {
      const c = counts(out);
      return hasAll(c, 2000) && c;
    });
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; v: number });
    const byVersion = { v1: lines.filter((l) => l.v === l.seq * 2 && l.seq !== 0).length, v2: lines.filter((l) => l.v === l.seq * 3 && l.seq !== 0).length };
    console.log(`2 workers: ${seen.size} seqs, ${duplicates(seen)} duplicates; ${byVersion.v1} records through version 1's map, ${byVersion.v2} through version 2's; deploy → applied: ${first.stdout.trim().replace(/\n/g, '; ')} / ${second.stdout.trim().replace(/\n/g, '; ')}`);
    expect(byVersion.v1).toBeGreaterThan(0);
    expect(byVersion.v2).toBeGreaterThan(0);
    expect(a.log()).toMatch(/"version":2.*running version 2: 2 nodes \(kept 2/);
  });
});

describe('bad deployments', () => {
  it('refuses an invalid pipeline before publishing, keeps the running version on a bad record, and hears from a host with no share', async () => {
    const name = uniqueName();
    const out = join(dir, `${name}.jsonl`);
    const file = join(dir, `${name}.yaml`);
    const header = `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
  idle: { role: spare }
transports:
  kafka: { brokers: "${brokers}" }
nodes:
`;
    writeFileSync(file, header + `  gen: { op: generate, place: { host: a }, with: { count: 10, fields: { seq: i } } }
  out: { op: file.write, in: gen, place: { host: b }, with: { path: "${out}" } }
`);
    const workersUp = ['a', 'b', 'idle', 'stranger'].map((h) => startWorker(h, name));
    await reported(name, ['a', 'b', 'idle', 'stranger']);
    const first = await deploy(file);
    expect(first.stdout).toMatch(/^idle: applied version 1 in \d+ ms \(no share\)$/m);
    expect(first.stdout).not.toMatch(/stranger/);
    expect(first.stderr).toMatch(/warning: a worker reports as host `stranger`, which is not declared/);
    expect(first.code).toBe(0);
    expect(workersUp[2].log()).toMatch(/running version 1: no share on this host/);
    await until('the stranger saying it is not in the plan', () => /host `stranger` is not one of the plan's hosts/.test(workersUp[3].log()));

    // An invalid pipeline: located errors, exit 1, nothing published.
    writeFileSync(file, header + '  gen: { op: generat, place: { host: a } }\n');
    const refused = await deploy(file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`${name}\\.yaml:\\d+:\\d+: error: unknown operator \`generat\``));
    expect(refused.stderr).toMatch(/nothing published/);
    expect(await redis.get(`streams:deploy:${name}:version`)).toBe('1');

    // Junk on the control plane, under a new version (workers read the record only when its counter moves): logged, the running version kept.
    await redis.set(`streams:deploy:${name}:version`, '2');
    await redis.set(`streams:deploy:${name}`, '{not json');
    await redis.publish(`streams:deploy:${name}:changed`, '2');
    await until('b logging the bad record', () => /the deployment record is not JSON.*keeping the running version/.test(workersUp[1].log()) || undefined);

    // A well-formed record whose pipeline does not check, under the next version (a record that could not be read is not read again): rejected, reported, version 1 kept.
    const record = { format: 1, version: 3, pipeline: name, file: `${name}.yaml`, text: header + '  gen: { op: generat }\n', params: {}, capabilities: [], published_at: new Date().toISOString() };
    await redis.set(`streams:deploy:${name}`, JSON.stringify(record));
    await redis.set(`streams:deploy:${name}:version`, '3');
    await redis.publish(`streams:deploy:${name}:changed`, '3');
    const report = await until('b rejecting version 3', async () => {
      const applied = JSON.parse((await redis.hget(`streams:deploy:${name}:applied`, 'b')) ?? '{}') as { version?: number; status: string; running: number; error: string };
      return applied.version === 3 && applied;
    }, 10_000);
    expect(report).toMatchObject({ version: 3, status: 'rejected', running: 1 });
    expect(report.error).toMatch(/unknown operator `generat`/);
    expect(workersUp[1].log()).toMatch(/version 3 is invalid; keeping version 1/);
    // The unreadable version 2 was logged once, not at every poll.
    expect(workersUp[1].log().match(/the deployment record is not JSON/g)).toHaveLength(1);
  });
});
