import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { heapFlagFor } from '../../runtime/heap-tuning.ts';
import { checkYaml } from '../helpers/pipeline.ts';

const graphOf = (file: string) => checkYaml(readFileSync(file, 'utf8'), [], file);

describe('the V8 flag for media buffers', () => {
  const live = graphOf('pipelines/live.yaml');
  const demo = graphOf('pipelines/demo.yaml');

  it('is set for a graph that carries media', () => {
    expect(heapFlagFor(live, [], '13.6.233.10-node.18')).toBe('--external-memory-accounted-in-global-limit');
  });

  it('is not set for an event pipeline', () => {
    expect(heapFlagFor(demo, [])).toBeUndefined();
  });

  it('is left to the command line when it names the flag either way, in either spelling', () => {
    expect(heapFlagFor(live, ['--no-external-memory-accounted-in-global-limit'])).toBeUndefined();
    expect(heapFlagFor(live, ['--external-memory-accounted-in-global-limit'])).toBeUndefined();
    expect(heapFlagFor(live, ['--no-external_memory_accounted_in_global_limit'])).toBeUndefined();
  });

  it('is not set on a V8 that lacks it (Node 20 and 22 would print an error)', () => {
    expect(heapFlagFor(live, [], '11.3.244.8-node.30')).toBeUndefined();
    expect(heapFlagFor(live, [], '12.4.254.21-node.33')).toBeUndefined();
    expect(heapFlagFor(live, [], '13.6.233.10-node.18')).toBe('--external-memory-accounted-in-global-limit');
  });
});
