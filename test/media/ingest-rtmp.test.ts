import { describe, expect, it } from 'vitest';
import { checkYaml } from '../helpers/pipeline.ts';

describe('ingest.rtmp settings', () => {
  it('refuses an application name that is not a path segment, at its line', () => {
    expect(() => checkYaml('streams: 1\nname: r\nnodes:\n  r: { op: ingest.rtmp, with: { app: "a/b" } }\n')).toThrow(/test\.yaml:4:\d+: .*an RTMP application name is letters/);
    expect(() => checkYaml('streams: 1\nname: r\nnodes:\n  r: { op: ingest.rtmp, with: { app: live, keys: ["k3y_1.a-b-c"], max_streams: 2 } }\n')).not.toThrow();
  });

  it('takes named keys, and refuses a name that could not be a URL path segment, at its line', () => {
    expect(() => checkYaml('streams: 1\nname: r\nnodes:\n  r: { op: ingest.rtmp, with: { keys: [plain-key, { name: alice, key: s3cret~key }] } }\n')).not.toThrow();
    expect(() => checkYaml('streams: 1\nname: r\nnodes:\n  r: { op: ingest.rtmp, with: { keys: [{ name: ../alice, key: s3cret }] } }\n')).toThrow(/test\.yaml:4:\d+: .*a stream name is letters, digits/);
  });
});
