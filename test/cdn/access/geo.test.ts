import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countryFromHeader, lookupCountry, parseGeoTable, readGeoTable, type GeoTable } from '../../../nodes/cdn/access/geo.ts';
import { parseAddress } from '../../../nodes/cdn/access/ip-address.ts';

function countryOf(table: GeoTable, address: string): string | undefined {
  const words = new Uint32Array(4);
  if (!parseAddress(address, words)) throw new Error(address);
  return lookupCountry(table, words);
}

describe('the geo range table', () => {
  const table = readGeoTable('config/geo-example.csv');

  it('loads the shipped example: ranges and CIDR lines, IPv4 and IPv6, header and comments skipped', () => {
    expect(table.size).toBe(6);
    expect(countryOf(table, '192.0.2.0')).toBe('FR');
    expect(countryOf(table, '192.0.2.255')).toBe('FR');
    expect(countryOf(table, '::ffff:192.0.2.77')).toBe('FR');
    expect(countryOf(table, '198.51.100.127')).toBe('DE');
    expect(countryOf(table, '198.51.100.128')).toBe('US');
    expect(countryOf(table, '203.0.113.200')).toBe('JP');
    expect(countryOf(table, '2001:db8::1')).toBe('FR');
    expect(countryOf(table, '2001:db8:7fff:ffff:ffff:ffff:ffff:ffff')).toBe('FR');
    expect(countryOf(table, '2001:db8:8000::')).toBe('US');
  });

  it('finds no country outside every range, before the first or after the last', () => {
    expect(countryOf(table, '0.0.0.0')).toBeUndefined();
    expect(countryOf(table, '192.0.3.0')).toBeUndefined();
    expect(countryOf(table, '198.51.99.255')).toBeUndefined();
    expect(countryOf(table, '2001:db9::')).toBeUndefined();
    expect(countryOf(table, 'ffff::')).toBeUndefined();
  });

  it('agrees with a linear scan over many sorted and unsorted ranges', () => {
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) lines.push(`${i >> 8}.${i & 255}.0.0,${i >> 8}.${i & 255}.127.255,${i % 2 ? 'AA' : 'BB'}`);
    const shuffled = lines.map((line, i) => lines[(i * 7919) % lines.length]);
    const big = parseGeoTable(shuffled.join('\n'), 'big.csv');
    expect(big.size).toBe(2000);
    for (let i = 0; i < 2000; i += 37) {
      expect(countryOf(big, `${i >> 8}.${i & 255}.100.1`)).toBe(i % 2 ? 'AA' : 'BB');
      expect(countryOf(big, `${i >> 8}.${i & 255}.200.1`)).toBeUndefined();
    }
  });

  it('names the file and line of a bad range', () => {
    expect(() => parseGeoTable('1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.x,CN\n', 'db.csv')).toThrow('db.csv:2: `1.0.1.x` is not an IP address');
    expect(() => parseGeoTable('1.0.0.0,1.0.0.255,Australia\n', 'db.csv')).toThrow('db.csv:1: `Australia` is not a two-letter country code');
    expect(() => parseGeoTable('1.0.0.9,1.0.0.1,AU\n', 'db.csv')).toThrow('db.csv:1: the range starts after it ends');
    expect(() => parseGeoTable('1.0.0.0,::1,AU\n', 'db.csv')).toThrow('db.csv:1: the start and end of a range must both be IPv4 or both IPv6');
    expect(() => parseGeoTable('1.0.0.0,AU,x,y\n', 'db.csv')).toThrow('db.csv:1: expected `start_ip,end_ip,country` or `cidr,country`, found 4 fields');
    expect(() => parseGeoTable('network,country\n10.0.0.0/8,US\nnetwork,country\n', 'db.csv')).toThrow('db.csv:3:');
  });

  it('refuses overlapping ranges, naming both lines', () => {
    expect(() => parseGeoTable('10.0.0.0/8,US\n# comment\n10.20.0.0/16,FR\n', 'db.csv')).toThrow('db.csv:3: this range overlaps the one on line 1');
  });

  it('reads quoted fields and lower-case countries', () => {
    const quoted = parseGeoTable('"10.0.0.0/8","fr"\r\n', 'q.csv');
    expect(countryOf(quoted, '10.1.1.1')).toBe('FR');
  });

  it('says clearly when the file is missing or a folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'geo-'));
    expect(() => readGeoTable(join(dir, 'none.csv'))).toThrow(/cannot read the geo table `.*none\.csv`: no such file/);
    expect(() => readGeoTable(dir)).toThrow(/is a folder/);
    writeFileSync(join(dir, 'ok.csv'), '10.0.0.0/8,NL\n');
    expect(countryOf(readGeoTable(join(dir, 'ok.csv')), '10.0.0.1')).toBe('NL');
  });
});

describe('countryFromHeader', () => {
  it('reads a two-letter code, in any case, and nothing else', () => {
    expect(countryFromHeader('fr')).toBe('FR');
    expect(countryFromHeader(' DE ')).toBe('DE');
    expect(countryFromHeader('')).toBeUndefined();
    expect(countryFromHeader('FRA')).toBeUndefined();
    expect(countryFromHeader(undefined)).toBeUndefined();
    expect(countryFromHeader(['FR', 'DE'])).toBeUndefined();
  });
});
