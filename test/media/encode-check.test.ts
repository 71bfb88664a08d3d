import { describe, expect, it } from 'vitest';
import { checkPipeline } from '../../graph/check.ts';
import { formatDiagnostic } from '../../graph/diagnostics.ts';
import { parseLadderConfig, parseBitrate, resolveLadder, selectRungs } from '../../nodes/media/ladders.ts';
import { keyframeExpression, ladderCommand } from '../../nodes/media/ladder-command.ts';
import { ffmpegArgs } from '../../native/ffmpeg/command.ts';
import { defineOperator, z } from '../../runtime/api.ts';
import { testRegistry } from '../helpers/pipeline.ts';

/** Sources typed as an ingest would be: audio only, video only, or both on one edge. */
function mediaSource(name: string, caps: string) {
  return defineOperator({
    name,
    summary: 'Test media source.',
    doc: 'Emits nothing; typed for the checker.',
    inputs: {},
    outputs: { out: { type: `Media<${caps}>`, doc: 'Packets.' } },
    settings: z.object({}),
    create: () => () => {
      throw new Error('not run');
    },
  });
}

const sources = [mediaSource('test.audio', 'audio/aac'), mediaSource('test.video', 'video/h264'), mediaSource('test.av', '*/*')];

function check(text: string): string[] {
  const result = checkPipeline({ file: 'live.yaml', text, registry: testRegistry(sources), env: {} });
  return result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
}

const pipeline = (source: string, encodeWith = '{}') => `streams: 1
name: live
nodes:
  src:
    op: ${source}
  ladder:
    op: encode
    in: src
    with: ${encodeWith}
  sink:
    op: test.collect
    in: ladder
    with: { into: x }
`;

describe('encode at check time', () => {
  it('refuses an audio-only input, located, naming both ends and both types', () => {
    const errors = check(pipeline('test.audio'));
    expect(errors).toEqual([
      'live.yaml:8:9: error: type mismatch: `src` (`test.audio`) gives `Media<audio/aac>` but `ladder` (`encode`) takes `Media<video/*>`',
    ]);
  });

  it('refuses events', () => {
    const errors = check(pipeline('generate'));
    expect(errors.join('\n')).toMatch(/live\.yaml:8:9: error: type mismatch: `src` \(`generate`\) gives `Event<.*>` but `ladder` \(`encode`\) takes `Media<video\/\*>`/);
  });

  it('accepts video, or video and audio on one edge, and types its output', () => {
    expect(check(pipeline('test.video'))).toEqual([]);
    expect(check(pipeline('test.av'))).toEqual([]);
    const graph = checkPipeline({ file: 'live.yaml', text: pipeline('test.video'), registry: testRegistry(sources), env: {} }).graph!;
    expect(graph.nodes.get('ladder')!.outputTypes.out).toEqual({ kind: 'media', caps: 'video/h264' });
  });

  it('says which codec works when hevc or av1 is asked for', () => {
    expect(check(pipeline('test.video', '{ codec: hevc }'))[0]).toContain('codec `hevc` cannot be carried back from ffmpeg 5.1 (its FLV muxer writes only H.264): use `h264`');
  });

  it('names the ladders there are for an unknown one, and a bad bitrate', () => {
    expect(check(pipeline('test.video', '{ ladder: huge }'))[0]).toContain('unknown ladder `huge` (config/ladders.yaml has `default`');
    expect(check(pipeline('test.video', '[{ name: x, height: 300, bitrate: fast }]'.replace(/^/, '{ ladder: ').concat(' }')))[0]).toContain('bitrate `fast` is not a bitrate');
  });
});

