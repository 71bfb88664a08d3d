/**
 * CEL evaluation speed: a compiled two-clause filter against a plain
 * JavaScript function doing the same, over the same records, in one run.
 * Prints evaluations per second (median of 7 rounds) and the ratio.
 *
 *   node bench/cel.ts [records]
 */
import { compileExpression } from '../graph/expression.ts';

const count = Number(process.argv[2] ?? 1_000_000);
const records = Array.from({ length: count }, (_, i) => ({ device: `dev-${i % 1000}`, value: (i % 200) - 20.5, ts: i }));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function measure(name: string, fn: (record: (typeof records)[number]) => unknown): { name: string; perSecond: number; kept: number } {
  const rates: number[] = [];
  let kept = 0;
  for (let round = 0; round < 8; round++) {
    kept = 0;
    const started = performance.now();
    for (let i = 0; i < records.length; i++) if (fn(records[i]) === true) kept++;
    const seconds = (performance.now() - started) / 1000;
    if (round > 0) rates.push(records.length / seconds); // round 0 warms up the JIT
  }
  return { name, perSecond: median(rates), kept };
}

const cel = compileExpression('value >= 0.0 && device != "dev-7"');
const results = [
  measure('CEL `value >= 0.0 && device != "dev-7"`', (r) => cel(r)),
  measure('plain JavaScript (r) => r.value >= 0 && r.device !== "dev-7"', (r) => r.value >= 0 && r.device !== 'dev-7'),
];
if (results[0].kept !== results[1].kept) throw new Error(`CEL kept ${results[0].kept}, JavaScript kept ${results[1].kept}`);
for (const r of results) console.log(`${r.name.padEnd(64)} ${(r.perSecond / 1e6).toFixed(2)} M evaluations/s`);
console.log(`ratio CEL / JavaScript: ${(results[0].perSecond / results[1].perSecond).toFixed(3)} (median of 7 rounds, ${count} records each, ${results[0].kept} kept)`);
