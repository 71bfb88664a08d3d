/**
 * Which video encoders work on this host. Debian's ffmpeg lists NVENC,
 * VAAPI and QSV encoders whether or not the machine has the device, so the
 * only honest test is a one-frame encode with each: done once per binary
 * and cached, since the answer does not change while the process runs.
 */
import { FfmpegProcess } from './process.ts';

/** Video codecs an encoder may produce. */
export type EncoderCodec = 'h264' | 'hevc' | 'av1';

/** Hardware families; `none` is software. */
export type HardwareKind = 'nvenc' | 'vaapi' | 'qsv' | 'none';

/** How to drive one encoder: its name and what it needs around it. */
export interface EncoderSpec {
  /** ffmpeg's encoder name (`libx264`, `h264_nvenc`). */
  name: string;
  codec: EncoderCodec;
  hw: HardwareKind;
  /** Global options that open the device (`-init_hw_device ...`). */
  global: readonly string[];
  /** Filters appended after scaling to hand frames to the device (`format=nv12,hwupload`); empty for software. */
  upload: string;
}

const vaapiDevice = ['-init_hw_device', 'vaapi=va:/dev/dri/renderD128', '-filter_hw_device', 'va'];

/** The candidates, hardware first: the order `chooseEncoder` prefers with `hw: auto`. */
export const encoderCandidates: readonly EncoderSpec[] = [
  { name: 'h264_nvenc', codec: 'h264', hw: 'nvenc', global: [], upload: '' },
  { name: 'h264_vaapi', codec: 'h264', hw: 'vaapi', global: vaapiDevice, upload: 'format=nv12,hwupload' },
  { name: 'h264_qsv', codec: 'h264', hw: 'qsv', global: [], upload: 'format=nv12' },
  { name: 'libx264', codec: 'h264', hw: 'none', global: [], upload: '' },
  { name: 'hevc_nvenc', codec: 'hevc', hw: 'nvenc', global: [], upload: '' },
  { name: 'hevc_vaapi', codec: 'hevc', hw: 'vaapi', global: vaapiDevice, upload: 'format=nv12,hwupload' },
  { name: 'hevc_qsv', codec: 'hevc', hw: 'qsv', global: [], upload: 'format=nv12' },
  { name: 'libx265', codec: 'hevc', hw: 'none', global: [], upload: '' },
  { name: 'libsvtav1', codec: 'av1', hw: 'none', global: [], upload: '' },
  { name: 'libaom-av1', codec: 'av1', hw: 'none', global: [], upload: '' },
];

/** The outcome of probing one encoder. */
export interface EncoderProbeResult {
  spec: EncoderSpec;
  works: boolean;
  /** Why not: the first line ffmpeg wrote to stderr (the device error; the last is a generic one). */
  reason?: string;
}

/** Every candidate's outcome, by encoder name. */
export type EncoderProbe = ReadonlyMap<string, EncoderProbeResult>;

const probes = new Map<string, Promise<EncoderProbe>>();

/** A one-frame encode of a small test picture with `spec`, to nowhere. */
async function tryEncoder(spec: EncoderSpec, binary: string): Promise<EncoderProbeResult> {
  const filter = ['scale=256:144', spec.upload].filter(Boolean).join(',');
  const process = FfmpegProcess.spawn(
    {
      global: spec.global,
      inputs: [{ from: { url: 'color=c=black:s=256x144:r=25' }, options: ['-f', 'lavfi'] }],
      outputs: [{ to: { url: '-' }, options: ['-frames:v', '1', '-vf', filter, '-c:v', spec.name, '-f', 'null'] }],
    },
    { binary },
  );
  const timer = setTimeout(() => void process.stop(500), 15_000);
  const exit = await process.exited;
  clearTimeout(timer);
  if (exit.error === undefined && !exit.stopped) return { spec, works: true };
  return { spec, works: false, reason: exit.error?.stderr[0] ?? exit.error?.message ?? 'timed out' };
}

/**
 * Probes every candidate once per binary (later calls share the first
 * result). Never rejects: an encoder that cannot run is one that does not work.
 */
export function probeEncoders(binary = 'ffmpeg'): Promise<EncoderProbe> {
  let probe = probes.get(binary);
  if (!probe) {
    probe = Promise.all(encoderCandidates.map((spec) => tryEncoder(spec, binary))).then((results) => new Map(results.map((r) => [r.spec.name, r])));
    probes.set(binary, probe);
  }
  return probe;
}

/** The encoder picked for a codec and a `hw` setting, and a warning when it is not what was asked. */
export interface EncoderChoice {
  spec: EncoderSpec;
  /** Set when the asked hardware does not work here and software is used instead. */
  warning?: string;
}

/**
 * Picks an encoder from a probe: with `hw: auto` the first working
 * hardware encoder for the codec, else software; with a named family that
 * family's encoder if it works, else software with a warning. Undefined
 * when no encoder for the codec works at all.
 */
export function chooseEncoder(probe: EncoderProbe, codec: EncoderCodec, hw: HardwareKind | 'auto'): EncoderChoice | undefined {
  const forCodec = encoderCandidates.filter((spec) => spec.codec === codec);
  const working = forCodec.filter((spec) => probe.get(spec.name)?.works);
  const software = working.find((spec) => spec.hw === 'none');
  if (hw === 'auto') {
    const chosen = working[0];
    if (!chosen) return undefined;
    const untried = forCodec.filter((spec) => spec.hw !== 'none' && !probe.get(spec.name)?.works).map((spec) => spec.name);
    return chosen.hw === 'none' && untried.length > 0 ? { spec: chosen, warning: `no hardware ${codec} encoder works on this host (${untried.join(', ')} failed): using ${chosen.name}` } : { spec: chosen };
  }
  const asked = forCodec.find((spec) => spec.hw === hw);
  if (asked && probe.get(asked.name)?.works) return { spec: asked };
  if (!software) return undefined;
  if (hw === 'none') return { spec: software };
  const reason = asked ? probe.get(asked.name)?.reason ?? 'not probed' : 'no such encoder';
  return { spec: software, warning: `${hw} ${codec} encoding does not work on this host (${reason}): using ${software.name}` };
}
