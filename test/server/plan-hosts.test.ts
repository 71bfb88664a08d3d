import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planGraph } from '../../graph/plan.ts';
import { LiveFeed, type FeedEngine } from '../../runtime/server/live-feed.ts';
import { planOf, type LiveEvent } from '../../runtime/server/protocol.ts';
import { checkYaml, startYaml } from '../helpers/pipeline.ts';

const threeWorkers = readFileSync('pipelines/three-workers.yaml', 'utf8');

const noHosts = `
streams: 1
name: flat
nodes:
  gen: { op: generate, with: { rate: 100, count: 3, fields: { n: i } } }
  out: { op: test.collect, in: gen, with: { into: plan-hosts-flat } }
`;

describe('graph.plan for a pipeline with hosts', () => {
  it('carries every host, each node\'s planned hosts and each cross-host edge\'s transport', () => {
    const plan = planOf(checkYaml(threeWorkers, [], 'pipelines/three-workers.yaml'), 0);
    expect(plan.hosts).toEqual([
      { name: 'a', role: 'origin' },
      { name: 'b', role: 'worker' },
      { name: 'c', role: 'worker' },
    ]);
    expect(plan.nodes.map((n) => [n.id, n.host, n.hosts, n.role])).toEqual([
      ['readings', 'a', ['a'], 'origin'],
      ['enrich', 'b', ['b', 'c'], 'worker'],
      ['out', 'a', ['a'], 'origin'],
    ]);
    expect(plan.edges.map((e) => [e.id, e.transport])).toEqual([
      ['readings.out->enrich', { kind: 'kafka', label: 'kafka streams.three-workers.readings.out.enrich.in', topic: 'streams.three-workers.readings.out.enrich.in', partitions: 2 }],
      ['enrich.out->out', { kind: 'kafka', label: 'kafka streams.three-workers.enrich.out.out.in', topic: 'streams.three-workers.enrich.out.out.in', partitions: 1 }],
    ]);
    // Brokers may come from `${env:...}`: the page is not given them.
    expect(JSON.stringify(plan)).not.toContain('9092');
    expect(plan.here).toBeUndefined();
    expect(plan.plan_only).toBeUndefined();
  });

  it('leaves edges inside one host without a transport', () => {
    const text = threeWorkers.replace('parallelism: 2\n    place: { role: worker }', 'place: { host: a }');
    const plan = planOf(checkYaml(text), 0);
    expect(plan.nodes.every((n) => n.host === 'a' && n.hosts.length === 1)).toBe(true);
    expect(plan.edges.every((e) => e.transport === undefined)).toBe(true);
    expect(plan.hosts?.map((h) => h.name)).toEqual(['a', 'b', 'c']);
  });

  it('is as before for a pipeline without hosts: every node on `local`, no host list, no transports', () => {
    const plan = planOf(checkYaml(noHosts), 0);
    expect(plan.hosts).toBeUndefined();
    expect(plan.nodes.map((n) => [n.host, n.hosts])).toEqual([['local', ['local']], ['local', ['local']]]);
    expect(plan.edges[0].transport).toBeUndefined();
  });

  it('shows a given plan with the worker\'s own host, as a worker\'s feed does', () => {
    const graph = checkYaml(threeWorkers);
    const given = planGraph({ graph }).plan!;
    // A plan made over other hosts (a worker's, after the hosts reported what they offer) is the one shown.
    given.nodes[1] = { ...given.nodes[1], instances: ['c', 'c'], hosts: ['c'] };
    const plan = planOf(graph, 0, { plan: given, here: 'b' });
    expect(plan.here).toBe('b');
    expect(plan.nodes[1].hosts).toEqual(['c']);
  });

  it('a feed with a plan function shows the whole graph, marks a plan with nothing running, and sends it again on refreshPlan', async () => {
    const whole = checkYaml(threeWorkers);
    const engine = startYaml(noHosts);
    let here = 'a';
    const feed = new LiveFeed(engine, { plan: () => ({ graph: whole, here, planOnly: false }) });
    expect(feed.plan.nodes.map((n) => n.id)).toEqual(['readings', 'enrich', 'out']);
    expect(feed.plan.here).toBe('a');
    const events: LiveEvent[] = [];
    feed.subscribe((e) => events.push(e));
    here = 'b';
    feed.refreshPlan();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'graph.plan', graph: 'three-workers', here: 'b' });
    await engine.drain();

    const idle: FeedEngine = { graph: whole, nodeStats: () => [], edgeStats: () => [] };
    const planOnly = new LiveFeed(idle, { plan: () => ({ planOnly: true }) });
    expect(planOnly.plan).toMatchObject({ plan_only: true, graph: 'three-workers' });
    planOnly.sample();
    expect(planOnly.stats().nodes).toEqual([]);
  });
});

describe('streams plan --ui', () => {
  it('refuses a non-loopback address without a token, as `run --ui` does, before serving anything', () => {
    const result = spawnSync(process.execPath, ['bin/streams.ts', 'plan', 'pipelines/three-workers.yaml', '--ui', '0.0.0.0:7916'], { encoding: 'utf8', timeout: 20_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/--ui.*token/);
    expect(result.stdout).toBe('');
  });
});
