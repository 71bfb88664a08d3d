/**
 * Every timer and every "now" of operators and the runtime goes through the
 * runtime's clock (`ctx.now()`, `ctx.schedule()`, `sleep(ms, signal, ctx)`),
 * so that tests run them on a virtual clock. This ratchet names the files
 * that still read the wall clock, each with why; a new one fails, and so
 * does a listed one that no longer needs its entry (remove it).
 * `performance.now()` (measuring how long work took) is not a clock read.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

/** Files that still read the wall clock, and why: to move to the clock by the parts that own them. */
const remaining: Record<string, string> = {
  'runtime/clock.ts': 'the real clock itself',
  'runtime/server/live-feed.ts': "the visualiser's sampling interval",
  'runtime/server/taps.ts': "the visualiser's tap sweeps and waits",
  'nodes/messaging/kafka-consume.ts': "a bound on the Kafka client's own calls",
  'nodes/media/ingest-srt.ts': "arrival stamps and reconnect waits of srt-live-transmit's socket",
  'nodes/media/ladder-stream.ts': "the encoder's stall watchdog",
  'nodes/media/origin/player-page.ts': "not the engine's: a script the player page runs in the viewer's browser",
  'nodes/cdn/edge/fetch-origin.ts': 'the origin request timeout',
  'nodes/cdn/purge/command.ts': "a purge command's issue time",
  'nodes/cdn/purge/kafka-bus.ts': "the purge bus's position probe",
  'nodes/cdn/purge/listener.ts': "the purge listener's heartbeat",
  'nodes/cdn/purge/send.ts': "the purge acknowledgement wait",
};

const wallClock = /\bset(?:Timeout|Interval)\(|\bDate\.now\(\)/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Whether a file reads the wall clock outside its comments. */
function readsWallClock(path: string): boolean {
  return readFileSync(path, 'utf8')
    .split('\n')
    .some((line) => !/^\s*(?:\*|\/\/|\/\*)/.test(line) && wallClock.test(line));
}

describe('the runtime clock', () => {
  it('is the only clock operators and the runtime read, apart from the files listed with a reason', () => {
    const found = [...sources(join(root, 'nodes')), ...sources(join(root, 'runtime'))]
      .filter(readsWallClock)
      .map((path) => relative(root, path))
      .sort();
    expect(found).toEqual(Object.keys(remaining).sort());
  });
});
