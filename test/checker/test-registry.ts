/**
 * A registry for checker tests: the shipped operators plus a few that only
 * tests need (host requirements, duration and size settings, media ports),
 * until the real ones exist.
 */
import { z, duration, size } from '../../graph/settings.ts';
import type { OperatorSpec, Registry } from '../../graph/operator-spec.ts';
import { registry } from '../../nodes/all.ts';

function spec<S>(partial: Omit<OperatorSpec<S>, 'summary' | 'doc'>): OperatorSpec<S> {
  return { summary: `${partial.name}, for tests.`, doc: `The test operator \`${partial.name}\`.`, ...partial };
}

export const testOperators: OperatorSpec<any>[] = [
  spec({
    name: 'camera',
    inputs: {},
    outputs: { out: { type: 'Media<video/raw>', doc: 'Frames.' } },
    settings: z.object({ device: z.string().default('/dev/video0') }),
    requires: ['display'],
  }),
  spec({
    name: 'video.encode',
    inputs: { in: { type: 'Media<video/*>', doc: 'Raw video.' } },
    outputs: { out: { type: 'Media<video/h264>', doc: 'Encoded video.' } },
    settings: z.object({ hardware: z.boolean().default(false), gop: duration().optional(), bitrate: size().optional() }),
    requires: (settings: { hardware: boolean }) => (settings.hardware ? ['ffmpeg', 'gpu'] : ['ffmpeg']),
  }),
  spec({
    name: 'audio.sink',
    inputs: { in: { type: 'Media<audio/*>', doc: 'Any audio.' } },
    outputs: {},
    settings: z.object({}),
  }),
  spec({
    name: 'video.sink',
    inputs: { in: { type: 'Media<video/*>', doc: 'Any video.' } },
    outputs: {},
    settings: z.object({}),
  }),
  spec({
    name: 'window.test',
    inputs: { in: { type: 'T: Event', doc: 'Records.' } },
    outputs: { out: { type: 'T', doc: 'Records, windowed.' } },
    settings: z.object({ size: duration(), lateness: duration().optional(), max_bytes: size().optional() }),
  }),
  spec({
    name: 'readings.sink',
    inputs: { in: { type: 'Event<{device: string, value: number}>', doc: 'Readings.' } },
    outputs: {},
    settings: z.object({}),
  }),
  spec({
    name: 'merge',
    inputs: { in: { type: 'T: Event', doc: 'Records from several upstreams.' } },
    outputs: { out: { type: 'T', doc: 'All of them.' } },
    settings: z.object({}),
  }),
];

export const testRegistry: Registry = new Map<string, OperatorSpec<any>>([...registry, ...testOperators.map((op) => [op.name, op] as const)]);
