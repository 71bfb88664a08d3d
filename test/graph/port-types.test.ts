import { describe, expect, it } from 'vitest';
import { fits, formatPortType, parsePortType, substitute, unifyAll, type PortType } from '../../graph/port-types.ts';

const t = parsePortType;

describe('parsePortType and formatPortType', () => {
  it.each([
    'Event<unknown>',
    'Event<{ts: number, device: string}>',
    'Event<{tags: list, meta: map, ok: bool, raw: any}>',
    'Bytes',
    'Object',
    'Any',
    'Media<video/h264>',
    'Media<audio/*>',
    'Segment<hls>',
    'Segment<*>',
  ])('round-trips `%s`', (text) => {
    expect(formatPortType(t(text))).toBe(text);
    expect(t(formatPortType(t(text)))).toEqual(t(text));
  });

  it.each([
    ['Event', 'Event<unknown>'],
    ['Event< unknown >', 'Event<unknown>'],
    ['Event<{ ts : number ,device:string }>', 'Event<{ts: number, device: string}>'],
    ['Media', 'Media<*/*>'],
    ['Segment', 'Segment<*>'],
    ['T: Event', 'Event<unknown>'],
    ['T', 'Any'],
  ])('reads `%s` as `%s`', (text, formatted) => {
    expect(formatPortType(t(text))).toBe(formatted);
  });

  it('reads a type variable with its bound', () => {
    expect(t('T: Media<video/*>')).toEqual({ kind: 'var', name: 'T', bound: { kind: 'media', caps: 'video/*' } });
    expect(t('T')).toEqual({ kind: 'var', name: 'T', bound: undefined });
  });

  it.each(['Stream', 'Event<{ts number}>', 'Event<{ts: date}>', 'Event<ts: number>', 'event', '<Bytes>'])('refuses the malformed `%s`', (text) => {
    expect(() => t(text)).toThrow(/malformed|unknown port type/);
  });
});

describe('fits', () => {
  it.each<[string, string, boolean, string]>([
    ['Event<unknown>', 'Event<unknown>', true, 'an unknown event fits an unknown event port'],
    ['Event<{a: number}>', 'Event<unknown>', true, 'Event<unknown> accepts any event'],
    ['Event<{a: number, b: string}>', 'Event', true, 'Event<unknown> accepts any event'],
    ['Event<unknown>', 'Event<{a: number}>', true, 'an unknown shape is checked per record at run time'],
    ['Event<{a: number, b: string}>', 'Event<{a: number}>', true, 'extra fields are fine'],
    ['Event<{b: string}>', 'Event<{a: number}>', false, 'a known shape must carry the fields asked for'],
    ['Event<{a: string}>', 'Event<{a: number}>', false, 'a field of another type'],
    ['Event<{a: any}>', 'Event<{a: number}>', true, 'a field of any type may be a number'],
    ['Event<{a: number}>', 'Event<{a: any}>', true, 'a port asking for any type takes a number'],
    ['Media<video/h264>', 'Media<audio/*>', false, 'video does not fit an audio port'],
    ['Media<video/h264>', 'Media<video/*>', true, 'h264 fits any video'],
    ['Media<video/*>', 'Media<video/h264>', true, 'any video may be h264 (caps intersect, as in GStreamer)'],
    ['Media<audio/aac>', 'Media<audio/opus>', false, 'different codecs'],
    ['Media<video/h264>', 'Media', true, 'a port with no caps takes all media'],
    ['Segment<hls>', 'Segment<*>', true, 'any segment format'],
    ['Segment<hls>', 'Segment<dash>', false, 'different segment formats'],
    ['Bytes', 'Event', false, 'Bytes are not events'],
    ['Event', 'Bytes', false, 'events are not Bytes'],
    ['Bytes', 'Media<video/*>', false, 'Bytes are not media'],
    ['Object', 'Bytes', false, 'objects are not Bytes'],
    ['Bytes', 'Any', true, 'Any takes everything'],
    ['Media<video/h264>', 'Any', true, 'Any takes everything'],
    ['Any', 'Bytes', true, 'an unknown upstream is not refused'],
    ['Event<{a: number}>', 'T: Event', true, 'a variable bound to Event takes events'],
    ['Bytes', 'T: Event', false, 'a variable bound to Event refuses Bytes'],
    ['Bytes', 'T', true, 'an unbound variable takes everything'],
  ])('%s into %s: %s (%s)', (actual, expected, result) => {
    expect(fits(t(actual), t(expected))).toBe(result);
  });
});

describe('unifyAll', () => {
  const unified = (...types: string[]): string | undefined => {
    const result = unifyAll(types.map(t));
    return result.ok ? formatPortType(result.type) : undefined;
  };

  it('gives Any for a port with no inputs', () => {
    expect(unified()).toBe('Any');
  });

  it('keeps a single input as it is', () => {
    expect(unified('Event<{a: number}>')).toBe('Event<{a: number}>');
  });

  it('unifies events to the fields all of them carry', () => {
    expect(unified('Event<{a: number, b: string}>', 'Event<{a: number, c: bool}>')).toBe('Event<{a: number}>');
  });

  it('widens a field whose types differ to any', () => {
    expect(unified('Event<{a: number}>', 'Event<{a: string}>')).toBe('Event<{a: any}>');
  });

  it('unifies a known and an unknown event shape to an unknown one', () => {
    expect(unified('Event<{a: number}>', 'Event<unknown>')).toBe('Event<unknown>');
  });

  it('unifies Media<video/*> with Media<video/h264>, in either order', () => {
    expect(unified('Media<video/*>', 'Media<video/h264>')).toBe('Media<video/*>');
    expect(unified('Media<video/h264>', 'Media<video/*>')).toBe('Media<video/*>');
  });

  it('unifies two video codecs only when one of them is a wildcard', () => {
    expect(unified('Media<video/h264>', 'Media<video/h264>')).toBe('Media<video/h264>');
    expect(unified('Media<video/h264>', 'Media<video/vp9>')).toBeUndefined();
  });

  it('does not unify video with audio', () => {
    expect(unified('Media<video/h264>', 'Media<audio/aac>')).toBeUndefined();
  });

  it('does not unify Bytes with events, wherever they stand among the inputs', () => {
    expect(unified('Bytes', 'Event')).toBeUndefined();
    expect(unified('Event<{a: number}>', 'Event<{a: number}>', 'Bytes')).toBeUndefined();
  });

  it('lets Any take the shape of the other inputs', () => {
    expect(unified('Any', 'Bytes')).toBe('Bytes');
    expect(unified('Media<audio/aac>', 'Any')).toBe('Media<audio/aac>');
  });

  it('unifies segment formats like caps', () => {
    expect(unified('Segment<hls>', 'Segment<*>')).toBe('Segment<*>');
    expect(unified('Segment<hls>', 'Segment<dash>')).toBeUndefined();
  });
});

describe('substitute', () => {
  it('replaces a variable by its binding, else by its bound, else by Any', () => {
    const bound: PortType = t('Event<{a: number}>');
    expect(substitute(t('T'), new Map([['T', bound]]))).toEqual(bound);
    expect(substitute(t('T: Event'), new Map())).toEqual({ kind: 'event' });
    expect(substitute(t('T'), new Map())).toEqual({ kind: 'any' });
    expect(substitute(t('Bytes'), new Map([['T', bound]]))).toEqual({ kind: 'bytes' });
  });
});
