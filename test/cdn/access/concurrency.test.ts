import { describe, expect, it } from 'vitest';
import { ConcurrencyCap } from '../../../nodes/cdn/access/concurrency.ts';

describe('ConcurrencyCap', () => {
  it('admits up to the cap per client and frees a slot on release', () => {
    const cap = new ConcurrencyCap(2);
    const first = cap.acquire('a');
    const second = cap.acquire('a');
    expect(first).toBeTypeOf('function');
    expect(second).toBeTypeOf('function');
    expect(cap.acquire('a')).toBeUndefined();
    expect(cap.acquire('b')).toBeTypeOf('function');
    first!();
    expect(cap.openFor('a')).toBe(1);
    expect(cap.acquire('a')).toBeTypeOf('function');
  });

  it('ignores a second release of the same request', () => {
    const cap = new ConcurrencyCap(2);
    const first = cap.acquire('a')!;
    cap.acquire('a');
    first();
    first();
    expect(cap.openFor('a')).toBe(1);
  });

  it('forgets a client once it has nothing open', () => {
    const cap = new ConcurrencyCap(4);
    const releases = Array.from({ length: 1000 }, (_, i) => cap.acquire(`c${i}`)!);
    expect(cap.clients).toBe(1000);
    for (const release of releases) release();
    expect(cap.clients).toBe(0);
  });
});
