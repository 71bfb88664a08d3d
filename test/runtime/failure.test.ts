import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { defineOperator, NodeError, failureKind, pathError, z, type Batch } from '../../runtime/api.ts';
import { backoffDelay } from '../../runtime/retry.ts';
import { NativeError } from '../../native/client-owner.ts';
import { runYaml, startYaml, take } from '../helpers/pipeline.ts';
import { lossReport } from '../../cli/run.ts';

const dir = mkdtempSync(join(tmpdir(), 'streams-failure-'));

/** A source that fails on each start until `ok_after` starts, then emits `{n: 1}` and ends. */
let starts = 0;
const flakySource = defineOperator({
  name: 'test.flaky-source',
  summary: 'Test source that fails on its first starts.',
  doc: 'Fails with a transient error on its first `ok_after` starts.',
  inputs: {},
  outputs: { out: { type: 'Event', doc: 'One record.' } },
  settings: z.object({ ok_after: z.number().int() }),
  create(ctx) {
    return () =>
      new Observable<Batch>((subscriber) => {
        starts += 1;
        if (starts <= ctx.settings.ok_after) {
          subscriber.error(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }));
          return;
        }
        subscriber.next({ items: [{ n: 1 }], ack: ctx.newAck() });
        subscriber.complete();
      });
  },
});

