import { describe, expect, it } from 'vitest';
import { loadAllOperators, loadOperators, operatorModules, operatorNames, registry } from '../nodes/registry.ts';

// This file's own module graph (vitest isolates each test file): the registry starts empty here.
describe('loading operators on demand', () => {
  it('starts empty, loads the names asked for, and keeps what it loaded', async () => {
    expect(registry.size).toBe(0);
    await loadOperators(['generate', 'stdout', 'generate']);
    expect([...registry.keys()].sort()).toEqual(['generate', 'stdout']);
    await loadOperators(['map']);
    expect([...registry.keys()].sort()).toEqual(['generate', 'map', 'stdout']);
    expect(registry.get('generate')!.name).toBe('generate');
  });

  it('loads every operator for a name that is none, so the checker can suggest the nearest', async () => {
    await loadOperators(['kafka.consum']);
    expect([...registry.keys()]).toEqual(operatorNames);
  });

  it('lists each module under its definition\'s name', async () => {
    await loadAllOperators();
    for (const name of operatorNames) expect((await operatorModules[name]()).default).toBe(registry.get(name));
    expect(operatorNames.length).toBeGreaterThan(40);
  });
});
