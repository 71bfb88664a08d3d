/**
 * Checker cases that need operators the shipped registry does not have yet:
 * host requirements (`ffmpeg`, `gpu`, `display`), duration and size
 * settings, and media ports. Table-driven over `test-registry.ts`.
 */
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { testRegistry } from './test-registry.ts';

interface Case {
  name: string;
  yaml: string;
  /** `LINE:COL: SEVERITY: MESSAGE`, in output order. */
  expect: string[];
}

const hosts = `hosts:
  edge-1: { role: edge, offers: [listen] }
  gpu-1: { role: gpu, offers: [gpu, display] }
  media-1: { role: origin, offers: [ffmpeg] }`;

const cases: Case[] = [
  {
    name: 'accepts a requirement when no hosts are declared (the local host offers everything)',
    yaml: `streams: 1
name: local
nodes:
  cam:
    op: camera
  enc:
    op: video.encode
    in: cam
  out:
    op: video.sink
    in: enc
`,
    expect: [],
  },
  {
    name: 'reports a requirement that no declared host offers, at the operator',
    yaml: `streams: 1
name: unmet
hosts:
  edge-1: { role: edge, offers: [listen, display] }
nodes:
  cam:
    op: camera
  enc:
    op: video.encode
    in: cam
  out:
    op: video.sink
    in: enc
`,
    expect: ['9:5: error: node `enc` (`video.encode`) needs `ffmpeg` but no declared host offers it (declared hosts: `edge-1` (role edge, offers [listen, display]))'],
  },
  {
    name: 'reports a requirement that no host selected by `place` offers, at the `place`',
    yaml: `streams: 1
name: unmet-place
${hosts}
nodes:
  cam:
    op: camera
    place: { role: gpu }
  enc:
    op: video.encode
    in: cam
    place: { role: gpu }
  out:
    op: video.sink
    in: enc
`,
    expect: ['14:5: error: node `enc` (`video.encode`) needs `ffmpeg` but no selected host offers it (selected hosts: `gpu-1` (role gpu, offers [gpu, display]))'],
  },
  {
    name: 'accepts a requirement that a selected host offers',
    yaml: `streams: 1
name: met
${hosts}
nodes:
  cam:
    op: camera
    place: { host: gpu-1 }
  enc:
    op: video.encode
    in: cam
    place: { role: origin }
  out:
    op: video.sink
    in: enc
`,
    expect: [],
  },
  {
    name: 'reports requirements that depend on settings, when no single host offers them all',
    yaml: `streams: 1
name: hardware
${hosts}
nodes:
  cam:
    op: camera
  enc:
    op: video.encode
    in: cam
    with: { hardware: true }
  out:
    op: video.sink
    in: enc
`,
    expect: ['11:5: error: node `enc` (`video.encode`) needs `ffmpeg`, `gpu` but no declared host offers them all (declared hosts: `edge-1` (role edge, offers [listen]); `gpu-1` (role gpu, offers [gpu, display]); `media-1` (role origin, offers [ffmpeg]))'],
  },
  {
    name: 'reports a source whose requirement (`display`) no host offers',
    yaml: `streams: 1
name: no-display
hosts:
  media-1: { role: origin, offers: [ffmpeg] }
nodes:
  cam:
    op: camera
  out:
    op: video.sink
    in: cam
`,
    expect: ['7:5: error: node `cam` (`camera`) needs `display` but no declared host offers it (declared hosts: `media-1` (role origin, offers [ffmpeg]))'],
  },
  {
    name: 'reports durations that are not strict: a word unit, a sign, a space, nothing, a bare number',
    yaml: `streams: 1
name: durations
nodes:
  gen:
    op: generate
  w1:
    op: window.test
    in: gen
    with: { size: 1sec }
  w2:
    op: window.test
    in: w1
    with: { size: -1s, lateness: 5 }
  w3:
    op: window.test
    in: w2
    with: { size: "" }
  w4:
    op: window.test
    in: w3
    with: { size: 1 s }
  out:
    op: stdout
    in: w4
`,
    expect: [
      '9:19: error: setting `size` of `window.test`: `1sec` is not a duration (use a number and one of ms, s, m, h, d: `250ms`, `1s`)',
      '13:19: error: setting `size` of `window.test`: `-1s` is not a duration (use a number and one of ms, s, m, h, d: `250ms`, `1s`)',
      '13:34: error: setting `lateness` of `window.test`: `5` is not a duration (use a number and one of ms, s, m, h, d: `250ms`, `1s`)',
      '17:19: error: setting `size` of `window.test`: an empty value is not a duration (use a number and one of ms, s, m, h, d: `250ms`, `1s`)',
      '21:19: error: setting `size` of `window.test`: `1 s` is not a duration (use a number and one of ms, s, m, h, d: `250ms`, `1s`)',
    ],
  },
  {
    name: 'reports a missing duration setting',
    yaml: `streams: 1
name: no-size
nodes:
  gen:
    op: generate
  w:
    op: window.test
    in: gen
    with: { lateness: 2s }
  out:
    op: stdout
    in: w
`,
    expect: ['9:5: error: missing required setting `size` for `window.test`'],
  },
  {
    name: 'reports sizes that are not strict: a bit unit, a fraction of a byte, a negative count, a wrong case',
    yaml: `streams: 1
name: sizes
nodes:
  cam:
    op: camera
  enc:
    op: video.encode
    in: cam
    with: { bitrate: 2Mbit }
  gen:
    op: generate
  w1:
    op: window.test
    in: gen
    with: { size: 1s, max_bytes: 1.5 }
  w2:
    op: window.test
    in: w1
    with: { size: 1s, max_bytes: -4 }
  w3:
    op: window.test
    in: w2
    with: { size: 1s, max_bytes: 64kib }
  out:
    op: stdout
    in: w3
  v:
    op: video.sink
    in: enc
`,
    expect: [
      '9:22: error: setting `bitrate` of `video.encode`: `2Mbit` is not a size (use a number and one of B, KB, MB, GB, KiB, MiB, GiB: `64KiB`)',
      '15:34: error: setting `max_bytes` of `window.test`: `1.5` is not a size (use a number and one of B, KB, MB, GB, KiB, MiB, GiB: `64KiB`)',
      '19:34: error: setting `max_bytes` of `window.test`: `-4` is not a size (use a number and one of B, KB, MB, GB, KiB, MiB, GiB: `64KiB`)',
      '23:34: error: setting `max_bytes` of `window.test`: `64kib` is not a size (use a number and one of B, KB, MB, GB, KiB, MiB, GiB: `64KiB`)',
    ],
  },
  {
    name: 'accepts strict durations and sizes, and parses them to milliseconds and bytes',
    yaml: `streams: 1
name: units
nodes:
  gen:
    op: generate
  w:
    op: window.test
    in: gen
    with: { size: 1.5h, lateness: 250ms, max_bytes: 64KiB }
  out:
    op: stdout
    in: w
`,
    expect: [],
  },
  {
    name: 'reports video fed to an audio port, naming both nodes and both types',
    yaml: `streams: 1
name: video-into-audio
nodes:
  cam:
    op: camera
  enc:
    op: video.encode
    in: cam
  speaker:
    op: audio.sink
    in: enc
`,
    expect: ['11:9: error: type mismatch: `enc` (`video.encode`) gives `Media<video/h264>` but `speaker` (`audio.sink`) takes `Media<audio/*>`'],
  },
  {
    name: 'reports events that lack the fields a port requires',
    yaml: `streams: 1
name: missing-fields
nodes:
  lines:
    op: file.read
    with: { path: in.ndjson }
  parse:
    op: decode.json
    in: lines
    with: { schema: { device: string, ts: number } }
  out:
    op: readings.sink
    in: parse
`,
    expect: ['13:9: error: type mismatch: `parse` (`decode.json`) gives `Event<{device: string, ts: number}>` but `out` (`readings.sink`) takes `Event<{device: string, value: number}>`'],
  },
  {
    name: 'reports a multi-input port whose inputs do not unify',
    yaml: `streams: 1
name: merge-mixed
nodes:
  gen:
    op: generate
  cam:
    op: camera
  both:
    op: merge
    in: [gen, cam]
  out:
    op: stdout
    in: both
`,
    expect: ['10:5: error: inputs of node `both` do not unify: `gen` gives `Event<unknown>`, `cam` gives `Media<video/raw>`'],
  },
];

describe('checking with test operators', () => {
  it.each(cases)('$name', ({ yaml, expect: expected }) => {
    const result = checkPipeline({ file: 'p.yaml', text: yaml, registry: testRegistry, env: {} });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual(expected.map((line) => `p.yaml:${line}`));
    expect(result.graph === undefined).toBe(expected.some((line) => line.includes(': error: ')));
  });

  it('stores durations in milliseconds and sizes in bytes in the checked graph', () => {
    const units = cases.find((c) => c.name.startsWith('accepts strict durations'))!;
    const { graph } = checkPipeline({ file: 'p.yaml', text: units.yaml, registry: testRegistry, env: {} });
    expect(graph?.nodes.get('w')?.settings).toEqual({ size: 5_400_000, lateness: 250, max_bytes: 65_536 });
  });
});
