/**
 * A client's country, for geo rules: from a header a load balancer or CDN
 * in front sets (`CF-IPCountry`, `CloudFront-Viewer-Country`,
 * `X-Country-Code`), or looked up in an IP range table loaded at start.
 *
 * The table is a CSV file, one range a line, in either form (mixed freely):
 *
 * ```
 * start_ip,end_ip,country      # 1.0.0.0,1.0.0.255,AU   (DB-IP "IP to Country Lite" as it ships)
 * cidr,country                 # 2001:db8::/32,FR
 * ```
 *
 * IPv4 and IPv6, ranges inclusive, countries as ISO 3166 alpha-2 codes.
 * Blank lines, `#` comments and a header line are skipped; overlapping
 * ranges are an error naming both lines. Lookup is a binary search.
 */
import { readFileSync } from 'node:fs';
import { compareAddress, parseAddress, type AddressWords } from './ip-address.ts';
import { parseCidr } from './cidr.ts';

/** Ranges sorted by start, four words per address. */
export interface GeoTable {
  readonly size: number;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly countries: readonly string[];
}

/** A table file that cannot be used, with the file and line in the message. */
export class GeoTableError extends Error {
  readonly code = 'bad_geo_table';
  constructor(message: string) {
    super(message);
    this.name = 'GeoTableError';
  }
}

/** Whether `text` is a country code as the rules and table write it: two letters or digits, upper case. */
export function isCountryCode(text: string): boolean {
  return text.length === 2 && isUpperOrDigit(text.charCodeAt(0)) && isUpperOrDigit(text.charCodeAt(1));
}

/** `A`-`Z` or `0`-`9` (a char-code test: this runs per request, for the country header). */
function isUpperOrDigit(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 48 && code <= 57);
}

/**
 * The country a header names (`fr` and ` FR ` give `FR`), or undefined when
 * it names none. A list (a header sent twice) counts as none: ambiguous.
 */
export function countryFromHeader(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const code = value.trim().toUpperCase();
  return isCountryCode(code) ? code : undefined;
}

/** A parsed line: its range and country. */
interface Row {
  start: AddressWords;
  end: AddressWords;
  country: string;
  line: number;
}

/** A CSV field with surrounding spaces and double quotes removed. */
function field(text: string): string {
  const trimmed = text.trim();
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1) : trimmed;
}

/** Parses one data line into a row, or says why it is not one. */
function parseRow(fields: string[], line: number): Row | string {
  const country = fields.at(-1)!.toUpperCase();
  if (!isCountryCode(country)) return `\`${fields.at(-1)}\` is not a two-letter country code`;
  if (fields.length === 2) {
    const block = parseCidr(fields[0]);
    if (typeof block === 'string') return block;
    const end = new Uint32Array(4);
    for (let w = 0; w < 4; w++) {
      const inWord = Math.max(0, Math.min(32, block.prefix - w * 32));
      end[w] = (block.base[w] | (inWord === 32 ? 0 : 0xffffffff >>> inWord)) >>> 0;
    }
    return { start: block.base, end, country, line };
  }
  const start = new Uint32Array(4);
  const end = new Uint32Array(4);
  if (!parseAddress(fields[0], start)) return `\`${fields[0]}\` is not an IP address`;
  if (!parseAddress(fields[1], end)) return `\`${fields[1]}\` is not an IP address`;
  if ((fields[0].includes(':') !== fields[1].includes(':'))) return 'the start and end of a range must both be IPv4 or both IPv6';
  if (compareAddress(start, 0, end, 0) > 0) return `the range starts after it ends (\`${fields[0]}\` > \`${fields[1]}\`)`;
  return { start, end, country, line };
}

/** Parses a table's text (`file` names it in errors). Throws {@link GeoTableError} on the first bad line. */
export function parseGeoTable(text: string, file: string): GeoTable {
  const rows: Row[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(',').map(field);
    const row = fields.length === 2 || fields.length === 3 ? parseRow(fields, index + 1) : `expected \`start_ip,end_ip,country\` or \`cidr,country\`, found ${fields.length} fields`;
    if (typeof row !== 'string') {
      rows.push(row);
      continue;
    }
    // The first data line may be a header (`start_ip,end_ip,country`): its first field is no address at all.
    const header = rows.length === 0 && !/[0-9]/.test(fields[0]);
    if (!header) throw new GeoTableError(`${file}:${index + 1}: ${row}`);
  }
  rows.sort((a, b) => compareAddress(a.start, 0, b.start, 0));
  const starts = new Uint32Array(rows.length * 4);
  const ends = new Uint32Array(rows.length * 4);
  const countries: string[] = [];
  rows.forEach((row, i) => {
    if (i > 0 && compareAddress(row.start, 0, rows[i - 1].end, 0) <= 0) {
      throw new GeoTableError(`${file}:${row.line}: this range overlaps the one on line ${rows[i - 1].line}`);
    }
    starts.set(row.start, i * 4);
    ends.set(row.end, i * 4);
    countries.push(row.country);
  });
  return { size: rows.length, starts, ends, countries };
}

/** Reads and parses a table file at start. Throws {@link GeoTableError} when it is missing or bad. */
export function readGeoTable(file: string): GeoTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new GeoTableError(`cannot read the geo table \`${file}\`: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder' : (error as Error).message}`);
  }
  return parseGeoTable(text, file);
}

/** The country of `address` in `table`, or undefined when no range holds it. */
export function lookupCountry(table: GeoTable, address: AddressWords): string | undefined {
  // The last range starting at or before the address, by bisection.
  let low = 0;
  let high = table.size - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (compareAddress(table.starts, middle * 4, address, 0) <= 0) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  if (found < 0 || compareAddress(address, 0, table.ends, found * 4) > 0) return undefined;
  return table.countries[found];
}
