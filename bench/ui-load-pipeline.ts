/**
 * The pipeline of the visualiser's load benchmarks: `chains` W1-like chains
 * of generated readings (filter, map, one-second windows per device fused
 * with their aggregates, JSON to /dev/null), 7 nodes and 6 edges each.
 */
export function uiLoadPipeline(chains = 4): string {
  const pipeline = ['streams: 1', 'name: ui-load', 'nodes:'];
  for (let c = 0; c < chains; c++) {
    pipeline.push(
      `  readings-${c}:`,
      `    op: generate`,
      `    with: { seed: ${c + 1}, fields: { device: '"dev-" + string(random_int % 50)', value: random * 40.0 - 5.0, ts: now } }`,
      `  valid-${c}: { op: filter, in: readings-${c}, with: { where: "value >= 0.0" } }`,
      `  celsius-${c}: { op: map, in: valid-${c}, with: { set: { fahrenheit: "value * 9.0 / 5.0 + 32.0" } } }`,
      `  per-second-${c}: { op: window.tumbling, in: celsius-${c}, with: { size: 1s, time: ts, key: device, lateness: 0s } }`,
      `  stats-${c}: { op: aggregate, in: per-second-${c}, with: { count: count(), avg: avg(value), max: max(fahrenheit) } }`,
      `  encode-${c}: { op: encode.json, in: stats-${c} }`,
      `  out-${c}: { op: file.write, in: encode-${c}, with: { path: /dev/null } }`,
    );
  }
  return `${pipeline.join('\n')}\n`;
}
