import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Node options that make a process print, at exit, the URL of every module
 * it loaded (one JSON line on stderr).
 */
const traceModules = [
  '--import',
  `data:text/javascript,import{registerHooks}from'node:module';const seen=[];registerHooks({load(url,context,next){seen.push(url);return next(url,context)}});process.on('exit',()=>process.stderr.write('\\n'+JSON.stringify(seen)+'\\n'))`,
];

function loadedBy(...args: string[]): string[] {
  const result = spawnSync(process.execPath, [...traceModules, 'bin/streams.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  expect(result.status).toBe(0);
  return (JSON.parse(result.stderr.trim().split('\n').at(-1)!) as string[]).filter((url) => !url.startsWith('node:'));
}

const root = new URL('../../', import.meta.url).href;
const local = (urls: string[]): string[] => urls.map((url) => url.replace(root, ''));

describe('start-up loads only what the command needs', () => {
  it('`--help` loads the CLI table and no package', () => {
    const loaded = local(loadedBy('--help'));
    expect(loaded.filter((path) => path.includes('node_modules/'))).toEqual([]);
    expect(loaded.filter((path) => !path.startsWith('bin/') && !path.startsWith('cli/'))).toEqual([]);
  });

  it('`validate` loads neither `run` nor the engine, its logging and metrics', () => {
    const loaded = local(loadedBy('validate', 'pipelines/demo.yaml'));
    expect(loaded).toContain('cli/validate.ts');
    for (const path of ['cli/run.ts', 'cli/pipeline-test.ts', 'runtime/engine.ts', 'runtime/metrics.ts', 'runtime/log.ts']) expect(loaded).not.toContain(path);
    for (const name of ['pino', 'prom-client']) expect(loaded.some((path) => path.includes(`node_modules/${name}/`)), name).toBe(false);
  });

  it('`run` without `--metrics`, `--ui` or `--watch` loads neither the metrics (prom-client) nor the visualiser\'s server', { timeout: 60_000 }, () => {
    const loaded = local(loadedBy('run', 'pipelines/w1-iot-rollup.yaml', '--param', 'output=/dev/null', '--log-level', 'warn'));
    expect(loaded).toContain('runtime/engine.ts');
    for (const path of ['runtime/metrics.ts', 'cli/run-ui.ts', 'runtime/server/admin.ts']) expect(loaded).not.toContain(path);
    expect(loaded.some((path) => path.includes('node_modules/prom-client/')), 'prom-client').toBe(false);
  });

  describe('a pipeline loads the modules of the operators it names and no other', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streams-startup-'));
    const pipeline = join(dir, 'hello.yaml');
    writeFileSync(pipeline, 'streams: 1\nname: hello\nnodes:\n  numbers:\n    op: generate\n    with: { count: 3, fields: { n: "i * 2" } }\n  out: { op: stdout, in: numbers }\n');
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const connectorFamilies = ['nodes/messaging/', 'nodes/media/', 'nodes/cdn/', 'nodes/objects/'];

    it('`run` of `generate` into `stdout`: theirs, and none of kafka, mqtt, redis, media, the CDN or objects', { timeout: 60_000 }, () => {
      const loaded = local(loadedBy('run', pipeline, '--log-level', 'warn'));
      for (const path of ['nodes/events/generate.ts', 'nodes/io/stdout.ts']) expect(loaded).toContain(path);
      for (const path of ['nodes/events/window-tumbling.ts', 'nodes/io/file-read.ts', 'nodes/io/pg-write.ts', 'nodes/io/http-server.ts']) expect(loaded).not.toContain(path);
      expect(loaded.filter((path) => connectorFamilies.some((family) => path.startsWith(family)))).toEqual([]);
    });

    it('an unknown operator loads them all, to suggest the nearest (so the check above can fail)', { timeout: 60_000 }, () => {
      writeFileSync(join(dir, 'typo.yaml'), 'streams: 1\nname: typo\nnodes:\n  numbers: { op: generat }\n');
      const result = spawnSync(process.execPath, [...traceModules, 'bin/streams.ts', 'validate', join(dir, 'typo.yaml')], { encoding: 'utf8', timeout: 60_000 });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('typo.yaml:4:18: error: unknown operator `generat` (did you mean `generate`?)');
      const loaded = local(JSON.parse(result.stderr.trim().split('\n').at(-1)!) as string[]);
      for (const path of ['nodes/messaging/kafka-consume.ts', 'nodes/media/encode.ts', 'nodes/cdn/cache.ts']) expect(loaded).toContain(path);
    });
  });

  describe('`run` loads the admin server, its live feed and `ws` only with `--ui`', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streams-startup-'));
    const pipeline = join(dir, 'hello.yaml');
    writeFileSync(pipeline, 'streams: 1\nname: hello\nnodes:\n  numbers:\n    op: generate\n    with: { count: 3, fields: { n: "i * 2" } }\n  out: { op: stdout, in: numbers }\n');
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // `native/http/websocket.ts` is a few lines some operators reach; the `ws` package behind it is what weighs.
    const uiModules = ['cli/run-ui-server.ts', 'runtime/server/admin.ts', 'runtime/server/live-feed.ts', 'runtime/server/taps.ts', 'runtime/server/page-assets.ts'];
    const loadsWs = (loaded: string[]): boolean => loaded.some((path) => path.includes('node_modules/ws/'));

    it('without `--ui`: none of them', { timeout: 60_000 }, () => {
      const loaded = local(loadedBy('run', pipeline, '--log-level', 'warn'));
      expect(loaded).toContain('runtime/engine.ts');
      expect(uiModules.filter((path) => loaded.includes(path))).toEqual([]);
      expect(loadsWs(loaded)).toBe(false);
    });

    it('with `--ui`: all of them (so the check above can fail)', { timeout: 60_000 }, () => {
      const loaded = local(loadedBy('run', pipeline, '--log-level', 'warn', '--ui', '127.0.0.1:0'));
      expect(uiModules.filter((path) => !loaded.includes(path))).toEqual([]);
      expect(loadsWs(loaded)).toBe(true);
    });
  });
});

