import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCliOnFifo } from '../helpers/fifo-cli.ts';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'streams-run-'));

function streams(args: string[], cwd = root): { code: number | null; stdout: string; stderr: string; ms: number } {
  const started = Date.now();
  const result = spawnSync(process.execPath, [join(root, 'bin/streams.ts'), ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}

function pipeline(name: string, text: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

describe('streams run: failures end a finite run', () => {
  it('exits 1 within seconds on an output it cannot create, naming the node, its line and the cause', () => {
    const file = pipeline('proc', 'streams: 1\nname: proc\nnodes:\n  src: { op: generate, with: { count: 3 } }\n  out:\n    op: file.write\n    in: src\n    with: { path: /proc/nope/x }\n');
    const run = streams(['run', file, '--log-level', 'silent']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/streams: node `out` \(.*proc\.yaml:5\): cannot open output `\/proc\/nope\/x`: no such file or folder\n/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.ms).toBeLessThan(15_000);
  });

  it('reports dead letters nobody kept and exits 1, rather than "finished" and 0', () => {
    const file = pipeline('dead', 'streams: 1\nname: dead\nnodes:\n  src: { op: generate, with: { count: 5, fields: { n: i } } }\n  bad: { op: map, in: src, with: { set: { x: \"int(string(n) + \\\"x\\\")\" } } }\n  out: { op: file.write, in: bad, with: { path: out/dead.ndjson } }\n');
    const run = streams(['run', file, '--log-level', 'silent']);
    expect(run.stderr).toContain('streams: 5 dead letters not kept (no `dlq` consumer): `bad` 5');
    expect(run.code).toBe(1);
  });

  it('on SIGINT, drains and still reports the dead letters it lost, exiting 1', async () => {
    const file = pipeline('dead-live', 'streams: 1\nname: dead-live\nnodes:\n  src: { op: generate, with: { rate: 200, fields: { n: i } } }\n  bad: { op: map, in: src, with: { set: { x: \"int(string(n) + \\\"x\\\")\" } } }\n  out: { op: file.write, in: bad, with: { path: out/dead-live.ndjson } }\n');
    const child = spawn(process.execPath, [join(root, 'bin/streams.ts'), 'run', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    for (let i = 0; i < 200 && !stderr.includes('record failed'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toMatch(/streams: \d+ dead letters? not kept \(no `dlq` consumer\): `bad` \d+/);
    expect(stderr).not.toContain('"msg":"finished"');
    expect(code).toBe(1);
  });
});

describe('streams run: a signal before the pipeline starts', () => {
  it('exits 130 saying nothing ran when SIGINT comes while the file is read and checked', async () => {
    // The pipeline file is a FIFO: opening it for writing completes only when
    // the run opens it to read, that is once it has set its early signal
    // handler and is inside reading and checking, which the signal then
    // interrupts whatever the machine's speed.
    const { code, stdout, stderr } = await runCliOnFifo({
      fifo: join(dir, 'early.yaml'),
      args: ['run'],
      text: 'streams: 1\nname: early\nnodes:\n  src: { op: generate, with: { count: 3 } }\n  out: { op: stdout, in: src }\n',
      whileReading: (child) => child.kill('SIGINT'),
    });
    expect(code).toBe(130);
    expect(stderr).toBe('streams: interrupted (SIGINT) before the pipeline started; nothing ran\n');
    expect(stdout).toBe('');
  });
});

describe('paths in settings', () => {
  it('resolves relative paths against the pipeline file\'s folder, and creates the checkpoint folder', () => {
    const folder = join(dir, 'project');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'in.ndjson'), '{"a":1}\n{"a":2}\n');
    const file = join(folder, 'p.yaml');
    writeFileSync(file, 'streams: 1\nname: rel\nnodes:\n  src: { op: file.read, with: { path: in.ndjson, format: ndjson, checkpoint: state/deep/in.offset } }\n  out: { op: file.write, in: src, with: { path: out/x.ndjson } }\n');
    const run = streams(['run', file, '--log-level', 'silent'], tmpdir());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(readFileSync(join(folder, 'out/x.ndjson'), 'utf8')).toBe('{"a":1}\n{"a":2}\n');
    expect(JSON.parse(readFileSync(join(folder, 'state/deep/in.offset'), 'utf8'))).toEqual({ position: 16 });
    expect(existsSync(join(tmpdir(), 'out/x.ndjson'))).toBe(false);
  });

  it('validate reports a missing input, a folder as input and an output under a file, at the setting', () => {
    mkdirSync(join(dir, 'a-folder'), { recursive: true });
    writeFileSync(join(dir, 'plain'), 'x');
    const file = pipeline(
      'paths',
      'streams: 1\nname: paths\nnodes:\n  a: { op: file.read, with: { path: nope.ndjson } }\n  b: { op: file.read, with: { path: a-folder } }\n  out: { op: file.write, in: [a, b], with: { path: plain/out.ndjson } }\n',
    );
    const run = streams(['validate', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/paths\.yaml:4:37: error: node `a`, setting `path`: input file `.*nope\.ndjson` does not exist/);
    expect(run.stderr).toMatch(/paths\.yaml:5:37: error: node `b`, setting `path`: input `.*a-folder` is a folder, not a file/);
    expect(run.stderr).toMatch(/paths\.yaml:6:52: error: node `out`, setting `path`: output `.*plain\/out\.ndjson` cannot be created: `.*plain` is a file, not a folder/);
  });
});
