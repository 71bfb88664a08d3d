/**
 * A worker polls the control plane's version every few seconds and reads the
 * record (megabytes for a large pipeline) only when the version moves, also
 * after a record it could not read: that one is logged once, not read again.
 */
import { describe, expect, it } from 'vitest';
import { HostWorker } from '../../cli/worker.ts';
import type { ControlPlane } from '../../cli/control-plane.ts';
import type { Logger } from '../../runtime/types.ts';

describe('a worker and a record it cannot read', () => {
  it('reads it once, logs it once, and reads again only when the version moves', async () => {
    let version = 7;
    let reads = 0;
    const plane = {
      address: 'test',
      latest: async () => version,
      current: async () => {
        reads++;
        return { error: 'the deployment record is not JSON: Unexpected token' };
      },
      reportApplied: async () => undefined,
    } as unknown as ControlPlane;
    const errors: string[] = [];
    const log = { error: (_fields: unknown, message: string) => errors.push(message), warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;
    const worker = new HostWorker({ host: 'b', plane, log, drainMs: 100, pipeline: 'p' });
    for (let i = 0; i < 5; i++) await worker.consider();
    expect(reads).toBe(1);
    expect(errors).toEqual(['the deployment record is not JSON: Unexpected token; keeping the running version']);
    version = 8;
    await worker.consider();
    await worker.consider();
    expect(reads).toBe(2);
    expect(errors).toHaveLength(2);
    expect(worker.version).toBeUndefined();
  });
});
