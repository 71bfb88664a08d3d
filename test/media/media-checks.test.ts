/**
 * Media edges are typed at check time: a media operator fed the wrong kind
 * of stream is a located error naming both ends and both types, before
 * anything runs. The edits are made to the shipped `pipelines/live.yaml`, so
 * the errors are the ones a user changing it would see. (`encode` fed audio
 * only is in encode-check.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { registry } from '../../nodes/all.ts';

const file = 'pipelines/live.yaml';
const shipped = readFileSync(file, 'utf8');

/** live.yaml with one node's `in:` line replaced; the errors it gives. */
function errorsWith(node: string, input: string): string[] {
  const pattern = new RegExp(`(\\n  ${node}:\\n    op: [^\\n]+\\n    in: )[^\\n]+`);
  expect(shipped).toMatch(pattern);
  const text = shipped.replace(pattern, `$1${input}`);
  return checkPipeline({ file, text, registry, env: {} }).diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
}

/** The 1-based line and column of `in: <input>` under `node` in live.yaml. */
function inAt(node: string): string {
  const lines = shipped.split('\n');
  const start = lines.indexOf(`  ${node}:`);
  const row = lines.findIndex((line, i) => i > start && line.startsWith('    in: '));
  return `${file}:${row + 1}:9`;
}

describe('media edges at check time', () => {
  it('the shipped live pipeline checks clean', () => {
    expect(checkPipeline({ file, text: shipped, registry, env: {} }).diagnostics.map(formatDiagnostic)).toEqual([]);
  });

  it('refuses events (a media node\'s stats) into `segment.hls`', () => {
    expect(errorsWith('hls', 'rtmp.stats')).toEqual([
      `${inAt('hls')}: error: type mismatch: \`rtmp.stats\` (\`ingest.rtmp\`) gives \`Event<{stream: string, bitrate: number, fps: number, keyframe_interval: number, dropped: number, publishes: number}>\` but \`hls\` (\`segment.hls\`) takes \`Media<*/*>\``,
    ]);
  });

  it('refuses media packets into `serve.http`, which serves packaged segments', () => {
    expect(errorsWith('origin', 'ladder')).toEqual([
      `${inAt('origin')}: error: type mismatch: \`ladder\` (\`encode\`) gives \`Media<*/*>\` but \`origin\` (\`serve.http\`) takes \`Segment<cmaf>\``,
    ]);
  });

  it('refuses media packets into `segment.dash`', () => {
    expect(errorsWith('dash', 'rtmp')).toEqual([
      `${inAt('dash')}: error: type mismatch: \`rtmp\` (\`ingest.rtmp\`) gives \`Media<*/*>\` but \`dash\` (\`segment.dash\`) takes \`Segment<cmaf>\``,
    ]);
  });
});

/** Checks a small pipeline `source -> middle -> sink`; its errors. */
function chain(source: string, middle: string, sink: string): string[] {
  const text = `streams: 1
name: bad
nodes:
  source:
    op: ${source}
  middle:
    op: ${middle}
    in: source
  sink:
    op: ${sink}
    in: middle
`;
  return checkPipeline({ file: 'bad.yaml', text, registry, env: {} }).diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
}

describe('media operators outside live.yaml', () => {
  it('refuses `generate` records into `segment.hls`, located at the edge', () => {
    const errors = chain('generate', 'segment.hls', 'serve.http');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.yaml:8:9: error: type mismatch: `source` \(`generate`\) gives `Event<.*>` but `middle` \(`segment\.hls`\) takes `Media<\*\/\*>`$/);
  });

  it('refuses packaged segments into `encode`', () => {
    expect(chain('ingest.rtmp', 'segment.hls', 'encode')).toEqual([
      'bad.yaml:11:9: error: type mismatch: `middle` (`segment.hls`) gives `Segment<cmaf>` but `sink` (`encode`) takes `Media<video/*>`',
    ]);
  });

  it('refuses bytes into `serve.http` and media into `demux`', () => {
    expect(chain('ingest.rtmp', 'demux', 'stdout').filter((e) => e.includes('type mismatch'))).toEqual([
      'bad.yaml:8:9: error: type mismatch: `source` (`ingest.rtmp`) gives `Media<*/*>` but `middle` (`demux`) takes `Bytes`',
    ]);
    expect(chain('file.read', 'serve.http', 'stdout').filter((e) => e.includes('type mismatch'))).toEqual([
      'bad.yaml:8:9: error: type mismatch: `source` (`file.read`) gives `Bytes` but `middle` (`serve.http`) takes `Segment<cmaf>`',
    ]);
  });
});
