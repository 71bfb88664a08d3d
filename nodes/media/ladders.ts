/**
 * Encoder ladders: the presets and named ladders of `config/ladders.yaml`,
 * the `ladder` setting resolved against them, and the rungs a source can
 * feed (none above its own height).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';

/** One rung of a ladder: a name (`720p`), a height in pixels and a video bitrate in bit/s. */
export interface Rung {
  name: string;
  height: number;
  bitrate: number;
}

/** The file's content: presets by name, and ladders as lists of preset names. */
export interface LadderConfig {
  presets: ReadonlyMap<string, Rung>;
  ladders: ReadonlyMap<string, readonly string[]>;
}

/** A rung as written in a pipeline. */
export type RungSetting = string | { name: string; height: number; bitrate: string | number };

/**
 * Parses `400k`, `2.8M` or a number of bit/s; undefined when malformed.
 *
 * @example parseBitrate('2800k') // 2800000
 */
export function parseBitrate(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$/.exec(value);
  if (!match) return undefined;
  const scale = match[2] === '' ? 1 : match[2].toLowerCase() === 'k' ? 1e3 : 1e6;
  const bits = Math.round(Number(match[1]) * scale);
  return bits > 0 ? bits : undefined;
}

/** Reads the ladder file's text; throws with the file named when it is malformed (a project file, not user input). */
export function parseLadderConfig(text: string, file: string): LadderConfig {
  const raw = parse(text) as { presets?: Record<string, { height?: unknown; bitrate?: unknown }>; ladders?: Record<string, unknown> } | null;
  const presets = new Map<string, Rung>();
  for (const [name, preset] of Object.entries(raw?.presets ?? {})) {
    const bitrate = typeof preset.bitrate === 'string' || typeof preset.bitrate === 'number' ? parseBitrate(preset.bitrate) : undefined;
    if (typeof preset.height !== 'number' || bitrate === undefined) throw new Error(`${file}: preset \`${name}\` needs a height and a bitrate`);
    presets.set(name, { name, height: preset.height, bitrate });
  }
  const ladders = new Map<string, string[]>();
  for (const [name, list] of Object.entries(raw?.ladders ?? {})) {
    if (!Array.isArray(list) || !list.every((rung) => typeof rung === 'string' && presets.has(rung))) throw new Error(`${file}: ladder \`${name}\` must list presets`);
    ladders.set(name, list as string[]);
  }
  return { presets, ladders };
}

let loaded: LadderConfig | undefined;

/** Where `config/ladders.yaml` is: beside the sources (`nodes/media/`) or the bundle (`dist/`). */
function ladderFile(): string {
  let dir = import.meta.dirname;
  for (let up = 0; up < 4; up++) {
    const candidate = join(dir, 'config', 'ladders.yaml');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('config/ladders.yaml was not found beside the engine');
}

/** The project's ladders, read once on first use (so commands that never encode never read it). */
export function ladderConfig(): LadderConfig {
  if (!loaded) {
    const file = ladderFile();
    loaded = parseLadderConfig(readFileSync(file, 'utf8'), file);
  }
  return loaded;
}

/**
 * Resolves a `ladder` setting (a ladder's name, or a list of preset names
 * and `{name, height, bitrate}` rungs) to rungs, highest first; a string
 * is the error a user reads.
 */
export function resolveLadder(setting: string | readonly RungSetting[], config: LadderConfig = ladderConfig()): Rung[] | string {
  if (typeof setting === 'string') {
    const names = config.ladders.get(setting);
    if (!names) return `unknown ladder \`${setting}\` (config/ladders.yaml has ${[...config.ladders.keys()].map((n) => `\`${n}\``).join(', ')}; or list rungs)`;
    return names.map((name) => config.presets.get(name)!);
  }
  const rungs: Rung[] = [];
  for (const entry of setting) {
    if (typeof entry === 'string') {
      const preset = config.presets.get(entry);
      if (!preset) return `unknown rung \`${entry}\` (presets: ${[...config.presets.keys()].map((n) => `\`${n}\``).join(', ')}; or write \`{name, height, bitrate}\`)`;
      rungs.push(preset);
      continue;
    }
    const bitrate = parseBitrate(entry.bitrate);
    if (bitrate === undefined) return `rung \`${entry.name}\`: bitrate \`${entry.bitrate}\` is not a bitrate (write \`2800k\` or \`2.8M\`)`;
    rungs.push({ name: entry.name, height: entry.height, bitrate });
  }
  const seen = new Set<string>();
  for (const rung of rungs) {
    if (seen.has(rung.name)) return `rung \`${rung.name}\` is listed twice`;
    if (rung.name === 'source' || rung.name === 'audio') return `a rung cannot be named \`${rung.name}\` (that rendition name is taken)`;
    seen.add(rung.name);
  }
  return rungs.sort((a, b) => b.height - a.height);
}

/**
 * The rungs a source of `sourceHeight` feeds, under `maxHeight`, and those
 * skipped (above either). When every rung is above, the lowest is kept at
 * the limit's height: a small source still gets one encoded rendition.
 */
export function selectRungs(rungs: readonly Rung[], sourceHeight: number | undefined, maxHeight?: number): { kept: Rung[]; skipped: Rung[] } {
  const limit = Math.min(sourceHeight ?? Infinity, maxHeight ?? Infinity);
  const kept = rungs.filter((rung) => rung.height <= limit);
  const skipped = rungs.filter((rung) => rung.height > limit);
  if (kept.length === 0 && skipped.length > 0) {
    const lowest = skipped.pop()!;
    kept.push({ ...lowest, height: Math.floor(limit / 2) * 2 });
  }
  return { kept, skipped };
}