describe('the bundled CLI (`node bin/build.ts`, what `npm pack` ships)', () => {
  // Under node_modules/, as in an installed package, so the external packages resolve.
  const cache = join(new URL(root).pathname, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  // Its real path: Node reports the files it loads by theirs (node_modules may be a symlink, as in a worktree).
  const outdir = realpathSync(mkdtempSync(join(cache, 'streams-bundle-')));
  beforeAll(() => {
    execFileSync(process.execPath, ['bin/build.ts', outdir], { stdio: ['ignore', 'ignore', 'pipe'] });
  }, 60_000);
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  /** The files a command of the bundle loads, the built-in modules Node compiled for it (`process.moduleLoadList`), and its output. */
  function bundleLoads(...args: string[]): { files: string[]; builtins: string[]; stdout: string } {
    const listBuiltins = ['--import', `data:text/javascript,const before=new Set(process.moduleLoadList);process.on('exit',()=>process.stderr.write(JSON.stringify(process.moduleLoadList.filter((m)=>!before.has(m)))+'\\n'))`];
    const result = spawnSync(process.execPath, [...traceModules, ...listBuiltins, join(outdir, 'bin', 'streams.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
    const lines = result.stderr.trim().split('\n');
    expect(lines.slice(0, -2)).toEqual([]);
    expect(result.status).toBe(0);
    const [files, builtins] = lines.slice(-2).map((line) => JSON.parse(line) as string[]);
    return { files: files.filter((url) => url.startsWith('file:')), builtins: builtins.map((entry) => entry.replace(/^NativeModule /, '')), stdout: result.stdout };
  }

  it('`--help` loads the command table, a few kilobytes, and none of the engine', { timeout: 60_000 }, () => {
    const { files } = bundleLoads('--help');
    const bytes = files.reduce((sum, url) => sum + statSync(new URL(url)).size, 0);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(50_000);
  });

  it('`validate` loads no package from node_modules (rxjs, zod, yaml and cel-js are bundled), nor undici, http, tls or crypto', { timeout: 60_000 }, () => {
    const { files, builtins } = bundleLoads('validate', 'pipelines/demo.yaml');
    expect(files.filter((url) => !new URL(url).pathname.startsWith(outdir))).toEqual([]);
    for (const name of ['internal/deps/undici/undici', 'http', 'tls', 'crypto']) expect(builtins).not.toContain(name);
  });

  it('`run` loads no package from node_modules (pino and prom-client are bundled too), and runs', { timeout: 60_000 }, () => {
    const pipeline = join(outdir, 'hello.yaml');
    writeFileSync(pipeline, 'streams: 1\nname: hello\nnodes:\n  numbers:\n    op: generate\n    with: { count: 3, fields: { n: "i * 2" } }\n  out: { op: stdout, in: numbers }\n');
    const { files, stdout } = bundleLoads('run', pipeline, '--log-level', 'warn');
    const outside = files.map((url) => new URL(url).pathname).filter((path) => !path.startsWith(outdir));
    expect(outside).toEqual([]);
    // Each operator's module is a chunk of its own, named after its file, loaded only when a pipeline names the operator.
    const chunks = files.map((url) => new URL(url).pathname.split('/').at(-1)!);
    for (const name of ['generate', 'stdout']) expect(chunks.filter((chunk) => chunk.startsWith(`${name}-`)), name).toHaveLength(1);
    expect(chunks.filter((chunk) => /^(kafka|mqtt|redis|pg|encode|ingest|segment|cache|serve|window|file)-/.test(chunk))).toEqual([]);
    expect(stdout.trim().split('\n').map((line) => (JSON.parse(line) as { n: number }).n)).toEqual([0, 2, 4]);
  });
});
