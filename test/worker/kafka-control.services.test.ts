/**
 * `streams worker` and `streams deploy` with Kafka as the control plane
 * (`--control kafka://`), against the real broker: three worker processes
 * run their shares and count every record through; a changed map restarts
 * only the map, on its host; a host whose worker is not up is reported as
 * not applied, and its worker, started after the deploy, reads the current
 * version from the compacted plan topic and runs it; an unreachable broker
 * is named, without a hang.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kafkaControlTopics, splitStatus } from '../../cli/control-plane-kafka.ts';
import { openTable } from '../../native/kafka/table.ts';
import { uniqueName as nameFor, counts, deletePipelineTopics, deploy, duplicates, hasAll, killChildren, startWorker as startWith, until, type Worker } from './worker-harness.ts';

/** A worker process, remembered for killing after the test. */
function startWorker(host: string, name: string, control: string, started: ChildProcess[]): Worker {
  const worker = startWith(host, name, control);
  started.push(worker.child);
  return worker;
}

const brokers = process.env.STREAMS_KAFKA_BROKERS ?? '';
const control = `kafka://${brokers}`;
let dir: string;
const workers: ChildProcess[] = [];
const names: string[] = [];

beforeAll(() => {
  if (!brokers) throw new Error('STREAMS_KAFKA_BROKERS is not set: run `npm run services:start`');
  dir = mkdtempSync(join(tmpdir(), 'streams-kctl-'));
});

afterEach(() => killChildren(workers));

afterAll(async () => {
  // The control topics and the edges' topics of every pipeline this file deployed.
  await deletePipelineTopics(brokers, names);
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

function uniqueName(): string {
  const name = nameFor('kctl');
  names.push(name);
  return name;
}

/** The hosts' applied reports, as the status topic holds them now. */
async function appliedReports(name: string): Promise<Record<string, { version: number; status: string; diff?: unknown }>> {
  const table = await openTable({ brokers: brokers.split(','), topic: kafkaControlTopics(name).status, clientId: 'kctl-test' });
  try {
    await table.caughtUp(10_000);
    const { applied } = splitStatus([...table.entries()].map(([key, entry]) => [key, entry.value]));
    return Object.fromEntries(Object.entries(applied).map(([host, json]) => [host, JSON.parse(json)]));
  } finally {
    await table.close();
  }
}

const reportedCapabilities = (log: string): boolean => log.includes('reported this host\'s capabilities');

describe('streams worker and streams deploy over a Kafka control plane', () => {
  it('runs three shares, restarts only a changed node, and a worker started late runs the current version', async () => {
    const name = uniqueName();
    const out = join(dir, `${name}.jsonl`);
    const copy = join(dir, `${name}-copy.jsonl`);
    const file = join(dir, `${name}.yaml`);
    const pipeline = (expr: string, late = '') => `streams: 1
name: ${name}
hosts:
  a: { role: origin }
  b: { role: worker }
  c: { role: sink }
${late ? '  late: { role: spare }\n' : ''}transports:
  kafka: { brokers: "${brokers}" }
nodes:
  gen: { op: generate, place: { host: a }, with: { rate: 500, fields: { seq: i } } }
  double: { op: map, in: gen, place: { host: b }, with: { set: { v: "${expr}" } } }
  out: { op: file.write, in: double, place: { host: c }, with: { path: "${out}" } }
${late}`;
    writeFileSync(file, pipeline('seq * 2'));
    const up = ['a', 'b', 'c'].map((host) => startWorker(host, name, control, workers));
    await until('three capability reports', () => up.every((w) => reportedCapabilities(w.log())));

    const first = await deploy(file, control);
    expect(first.stderr).toMatch(new RegExp(`published \`${name}\` version 1; waiting for 3 hosts \\(a, b, c\\)`));
    expect(first.stdout).toMatch(/^a: applied version 1 in \d+ ms \(2 nodes\)$/m);
    expect(first.stdout).toMatch(/^b: applied version 1 in \d+ ms \(3 nodes\)$/m);
    expect(first.stdout).toMatch(/^c: applied version 1 in \d+ ms \(2 nodes\)$/m);
    expect(first.code).toBe(0);
    await until('records flowing through three hosts', () => counts(out).size > 300);

    // The map's expression changes while records flow: the map restarts on b, nothing else anywhere.
    writeFileSync(file, pipeline('seq * 3'));
    const second = await deploy(file, control);
    expect(second.stdout.split('\n').filter((l) => / applied version 2 in \d+ ms/.test(l))).toHaveLength(3);
    expect(second.code).toBe(0);
    const reports = await appliedReports(name);
    expect(reports.b).toMatchObject({ version: 2, status: 'applied', diff: { kept: ['~receive:gen:out:double:in', '~send:double:out:out:in'], replaced: ['double'], added: [], removed: [] } });
    expect(reports.a).toMatchObject({ version: 2, diff: { kept: ['gen', '~send:gen:out:double:in'], replaced: [] } });
    expect(reports.c).toMatchObject({ version: 2, diff: { kept: ['out', '~receive:double:out:out:in'], replaced: [] } });
    expect(up[1].log()).toMatch(/running version 2: 3 nodes \(kept 2, replaced 1, added 0, removed 0\)/);
    const target = Math.max(...counts(out).keys()) + 300;
    const seen = await until('every seq up to the target in the output', () => {
      const got = counts(out);
      return hasAll(got, target) && got;
    });
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; v: number });
    const through = { v1: lines.filter((l) => l.seq !== 0 && l.v === l.seq * 2).length, v2: lines.filter((l) => l.seq !== 0 && l.v === l.seq * 3).length };
    expect(through.v1).toBeGreaterThan(0);
    expect(through.v2).toBeGreaterThan(0);

    // A host whose worker is not up: reported as not applied, the others apply.
    writeFileSync(file, pipeline('seq * 3', `  copy: { op: file.write, in: double, place: { host: late }, with: { path: "${copy}" } }\n`));
    const third = await deploy(file, control, '6s');
    expect(third.stdout).toMatch(/^late: not applied within 6000 ms: no worker has reported for it$/m);
    expect(third.stdout.split('\n').filter((l) => / applied version 3 in \d+ ms/.test(l))).toHaveLength(3);
    expect(third.code).toBe(1);
    // Its worker starts after the deploy and finds version 3 on the compacted plan topic.
    const late = startWorker('late', name, control, workers);
    await until('the late worker running version 3', () => /running version 3: 2 nodes/.test(late.log()));
    await until('the late worker reporting version 3', async () => (await appliedReports(name)).late?.version === 3);
    await until('records reaching the late host', () => counts(copy).size > 50);
    console.log(`kafka control, 3 workers: ${seen.size} seqs checked, ${duplicates(seen)} duplicates; ${through.v1} records through version 1's map, ${through.v2} through version 2's; ${first.stdout.trim().replace(/\n/g, '; ')} / ${second.stdout.trim().replace(/\n/g, '; ')}`);
  });

  it('names an unreachable broker instead of hanging', async () => {
    const file = join(dir, 'unreachable.yaml');
    writeFileSync(file, 'streams: 1\nname: kctl-unreachable\nnodes:\n  gen: { op: generate, with: { count: 1 } }\n  out: { op: stdout, in: gen }\n');
    const started = Date.now();
    // Nothing listens on this port of the part's range.
    const refused = await deploy(file, 'kafka://127.0.0.1:7651');
    expect(refused.stderr).toMatch(/cannot reach the control plane at kafka:\/\/127\.0\.0\.1:7651: /);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(refused.code).toBe(2);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
