/**
 * IPv4 and IPv6 addresses parsed into 32-bit words, without regular
 * expressions or BigInt, so the edge can match every request's address
 * against CIDR lists and a geo range table cheaply.
 *
 * An address is four unsigned 32-bit words, most significant first. IPv4
 * `a.b.c.d` is stored as the IPv4-mapped IPv6 address `::ffff:a.b.c.d`, which
 * is also what Node reports for IPv4 clients on a dual-stack socket: both
 * spellings of one client are then the same words and match the same rules.
 */

/** Four 32-bit words, most significant first. */
export type AddressWords = Uint32Array;

/** Whether `words` holds an IPv4 (IPv4-mapped) address: `::ffff:0:0/96`. */
export function isIpv4Mapped(words: AddressWords): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
}

/** Parses dotted IPv4 `text[from, to)` into one word, or -1 when it is not one. */
function parseIpv4(text: string, from: number, to: number): number {
  let value = 0;
  let octets = 0;
  let octet = -1;
  let digits = 0;
  for (let i = from; i <= to; i++) {
    const code = i < to ? text.charCodeAt(i) : 46; // a virtual '.' closes the last octet
    if (code >= 48 && code <= 57) {
      // A leading zero (`01`) is refused: some parsers read it as octal.
      if (digits > 0 && octet === 0) return -1;
      octet = (octet < 0 ? 0 : octet * 10) + (code - 48);
      digits += 1;
      if (octet > 255) return -1;
    } else if (code === 46) {
      if (octet < 0 || octets === 4) return -1;
      value = value * 256 + octet;
      octets += 1;
      octet = -1;
      digits = 0;
    } else {
      return -1;
    }
  }
  return octets === 4 ? value : -1;
}

/** The value of a hexadecimal digit, or -1. */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

/** Scratch space for the 16-bit groups of an IPv6 address being parsed (one thread: reused, not reallocated). */
const groups = new Uint16Array(8);

/**
 * Parses an IPv4 or IPv6 address into `out` (four words). A zone (`fe80::1%eth0`)
 * is ignored. Returns false, leaving `out` unspecified, when `text` is not an address.
 */
export function parseAddress(text: string, out: AddressWords): boolean {
  let end = text.length;
  const zone = text.indexOf('%');
  if (zone >= 0) end = zone;
  if (text.indexOf(':') < 0) {
    const v4 = parseIpv4(text, 0, end);
    if (v4 < 0) return false;
    out[0] = 0;
    out[1] = 0;
    out[2] = 0xffff;
    out[3] = v4;
    return true;
  }
  return parseIpv6(text, end, out);
}

/** Parses IPv6 `text[0, end)`, with at most one `::` and an optional dotted IPv4 tail. */
function parseIpv6(text: string, end: number, out: AddressWords): boolean {
  let count = 0;
  let gap = -1; // index in `groups` where `::` stands
  let i = 0;
  if (end >= 2 && text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    if (count === 8) return false;
    let value = 0;
    let digits = 0;
    const start = i;
    while (i < end && digits <= 4) {
      const digit = hexDigit(text.charCodeAt(i));
      if (digit < 0) break;
      value = value * 16 + digit;
      digits += 1;
      i += 1;
    }
    if (i < end && text.charCodeAt(i) === 46) {
      // A dotted IPv4 tail fills the last two groups.
      const v4 = parseIpv4(text, start, end);
      if (v4 < 0 || count > 6) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    groups[count++] = value;
    if (i === end) break;
    if (text.charCodeAt(i) !== 58) return false;
    i += 1;
    if (i < end && text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = count;
      i += 1;
    } else if (i === end) {
      return false; // a trailing single ':'
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  // Groups after the gap move to the end; the gap is zeros.
  const zeros = 8 - count;
  let word = 0;
  let half = 0;
  for (let g = 0; g < 8; g++) {
    let group: number;
    if (gap >= 0 && g >= gap && g < gap + zeros) group = 0;
    else group = groups[gap >= 0 && g >= gap + zeros ? g - zeros : g];
    if (half === 0) {
      word = group;
      half = 1;
    } else {
      out[g >> 1] = ((word << 16) | group) >>> 0;
      half = 0;
    }
  }
  return true;
}

/** Compares two addresses: negative, zero or positive, as `a` is before, equal to or after `b`. */
export function compareAddress(a: AddressWords, aAt: number, b: AddressWords, bAt: number): number {
  for (let w = 0; w < 4; w++) {
    const difference = a[aAt + w] - b[bAt + w];
    if (difference !== 0) return difference;
  }
  return 0;
}
