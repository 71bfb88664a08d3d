import { describe, expect, it } from 'vitest';
import { conformanceCases, runCase } from './cel-conformance.ts';
import { conformanceFiles, knownUnsupported, passingFloor } from './cel-conformance-unsupported.ts';

describe('CEL conformance (google/cel-spec simple tests)', () => {
  const cases = conformanceCases(conformanceFiles);
  const outcomes = cases.map((c) => ({ id: c.id, outcome: runCase(c.test) }));
  const passing = outcomes.filter((o) => o.outcome.status === 'pass').length;
  const failing = outcomes.filter((o) => o.outcome.status === 'fail');

  it('reads every file it is held to', () => {
    const read = new Set(cases.map((c) => c.id.split('/')[0]));
    expect([...read].sort()).toEqual([...conformanceFiles].sort());
  });

  it(`passes at least ${passingFloor} cases`, () => {
    expect(passing).toBeGreaterThanOrEqual(passingFloor);
  });

  it('fails only the cases listed as unsupported', () => {
    const unexpected = failing.filter((o) => !knownUnsupported.has(o.id)).map((o) => `${o.id}: ${o.outcome.status === 'fail' ? o.outcome.got : ''}`);
    expect(unexpected, 'a case that passed before now fails').toEqual([]);
  });

  it('lists no case that passes or does not exist (shrink the list when a fix makes one pass)', () => {
    const failingIds = new Set(failing.map((o) => o.id));
    const stale = [...knownUnsupported.keys()].filter((id) => !failingIds.has(id));
    expect(stale).toEqual([]);
  });
});
