import { describe, expect, it } from 'vitest';
import { cidrListHas, cidrProblem, compileCidrList } from '../../../nodes/cdn/access/cidr.ts';
import { parseAddress } from '../../../nodes/cdn/access/ip-address.ts';

function words(text: string): Uint32Array {
  const out = new Uint32Array(4);
  if (!parseAddress(text, out)) throw new Error(`not an address: ${text}`);
  return out;
}

function hex(text: string): string {
  return [...words(text)].map((word) => word.toString(16).padStart(8, '0')).join(' ');
}

describe('parseAddress', () => {
  it.each([
    ['1.2.3.4', '00000000 00000000 0000ffff 01020304'],
    ['::ffff:1.2.3.4', '00000000 00000000 0000ffff 01020304'],
    ['::FFFF:102:304', '00000000 00000000 0000ffff 01020304'],
    ['255.255.255.255', '00000000 00000000 0000ffff ffffffff'],
    ['::', '00000000 00000000 00000000 00000000'],
    ['::1', '00000000 00000000 00000000 00000001'],
    ['2001:db8::', '20010db8 00000000 00000000 00000000'],
    ['2001:db8:0:0:1::2', '20010db8 00000000 00010000 00000002'],
    ['fe80::1%eth0', 'fe800000 00000000 00000000 00000001'],
    ['1:2:3:4:5:6:7:8', '00010002 00030004 00050006 00070008'],
    ['64:ff9b::192.0.2.33', '0064ff9b 00000000 00000000 c0000221'],
  ])('reads %s', (text, expected) => {
    expect(hex(text)).toBe(expected);
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', 'a.b.c.d', ':', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', '1:2:3:4:5:6:7', '1:', ':1', 'g::1', '::1.2.3', 'localhost'])(
    'refuses %j',
    (text) => {
      expect(parseAddress(text, new Uint32Array(4))).toBe(false);
    },
  );
});

describe('CIDR lists', () => {
  it('matches IPv4 blocks, including the IPv4-mapped form a dual-stack socket reports', () => {
    const list = compileCidrList(['10.0.0.0/8', '192.0.2.7']);
    expect(cidrListHas(list, words('10.200.3.4'))).toBe(true);
    expect(cidrListHas(list, words('::ffff:10.200.3.4'))).toBe(true);
    expect(cidrListHas(list, words('11.0.0.1'))).toBe(false);
    expect(cidrListHas(list, words('192.0.2.7'))).toBe(true);
    expect(cidrListHas(list, words('192.0.2.8'))).toBe(false);
    // An IPv4 block does not swallow the IPv6 space around the mapped range.
    expect(cidrListHas(list, words('::a00:1'))).toBe(false);
  });

  it('matches IPv6 blocks at any prefix length', () => {
    const list = compileCidrList(['2001:db8::/32', 'fd00::/8', '2001:db9:0:2::/63']);
    expect(cidrListHas(list, words('2001:db8:ffff::1'))).toBe(true);
    expect(cidrListHas(list, words('2001:db9::1'))).toBe(false);
    expect(cidrListHas(list, words('fdff:1::'))).toBe(true);
    expect(cidrListHas(list, words('fe00::'))).toBe(false);
    expect(cidrListHas(list, words('2001:db9:0:2:ffff::'))).toBe(true);
    expect(cidrListHas(list, words('2001:db9:0:3::1'))).toBe(true);
    expect(cidrListHas(list, words('2001:db9:0:1:ffff::'))).toBe(false);
    expect(cidrListHas(list, words('2001:db9:0:4::'))).toBe(false);
  });

  it('matches everything with /0 and nothing with an empty list', () => {
    expect(cidrListHas(compileCidrList(['0.0.0.0/0']), words('203.0.113.9'))).toBe(true);
    expect(cidrListHas(compileCidrList(['0.0.0.0/0']), words('2001:db8::1'))).toBe(false);
    expect(cidrListHas(compileCidrList(['::/0']), words('2001:db8::1'))).toBe(true);
    expect(cidrListHas(compileCidrList([]), words('1.1.1.1'))).toBe(false);
  });

  it('says why a block is malformed, with a fix when bits are set past the prefix', () => {
    expect(cidrProblem('10.0.0.0/8')).toBeUndefined();
    expect(cidrProblem('10.1.2.3/8')).toBe('`10.1.2.3/8` has bits set past its /8 prefix (did you mean `10.0.0.0/8`?)');
    expect(cidrProblem('10.0.0.0/33')).toBe('`10.0.0.0/33`: the prefix length must be 0 to 32');
    expect(cidrProblem('2001:db8::/129')).toBe('`2001:db8::/129`: the prefix length must be 0 to 128');
    expect(cidrProblem('10.0.0.0/x')).toMatch(/prefix length/);
    expect(cidrProblem('example.com')).toMatch(/is not an IP address or CIDR block/);
    expect(cidrProblem('2001:db8::1/32')).toMatch(/did you mean `2001:db8::\/32`/);
    expect(cidrProblem('2001:db9:0:1::/63')).toBe('`2001:db9:0:1::/63` has bits set past its /63 prefix (did you mean `2001:db9::/63`?)');
  });
});
