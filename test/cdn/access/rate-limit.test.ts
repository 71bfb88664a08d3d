import { describe, expect, it } from 'vitest';
import { TokenBuckets } from '../../../nodes/cdn/access/rate-limit.ts';

describe('TokenBuckets', () => {
  it('lets a burst through, then refuses with the seconds until a token is back', () => {
    const buckets = new TokenBuckets({ rate: 0.5, burst: 3, maxClients: 10 });
    expect([0, 1, 2].map(() => buckets.take('a', 0).ok)).toEqual([true, true, true]);
    // Empty at rate 0.5/s: the next token in 2 s.
    expect(buckets.take('a', 0)).toEqual({ ok: false, retryAfterSeconds: 2 });
    // Half a token after 1 s: one more second.
    expect(buckets.take('a', 1000)).toEqual({ ok: false, retryAfterSeconds: 1 });
    expect(buckets.take('a', 2000).ok).toBe(true);
  });

  it('refills at the rate and never past the burst', () => {
    const buckets = new TokenBuckets({ rate: 10, burst: 5, maxClients: 10 });
    for (let i = 0; i < 5; i++) expect(buckets.take('a', 0).ok).toBe(true);
    expect(buckets.take('a', 0).ok).toBe(false);
    // 100 ms gives one token.
    expect(buckets.take('a', 100).ok).toBe(true);
    expect(buckets.take('a', 100).ok).toBe(false);
    // An hour idle gives back the burst, not 36,000 tokens.
    let admitted = 0;
    for (let i = 0; i < 20; i++) if (buckets.take('a', 3_600_000).ok) admitted += 1;
    expect(admitted).toBe(5);
  });

  it('keeps clients apart', () => {
    const buckets = new TokenBuckets({ rate: 1, burst: 1, maxClients: 10 });
    expect(buckets.take('a', 0).ok).toBe(true);
    expect(buckets.take('a', 0).ok).toBe(false);
    expect(buckets.take('b', 0).ok).toBe(true);
  });

  it('does not refill when the clock steps back', () => {
    const buckets = new TokenBuckets({ rate: 1, burst: 1, maxClients: 10 });
    expect(buckets.take('a', 10_000).ok).toBe(true);
    expect(buckets.take('a', 5_000).ok).toBe(false);
  });

  it('stays bounded under 100,000 distinct clients, and forgets idle ones', () => {
    const buckets = new TokenBuckets({ rate: 10, burst: 20, maxClients: 5000 });
    let most = 0;
    for (let i = 0; i < 100_000; i++) {
      buckets.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i);
      most = Math.max(most, buckets.size);
    }
    expect(most).toBeLessThanOrEqual(5000);
    // A full bucket refills in 2 s here: clients idle that long are dropped as others arrive.
    const late = 100_000 + 60_000;
    for (let i = 0; i < 10; i++) buckets.take(`late-${i}`, late);
    expect(buckets.size).toBeLessThanOrEqual(5000 - 10);
    for (let i = 10; i < 3000; i++) buckets.take(`late-${i}`, late);
    expect(buckets.size).toBeLessThan(3100);
  });

  it('keeps a busy client limited while a flood of others passes through', () => {
    const buckets = new TokenBuckets({ rate: 1, burst: 2, maxClients: 100 });
    buckets.take('busy', 0);
    buckets.take('busy', 0);
    for (let i = 0; i < 1000; i++) {
      buckets.take(`other-${i}`, 0);
      // The busy client is seen often, so it is never the least recently seen one evicted.
      if (i % 10 === 0) expect(buckets.take('busy', 0).ok).toBe(false);
    }
  });
});
