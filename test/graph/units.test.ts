import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseSize } from '../../graph/units.ts';

describe('parseDuration', () => {
  it.each([
    ['1s', 1_000],
    ['250ms', 250],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5h', 5_400_000],
    ['2d', 172_800_000],
    ['0s', 0],
  ])('reads `%s` as %i ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, value: ms });
  });

  it.each([
    ['1', 'a bare number: the unit is part of the meaning'],
    ['1 s', 'a space between number and unit'],
    ['1sec', 'a unit spelt out'],
    ['1S', 'a unit in the wrong case'],
    ['-1s', 'a negative duration'],
    ['+1s', 'a signed duration'],
    ['1s500ms', 'two units'],
    ['.5s', 'a fraction without its integer part'],
    ['1.s', 'a decimal point without a fraction'],
    ['s', 'a unit without a number'],
    ['', 'nothing'],
  ])('refuses `%s` (%s)', (text) => {
    const parsed = parseDuration(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(/is not a duration \(use a number and one of ms, s, m, h, d/);
  });

  it('quotes the text it refuses, and says so when there is none', () => {
    expect(parseDuration('1sec')).toEqual({ ok: false, reason: '`1sec` is not a duration (use a number and one of ms, s, m, h, d: `250ms`, `1s`)' });
    expect(parseDuration('')).toEqual({ ok: false, reason: 'an empty value is not a duration (use a number and one of ms, s, m, h, d: `250ms`, `1s`)' });
  });
});

describe('formatDuration', () => {
  it.each([
    [250, '250ms'],
    [1_000, '1s'],
    [1_500, '1500ms'],
    [90_000, '90s'],
    [300_000, '5m'],
    [3_600_000, '1h'],
    [86_400_000, '1d'],
  ])('writes %i ms as `%s`, which reads back the same', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toEqual({ ok: true, value: ms });
  });
});

describe('parseSize', () => {
  it.each([
    ['64KiB', 65_536],
    ['2MiB', 2_097_152],
    ['1GiB', 1_073_741_824],
    ['1GB', 1_000_000_000],
    ['8KB', 8_000],
    ['1.5KiB', 1_536],
    ['1.1KB', 1_100],
    ['10B', 10],
    ['4096', 4_096],
    ['0', 0],
  ])('reads `%s` as %i bytes', (text, bytes) => {
    expect(parseSize(text)).toEqual({ ok: true, value: bytes });
  });

  it.each([
    ['1KIB', 'a unit in the wrong case'],
    ['1kb', 'a unit in the wrong case'],
    ['1 KiB', 'a space between number and unit'],
    ['2Mbit', 'a bit rate unit'],
    ['-1', 'a negative count'],
    ['-1KiB', 'a negative size'],
    ['1.5', 'a fractional byte count'],
    ['KiB', 'a unit without a number'],
    ['', 'nothing'],
  ])('refuses `%s` (%s)', (text) => {
    const parsed = parseSize(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(/is not a size \(use a number and one of B, KB, MB, GB, KiB, MiB, GiB/);
  });

  it.each(['1.5B', '0.1KiB'])('refuses `%s`, a fraction of a byte', (text) => {
    expect(parseSize(text)).toEqual({ ok: false, reason: `\`${text}\` is not a whole number of bytes` });
  });
});
