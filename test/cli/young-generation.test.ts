import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { youngGenerationFlag } from '../../cli/young-generation.ts';

describe('the young generation of a checking process', () => {
  it('is held at its size by default', () => {
    expect(youngGenerationFlag([], '')).toBe('--semi-space-growth-factor=1');
    expect(youngGenerationFlag(['--enable-source-maps'], '--max-old-space-size=4096')).toBe('--semi-space-growth-factor=1');
  });

  it('is left to the user who sized it, on the command line or in NODE_OPTIONS, in either spelling', () => {
    expect(youngGenerationFlag(['--max-semi-space-size=16'], '')).toBeUndefined();
    expect(youngGenerationFlag([], '--max_semi_space_size=8')).toBeUndefined();
    expect(youngGenerationFlag([], '--enable-source-maps --min-semi-space-size=4')).toBeUndefined();
    expect(youngGenerationFlag(['--semi-space-growth-factor=4'], '')).toBeUndefined();
  });

  it('stops growing once the flag is set at run time, on this Node', () => {
    // A process that keeps what it allocates, as a check does: the young generation stays at its starting size with the flag.
    const script = (hold: boolean) => `
      const v8 = require('node:v8');
      ${hold ? "v8.setFlagsFromString('--semi-space-growth-factor=1');" : ''}
      const kept = [];
      for (let i = 0; i < 1e6; i++) kept.push({ i, list: [i] });
      console.log(v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size);`;
    const newSpace = (hold: boolean) => Number(spawnSync(process.execPath, ['-e', script(hold)], { encoding: 'utf8', timeout: 60_000 }).stdout);
    const held = newSpace(true);
    const grown = newSpace(false);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(4 * 2 ** 20);
    expect(grown).toBeGreaterThan(4 * held);
  });
});