describe('ladders', () => {
  it('reads config/ladders.yaml: presets 240p to 2160p and the default ladder', () => {
    expect(resolveLadder('default')).toEqual([
      { name: '1080p', height: 1080, bitrate: 5_000_000 },
      { name: '720p', height: 720, bitrate: 2_800_000 },
      { name: '480p', height: 480, bitrate: 1_400_000 },
    ]);
    expect((resolveLadder('full') as { name: string }[]).map((r) => r.name)).toEqual(['2160p', '1440p', '1080p', '720p', '480p', '360p', '240p']);
  });

  it('mixes presets and own rungs, highest first, and refuses reserved or repeated names', () => {
    expect(resolveLadder(['240p', { name: 'mid', height: 540, bitrate: '2M' }])).toEqual([
      { name: 'mid', height: 540, bitrate: 2_000_000 },
      { name: '240p', height: 240, bitrate: 400_000 },
    ]);
    expect(resolveLadder(['240p', '240p'])).toBe('rung `240p` is listed twice');
    expect(resolveLadder([{ name: 'source', height: 240, bitrate: 1 }])).toContain('cannot be named `source`');
  });

  it('parses bitrates', () => {
    expect([parseBitrate('400k'), parseBitrate('2.8M'), parseBitrate(1500), parseBitrate('x'), parseBitrate('0k')]).toEqual([400_000, 2_800_000, 1500, undefined, undefined]);
  });

  it('skips rungs above the source or max_height, keeping the lowest at the source height when all are above', () => {
    const rungs = resolveLadder('default') as ReturnType<typeof selectRungs>['kept'];
    expect(selectRungs(rungs, 1080, 720).kept.map((r) => r.name)).toEqual(['720p', '480p']);
    expect(selectRungs(rungs, 360).kept).toEqual([{ name: '480p', height: 360, bitrate: 1_400_000 }]);
    expect(selectRungs(rungs, undefined).skipped).toEqual([]);
  });

  it('refuses a malformed ladder file, naming it', () => {
    expect(() => parseLadderConfig('presets: { a: { height: 1 } }', 'x.yaml')).toThrow('x.yaml: preset `a` needs a height and a bitrate');
    expect(() => parseLadderConfig('presets: {}\nladders: { d: [nope] }', 'x.yaml')).toThrow('x.yaml: ladder `d` must list presets');
  });
});

describe('the ladder command', () => {
  it('decodes once, splits, scales and encodes each rung to its own pipe with keyframes at segment boundaries', () => {
    const layout = ffmpegArgs(ladderCommand({
      rungs: [{ name: '720p', height: 720, bitrate: 2_800_000 }, { name: '480p', height: 480, bitrate: 1_400_000 }],
      encoder: { name: 'libx264', codec: 'h264', hw: 'none', global: [], upload: '' },
      preset: 'veryfast',
      segmentSeconds: 2,
    }));
    const args = layout.args.join(' ');
    expect(args).toContain('-f flv -probesize 32768 -analyzeduration 0 -i pipe:0');
    expect(args).toContain('-filter_complex [0:v]split=2[s0][s1];[s0]scale=-2:720[v0];[s1]scale=-2:480[v1]');
    expect(args).toContain('-map [v0] -an -c:v libx264 -b:v 2800k -maxrate 3080k -bufsize 5600k -preset veryfast -force_key_frames expr:if(isnan(prev_forced_t),1,gte(floor((t+0)/2+0.0001),floor((prev_forced_t+0)/2+0.0001)+1)) -sc_threshold 0');
    expect(args).toContain('-enc_time_base -1 -f flv');
    expect(args).toMatch(/-map \[v1\] .* -f flv -flvflags no_duration_filesize pipe:5$/);
    expect(layout.outputFds).toEqual([4, 5]);
  });

  it('puts the keyframes of a run that starts mid-stream on the source time\'s segment grid, and on the frame after a splice', () => {
    // ffmpeg's `t` counts from the run's first frame: the start moves it back to source time.
    expect(keyframeExpression({ segmentSeconds: 1, startSeconds: 7.0333 })).toBe('expr:if(isnan(prev_forced_t),1,gte(floor((t+7.033)/1+0.0001),floor((prev_forced_t+7.033)/1+0.0001)+1))');
    expect(keyframeExpression({ segmentSeconds: 2, startSeconds: 7, spliceAtFrame: 12 })).toBe('expr:if(isnan(prev_forced_t),1,gte(floor((t+7)/2+0.0001),floor((prev_forced_t+7)/2+0.0001)+1)+eq(n,12))');
  });
});
