/**
 * CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, a bare address as a block of
 * one) and lists of them, IPv4 and IPv6 alike. IPv4 blocks are stored as
 * IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`), so an IPv4 client reported by a
 * dual-stack socket as `::ffff:10.1.2.3` matches `10.0.0.0/8`.
 */
import { parseAddress, type AddressWords } from './ip-address.ts';

/** A parsed CIDR list: each block's base address and mask, four words each. */
export interface CidrList {
  readonly size: number;
  /** Bases, already masked, four words per block. */
  readonly bases: Uint32Array;
  readonly masks: Uint32Array;
}

/** Why a CIDR text is not one, or undefined when it is. */
export function cidrProblem(text: string): string | undefined {
  const parsed = parseCidr(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** Parses one CIDR block into its base and prefix length (over 128 bits), or says why it cannot. */
export function parseCidr(text: string): { base: AddressWords; prefix: number } | string {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const base = new Uint32Array(4);
  if (!parseAddress(address, base)) return `\`${text}\` is not an IP address or CIDR block (write \`10.0.0.0/8\`, \`192.0.2.7\` or \`2001:db8::/32\`)`;
  const v4 = address.indexOf(':') < 0;
  const most = v4 ? 32 : 128;
  let prefix = most;
  if (slash >= 0) {
    const length = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(length) || Number(length) > most) return `\`${text}\`: the prefix length must be 0 to ${most}`;
    prefix = Number(length);
  }
  // IPv4 lives in the last 32 bits of the mapped form.
  const bits = v4 ? 96 + prefix : prefix;
  const mask = maskWords(bits);
  for (let w = 0; w < 4; w++) {
    if ((base[w] & ~mask[w]) >>> 0 !== 0) {
      return `\`${text}\` has bits set past its /${prefix} prefix (did you mean \`${formatBase(base, mask, v4)}/${prefix}\`?)`;
    }
  }
  return { base, prefix: bits };
}

/** The 128-bit mask of a prefix length, as four words. */
function maskWords(bits: number): Uint32Array {
  const mask = new Uint32Array(4);
  for (let w = 0; w < 4; w++) {
    const inWord = Math.max(0, Math.min(32, bits - w * 32));
    mask[w] = inWord === 0 ? 0 : (0xffffffff << (32 - inWord)) >>> 0;
  }
  return mask;
}

/** The masked base of a block, written as the user would write it, for a hint. */
function formatBase(base: AddressWords, mask: Uint32Array, v4: boolean): string {
  const masked = [0, 1, 2, 3].map((w) => (base[w] & mask[w]) >>> 0);
  if (v4) return [24, 16, 8, 0].map((shift) => (masked[3] >>> shift) & 255).join('.');
  const groups: string[] = [];
  for (const word of masked) groups.push((word >>> 16).toString(16), (word & 0xffff).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Builds a list from CIDR texts already checked with {@link cidrProblem}; throws on one that is not. */
export function compileCidrList(texts: readonly string[]): CidrList {
  const bases = new Uint32Array(texts.length * 4);
  const masks = new Uint32Array(texts.length * 4);
  texts.forEach((text, index) => {
    const parsed = parseCidr(text);
    if (typeof parsed === 'string') throw new Error(parsed);
    bases.set(parsed.base, index * 4);
    masks.set(maskWords(parsed.prefix), index * 4);
  });
  return { size: texts.length, bases, masks };
}

/**
 * Whether `address` lies in any block of `list`. A linear scan: allow and
 * deny lists are tens of entries; a large table belongs in the geo range
 * table, which is searched by bisection.
 */
export function cidrListHas(list: CidrList, address: AddressWords): boolean {
  const { bases, masks } = list;
  for (let at = 0; at < list.size * 4; at += 4) {
    if (
      ((address[0] & masks[at]) >>> 0) === bases[at] &&
      ((address[1] & masks[at + 1]) >>> 0) === bases[at + 1] &&
      ((address[2] & masks[at + 2]) >>> 0) === bases[at + 2] &&
      ((address[3] & masks[at + 3]) >>> 0) === bases[at + 3]
    ) {
      return true;
    }
  }
  return false;
}
