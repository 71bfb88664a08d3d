/**
 * The edge's listen backlog reaches the kernel: `ss -ltn` reports a
 * listening socket's backlog in its Send-Q column, capped by
 * `net.core.somaxconn`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { checkYaml } from '../helpers/pipeline.ts';
import { startEdge, startOrigin, stopAll } from './edge-harness.ts';

afterEach(stopAll);

/** The backlog the kernel holds for the socket listening on `port`, from `ss`'s Send-Q. */
function kernelBacklog(port: number): number {
  const output = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const lines = output.split('\n').filter((line) => line !== '');
  expect(lines, `one listening socket on port ${port}: ${output}`).toHaveLength(1);
  const [state, , sendQ] = lines[0].split(/\s+/);
  expect(state).toBe('LISTEN');
  return Number(sendQ);
}

const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
const portOf = (base: string): number => Number(new URL(base).port);

describe('cache: listen backlog', () => {
  it('listens with a backlog of 4096 unless told (capped by net.core.somaxconn), not Node\'s 511', async () => {
    const origin = await startOrigin((_request, response) => response.end());
    const edge = await startEdge(origin.url);
    const expected = Math.min(4096, somaxconn);
    expect(kernelBacklog(portOf(edge.base))).toBe(expected);
    // Node's own default would show 511 (or the cap): the setting is what changed it.
    if (somaxconn > 511) expect(expected).not.toBe(511);
  });

  it('passes the `backlog` setting to the listener', async () => {
    const origin = await startOrigin((_request, response) => response.end());
    const edge = await startEdge(origin.url, { backlog: 123 });
    expect(kernelBacklog(portOf(edge.base))).toBe(Math.min(123, somaxconn));
  });

  it('refuses a backlog that is not a positive whole number, located in the file', () => {
    const pipeline = (backlog: string) => `streams: 1\nname: e\nnodes:\n  edge:\n    op: cache\n    with: { origin: "http://127.0.0.1:8080", backlog: ${backlog} }\n`;
    expect(() => checkYaml(pipeline('16384'))).not.toThrow();
    expect(() => checkYaml(pipeline('0'))).toThrow(/test\.yaml:6:\d+: .*backlog/);
    expect(() => checkYaml(pipeline('1.5'))).toThrow(/test\.yaml:6:\d+: .*backlog/);
  });
});
