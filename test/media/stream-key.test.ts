import { describe, expect, it } from 'vitest';
import { clientTextForLog, isSafeStreamKey, keyForLog } from '../../media/stream-key.ts';
import { OriginStore } from '../../nodes/media/origin/store.ts';
import { init, videoInfo } from '../helpers/cmaf-items.ts';

describe('stream keys', () => {
  const cases: Array<[string, boolean]> = [
    ['cam1', true],
    ['Cam_1.main-2', true],
    ['a', true],
    ['x'.repeat(128), true],
    ['x'.repeat(129), false],
    ['', false],
    ['.hidden', false],
    ['..', false],
    ['_x', false],
    ['-x', false],
    ['a~b', false],
    ['a/b', false],
    ['a b', false],
    ['a?b', false],
    ['é', false],
  ];
  it.each(cases)('isSafeStreamKey(%j) is %s', (key, safe) => {
    expect(isSafeStreamKey(key)).toBe(safe);
  });

  it('accepts exactly what the origin accepts as a stream name', () => {
    const store = new OriginStore({ now: () => 0, schedule: () => () => undefined }, { maxStreams: 100, keepEndedMs: 0 });
    for (const [key] of cases) expect(store.apply(init(key, 'v', videoInfo)) === undefined).toBe(isSafeStreamKey(key));
  });

  it('shows only the first four characters of a key', () => {
    expect(keyForLog('secretkey123')).toBe('secr…');
    expect(keyForLog('abcd')).toBe('****');
    expect(keyForLog('')).toBe('****');
  });

  it('bounds and cleans text a client sent before it is logged', () => {
    expect(clientTextForLog('live')).toBe('live');
    expect(clientTextForLog('a'.repeat(300))).toBe(`${'a'.repeat(64)}…`);
    expect(clientTextForLog('x\n{"level":"error"}')).toBe('x?{"level":"error"}');
  });
});
