/**
 * Cache keys and `Vary`: a request's key is its URL until an answer for
 * that URL varied, then the URL and the request's values of the names it
 * varied on; headers are read only in that case; the edge's own fetches
 * (no headers) key like a client sending none of the names.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { variantKey } from '../../nodes/cdn/edge/store.ts';
import { noHeaders, variantKeyOf, varyNames, VaryKeys } from '../../nodes/cdn/edge/vary-keys.ts';

/** A request whose headers must not be read: Node builds them on first read, which a plain hit avoids. */
const unreadable = {
  get headers(): IncomingHttpHeaders {
    throw new Error('headers read');
  },
};

describe('cache keys and Vary', () => {
  it('reads the Vary names lower case, once each, sorted', () => {
    expect(varyNames({ vary: 'Accept-Language, accept-encoding ,Accept-Language' })).toEqual(['accept-encoding', 'accept-language']);
    expect(varyNames({})).toEqual([]);
    expect(varyNames({ vary: ' , ' })).toEqual([]);
  });

  it('keys a URL with no remembered names by the URL alone, without reading the headers', () => {
    const keys = new VaryKeys();
    expect(keys.keyOf('/a.m4s', unreadable)).toBe('/a.m4s');
    expect(keys.namesOf('/a.m4s')).toBeUndefined();
  });

  it('keys a URL whose answer varied by the values of those names, and forgets them when an answer no longer varies', () => {
    const keys = new VaryKeys();
    keys.remember('/index.html', ['accept-language']);
    const french = keys.keyOf('/index.html', { headers: { 'accept-language': 'fr' } });
    const german = keys.keyOf('/index.html', { headers: { 'accept-language': 'de' } });
    expect(french).not.toBe(german);
    expect(french).toBe(variantKeyOf('/index.html', ['accept-language'], { 'accept-language': 'fr' }));
    expect(french.startsWith('/index.html')).toBe(true);
    expect(keys.namesOf('/index.html')).toEqual(['accept-language']);
    keys.remember('/index.html', []);
    expect(keys.keyOf('/index.html', unreadable)).toBe('/index.html');
  });

  it('keys the edge’s own fetches like a client that sends none of the names', () => {
    const keys = new VaryKeys();
    keys.remember('/seg.m4s', ['accept-encoding']);
    expect(keys.keyOf('/seg.m4s', noHeaders)).toBe(keys.keyOf('/seg.m4s', { headers: { 'user-agent': 'x' } }));
    expect(keys.keyOf('/seg.m4s', noHeaders)).not.toBe(keys.keyOf('/seg.m4s', { headers: { 'accept-encoding': 'gzip' } }));
  });

  it('builds a variant key that is the URL when nothing varies', () => {
    expect(variantKeyOf('/x', [], { 'accept-language': 'fr' })).toBe('/x');
    expect(variantKeyOf('/x', ['accept-language'], { 'accept-language': 'fr' })).toBe(variantKey('/x', 'accept-language=fr'));
  });
});