describe('failure kinds', () => {
  it('classifies errors on a configured path as permanent, even when wrapped', () => {
    for (const code of ['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EROFS']) {
      const raw = Object.assign(new Error(`${code}: x`), { code, path: '/x' });
      expect(failureKind(raw)).toBe('permanent');
      expect(failureKind(pathError('node `a` (a.yaml:3)', 'cannot open input', '/x', raw))).toBe('permanent');
    }
  });

  it('classifies refused connections as transient and unserialisable values as record errors', () => {
    expect(failureKind(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe('transient');
    expect(failureKind(new Error('timeout'))).toBe('transient');
    expect(failureKind(new RangeError('Maximum call stack size exceeded'))).toBe('record');
    expect(failureKind(new NodeError('bad', 'x', { kind: 'permanent' }))).toBe('permanent');
    expect(new NodeError('bad', 'x', { kind: 'permanent' }).permanent).toBe(true);
  });

  it('classifies errors of native/ by what can cure them: settings are permanent, connections and ports in use transient', () => {
    expect(failureKind(new NativeError('tls_file', 'cannot read `cert` file', { cure: 'settings' }))).toBe('permanent');
    expect(failureKind(new NativeError('listen_denied', 'permission denied', { cure: 'settings', cause: Object.assign(new Error('listen EACCES'), { code: 'EACCES' }) }))).toBe('permanent');
    expect(failureKind(new NativeError('address_in_use', 'in use', { cause: Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }) }))).toBe('transient');
    // A native error is never a record's fault, whatever its cause.
    expect(failureKind(new NativeError('stopped', 'stopped while connecting', { cause: new TypeError('x') }))).toBe('transient');
    // Wrapped by a node without a kind of its own, the native verdict stands.
    expect(failureKind(new NodeError('start_failed', 'node `a`: cannot start', { cause: new NativeError('listen_failed', 'no such local address', { cure: 'settings' }) }))).toBe('permanent');
  });

  it('ends a run at once when a server cannot listen on an address this machine does not have', async () => {
    const started = Date.now();
    const engine = startYaml(`
streams: 1
name: no-address
nodes:
  web: { op: http.server, with: { listen: "192.0.2.1:19430" } }
  out: { op: test.collect, in: web, with: { into: no-address } }
`);
    await expect(engine.done).rejects.toThrow(/^node `web` \(test\.yaml:5\): cannot listen on 192\.0\.2\.1:19430: no such local address$/);
    expect(new Map(engine.nodeStats()).get('web')!.restarts).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('words a path error as the node, the action, the path and the cause', () => {
    const raw = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', path: '/tmp/nope.ndjson' });
    expect(pathError('node `x` (pipelines/a.yaml:12)', 'cannot open input', '/tmp/nope.ndjson', raw).message).toBe(
      'node `x` (pipelines/a.yaml:12): cannot open input `/tmp/nope.ndjson`: no such file or folder',
    );
  });

  it('makes a NodeError a NativeError with its code, name, cause and kind', () => {
    const cause = new Error('refused');
    const error = new NodeError('connect_failed', 'node `x`: cannot connect', { cause, kind: 'permanent' });
    expect(error).toBeInstanceOf(NativeError);
    expect({ name: error.name, code: error.code, cause: error.cause, kind: error.kind, permanent: error.permanent }).toEqual({
      name: 'NodeError', code: 'connect_failed', cause, kind: 'permanent', permanent: true,
    });
  });
});

describe('permanent failures', () => {
  it('ends a finite run at once with the node, its line and the cause when an input file is missing', async () => {
    const started = Date.now();
    const engine = startYaml(`
streams: 1
name: missing
nodes:
  src: { op: file.read, with: { path: ${JSON.stringify(join(dir, 'nope.ndjson'))}, format: ndjson } }
  out: { op: test.collect, in: src, with: { into: missing } }
`);
    await expect(engine.done).rejects.toThrow(/^node `src` \(test\.yaml:5\): cannot open input `.*nope\.ndjson`: no such file or folder$/);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(new Map(engine.nodeStats()).get('src')!.state).toBe('failed');
    expect(new Map(engine.nodeStats()).get('src')!.restarts).toBe(0);
    expect(engine.failures).toHaveLength(1);
  });

  it('fails a directory given as input, and an output under a regular file', async () => {
    const folder = join(dir, 'a-folder');
    mkdirSync(folder, { recursive: true });
    await expect(
      runYaml(`
streams: 1
name: folder
nodes:
  src: { op: file.read, with: { path: ${JSON.stringify(folder)} } }
  out: { op: test.collect, in: src, with: { into: folder } }
`),
    ).rejects.toThrow(/cannot read input `.*a-folder`: is a folder/);
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    await expect(
      runYaml(`
streams: 1
name: under-file
nodes:
  src: { op: test.count, with: { count: 3 } }
  out: { op: file.write, in: src, with: { path: ${JSON.stringify(join(file, 'out.ndjson'))} } }
`),
    ).rejects.toThrow(/node `out` \(test\.yaml:6\): cannot open output `.*plain\/out\.ndjson`: a part of the path is not a folder/);
  });

  it('does not hang on a path under /proc', async () => {
    await expect(
      runYaml(`
streams: 1
name: proc
nodes:
  src: { op: test.count, with: { count: 3 } }
  out: { op: file.write, in: src, with: { path: /proc/nope/x } }
`),
    ).rejects.toThrow(/cannot open output `\/proc\/nope\/x`/);
  });

  it('reports a permanent failure that was not the error that stopped the run', async () => {
    // A source that fails the whole graph (as `on_error: stop` does) when it is told to stop.
    const fatalOnStop = defineOperator({
      name: 'test.fatal-on-stop',
      summary: 'Test source that fails the graph when stopped.',
      doc: 'Emits nothing; calls `ctx.fatal` when its signal aborts.',
      inputs: {},
      outputs: { out: { type: 'Event', doc: 'Nothing.' } },
      settings: z.object({}),
      create(ctx) {
        return () =>
          new Observable<Batch>(() => {
            ctx.signal.addEventListener('abort', () => ctx.fatal(new Error('node `lease`: lost its lease while stopping')), { once: true });
          });
      },
    });
    const engine = startYaml(
      `
streams: 1
name: two-failures
nodes:
  src: { op: file.read, with: { path: ${JSON.stringify(join(dir, 'nope-two.ndjson'))}, format: ndjson } }
  out: { op: test.collect, in: src, with: { into: two-failures } }
  lease: { op: test.fatal-on-stop }
`,
      { extra: [fatalOnStop] },
    );
    // The missing file fails `src` first; the drain it starts stops `lease`, whose fatal error is what `done` rejects with.
    await expect(engine.done).rejects.toThrow('lost its lease');
    expect(engine.stopError?.message).toBe('node `lease`: lost its lease while stopping');
    expect(lossReport(engine)).toEqual([expect.stringMatching(/^node `src` \(test\.yaml:5\): cannot open input `.*nope-two\.ndjson`: no such file or folder$/)]);
  });

  it('with onNodeFailure continue, keeps the rest of the graph running and reports the failed node', async () => {
    const engine = await runYaml(
      `
streams: 1
name: continue
nodes:
  src: { op: test.count, with: { count: 100 } }
  bad: { op: file.write, in: src, with: { path: /proc/nope/x } }
  good: { op: test.collect, in: src, with: { into: continue } }
`,
      { onNodeFailure: 'continue' },
    );
    expect(take('continue')).toHaveLength(100);
    expect(engine.failures.map((f) => f.node)).toEqual(['bad']);
    expect(new Map(engine.nodeStats()).get('bad')!.state).toBe('failed');
  });
});

describe('transient failures', () => {
  it('restarts with the one backoff function, and the run ends once the node recovers', async () => {
    starts = 0;
    const engine = await runYaml(
      `
streams: 1
name: transient
nodes:
  src: { op: test.flaky-source, with: { ok_after: 2 } }
  out: { op: test.collect, in: src, with: { into: transient } }
`,
      { extra: [flakySource] },
    );
    expect(take('transient')).toEqual([{ n: 1 }]);
    const stats = new Map(engine.nodeStats()).get('src')!;
    expect([stats.restarts, stats.errors]).toEqual([2, 2]);
  });

  it('backs off exponentially with jitter up to a ceiling', () => {
    expect(backoffDelay(0, 100, 30_000, () => 1)).toBe(100);
    expect(backoffDelay(3, 100, 30_000, () => 1)).toBe(800);
    expect(backoffDelay(20, 100, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(0, 100, 30_000, () => 0)).toBe(50);
  });
});
