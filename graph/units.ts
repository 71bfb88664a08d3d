/**
 * Durations and sizes as pipeline files write them, parsed strictly: a value
 * is a number followed by one known unit, nothing else.
 */

const durationUnits: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const sizeUnits: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

const quantity = /^(\d+(?:\.\d+)?)([A-Za-z]+)$/;

/** The text as an error quotes it; an empty one has nothing to quote. */
function shown(text: string): string {
  return text.trim() === '' ? 'an empty value' : `\`${text}\``;
}

/** Result of a strict parse: the value, or why it is not one. */
export type Parsed = { ok: true; value: number } | { ok: false; reason: string };

/**
 * Parses a duration such as `250ms`, `1s`, `5m`, `1h` or `1d` into
 * milliseconds. A bare number is refused: the unit is part of the meaning.
 */
export function parseDuration(text: string): Parsed {
  const match = quantity.exec(text.trim());
  const unit = match ? durationUnits[match[2]] : undefined;
  if (!match || unit === undefined) {
    return { ok: false, reason: `${shown(text)} is not a duration (use a number and one of ms, s, m, h, d: \`250ms\`, \`1s\`)` };
  }
  return { ok: true, value: Number(match[1]) * unit };
}

/** Parses a size such as `64KiB`, `2MiB` or `1GB` into bytes; a bare integer counts bytes. */
export function parseSize(text: string): Parsed {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { ok: true, value: Number(trimmed) };
  const match = quantity.exec(trimmed);
  const unit = match ? sizeUnits[match[2]] : undefined;
  if (!match || unit === undefined) {
    return { ok: false, reason: `${shown(text)} is not a size (use a number and one of B, KB, MB, GB, KiB, MiB, GiB: \`64KiB\`)` };
  }
  // Rounding absorbs float error (`1.1KB`), not a fraction of a byte (`1.5B`, `0.1KiB`).
  const bytes = Number(match[1]) * unit;
  if (Math.abs(bytes - Math.round(bytes)) >= 0.01) return { ok: false, reason: `${shown(text)} is not a whole number of bytes` };
  return { ok: true, value: Math.round(bytes) };
}

/** Formats milliseconds back into the shortest exact duration text. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = durationUnits[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
