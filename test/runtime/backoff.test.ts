/**
 * One backoff for the whole engine: `native/backoff.ts` holds the formula,
 * the runtime re-exports it, and no connector computes a doubling delay of
 * its own (each copy drifted: other caps, no jitter, no reset).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backoffDelay as nativeBackoff } from '../../native/backoff.ts';
import { backoffDelay, sleep } from '../../runtime/retry.ts';
import { VirtualClock } from '../helpers/fake-context.ts';

const root = join(import.meta.dirname, '../..');
const shipped = ['graph', 'runtime', 'nodes', 'native', 'cli'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('backoff', () => {
  it('is the one function from native/, re-exported by the runtime', () => {
    expect(backoffDelay).toBe(nativeBackoff);
  });

  it('is computed nowhere else in shipped code: no `2 **` and no doubling of a delay outside native/backoff.ts', () => {
    const copies = shipped
      .flatMap((dir) => sources(join(root, dir)))
      .filter((path) => !path.endsWith(join('native', 'backoff.ts')))
      .flatMap((path) =>
        readFileSync(path, 'utf8')
          .split('\n')
          .map((line, index) => ({ where: `${relative(root, path)}:${index + 1}`, line }))
          .filter(({ line }) => /\b2 \*\* |[dD]elay\w* \* 2\b/.test(line)),
      )
      .map(({ where }) => where);
    expect(copies).toEqual([]);
  });
});

describe('sleep between retries', () => {
  it('waits on the clock it is given, and ends early (false) when its signal aborts', async () => {
    const clock = new VirtualClock(0);
    let slept: boolean | undefined;
    void sleep(1_000, undefined, clock).then((done) => (slept = done));
    clock.advance(999);
    await Promise.resolve();
    expect(slept).toBeUndefined();
    clock.advance(1);
    await Promise.resolve();
    expect(slept).toBe(true);

    const stop = new AbortController();
    const aborted = sleep(1_000, stop.signal, clock);
    stop.abort();
    expect(await aborted).toBe(false);
    expect(clock.pending).toBe(0);
  });
});
