/**
 * The W1 data set: sensor readings, one JSON object per line, made by a
 * seeded generator so every run measures the same bytes.
 * `ts` (ms) is shared by 100 consecutive readings (100,000 readings per
 * second of event time); devices `dev-0` .. `dev-999`; about 10% of values
 * negative.
 */
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { seededRandom } from '../runtime/seeded-random.ts';


/** Writes `count` readings (`perMs` sharing each millisecond) to `path` unless a file of that count is already there. */
export async function ensureW1Data(path: string, count: number, perMs = 100): Promise<void> {
  const marker = `${path}.count`;
  if (existsSync(path) && existsSync(marker) && statSync(marker).size > 0) {
    const { readFileSync } = await import('node:fs');
    if (Number(readFileSync(marker, 'utf8')) === count) return;
  }
  const random = seededRandom(20261124);
  const out = createWriteStream(path);
  const start = Date.UTC(2026, 10, 24);
  let chunk = '';
  for (let i = 0; i < count; i++) {
    const ts = start + Math.floor(i / perMs);
    const device = Math.floor(random() * 1000);
    // About 10% negative: values in [-5, 45).
    const value = Math.round((random() * 50 - 5) * 1000) / 1000;
    chunk += `{"ts":${ts},"device":"dev-${device}","metric":"temp","value":${value}}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      chunk = '';
    }
  }
  out.write(chunk);
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  const { writeFileSync } = await import('node:fs');
  writeFileSync(marker, String(count));
}
