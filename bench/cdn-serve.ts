/**
 * C1, serving from cache: the edge (`cache`, run by `bin/streams.ts` from
 * the sources, which Node runs as they are: the request path is the same
 * code once compiled by V8, and no stale `dist/` can be measured) against a bare `node:http` + `lru-cache` server and against
 * nginx (one worker) serving the same files, a 1 KB playlist and a 256 KB
 * segment, each driven by wrk with 64 keep-alive connections on this
 * machine, targets taken in turns, rounds interleaved. The edge's origin is
 * the nginx under test; every request measured is a hit.
 *
 *   node bench/cdn-serve.ts [seconds=8] [rounds=3]
 *
 * Prints requests per second (median of the rounds) for each target and
 * size, and the edge's ratio to each baseline; and the CPU time each
 * server spent a request, the steadier figure on a shared machine. Aims: the edge at least 0.9
 * of bare Node and 0.55 of nginx for 1 KB, at least nginx for 256 KB.
 * Installs wrk and nginx-light (Debian) if they are missing.
 */
import { ensureTools, loadAverage, median, objects, startTargets, targetNames, wrk, type Compared } from './cdn-targets.ts';

const seconds = Number(process.argv[2] ?? 8);
const rounds = Number(process.argv[3] ?? 3);

ensureTools();
const servers = await startTargets({ base: 7850 });
const targets = servers.ports;
const pids = servers.pids;
const results: Record<string, Record<Compared, number[]>> = {};
const cpu: Record<string, Record<Compared, number[]>> = {};
for (let round = 0; round < rounds; round++) {
  for (const [size, object] of Object.entries(objects)) {
    results[size] ??= { edge: [], bare: [], nginx: [] };
    cpu[size] ??= { edge: [], bare: [], nginx: [] };
    // Turns rotate so no target always runs first or last.
    const order = targetNames.map((_, i, all) => all[(i + round) % all.length]);
    for (const target of order) {
      const measured = wrk(`http://127.0.0.1:${targets[target]}${object.path}`, pids[target], { seconds, connections: 64 });
      results[size][target].push(measured.perSecond);
      cpu[size][target].push(measured.cpuPerRequest);
      process.stderr.write(`round ${round + 1} ${size} ${target}: ${Math.round(measured.perSecond)} req/s, ${measured.cpuPerRequest.toFixed(1)} µs CPU a request\n`);
    }
  }
}
await servers.stop();

console.log(`C1 serving from cache, wrk -t1 -c64 -d${seconds}s, median of ${rounds} rounds (req/s); load ${loadAverage()}`);
console.log('size    edge      bare-node  nginx     edge/bare  edge/nginx');
for (const [size, byTarget] of Object.entries(results)) {
  const edge = median(byTarget.edge);
  const bare = median(byTarget.bare);
  const nginx = median(byTarget.nginx);
  console.log(`${size.padEnd(8)}${String(Math.round(edge)).padEnd(10)}${String(Math.round(bare)).padEnd(11)}${String(Math.round(nginx)).padEnd(10)}${(edge / bare).toFixed(2).padEnd(11)}${(edge / nginx).toFixed(2)}`);
}
console.log('server CPU a request (µs, median; the ratios are requests a CPU second, edge to baseline)');
console.log('size    edge      bare-node  nginx     edge/bare  edge/nginx');
for (const [size, byTarget] of Object.entries(cpu)) {
  const edge = median(byTarget.edge);
  const bare = median(byTarget.bare);
  const nginx = median(byTarget.nginx);
  console.log(`${size.padEnd(8)}${edge.toFixed(1).padEnd(10)}${bare.toFixed(1).padEnd(11)}${nginx.toFixed(1).padEnd(10)}${(bare / edge).toFixed(2).padEnd(11)}${(nginx / edge).toFixed(2)}`);
}
console.log('aims: 1KB edge/bare >= 0.90 and edge/nginx >= 0.55; 256KB edge/nginx >= 1.00');
